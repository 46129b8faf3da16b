import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import {describe, it} from 'node:test'

import {ClientHandshake} from '../../../src/lib/dtls/client.js'
import {ContentType, DtlsVersion, HandshakeType} from '../../../src/lib/dtls/constants.js'
import {decodeClientHello} from '../../../src/lib/dtls/messages/client-hello.js'
import {decodeHandshakes} from '../../../src/lib/dtls/messages/handshake.js'
import {parseRecords} from '../../../src/lib/dtls/record.js'
import {type DtlsAgreement, ServerHandshake} from '../../../src/lib/dtls/server.js'
import {PSK_SUITE_IDS} from '../../../src/lib/dtls/suites.js'

/** Runs our client against our server in memory; returns both channels. */
function run(client: ClientHandshake, agreement: DtlsAgreement) {
  const [first] = client.flight
  const [rec] = parseRecords(first)
  const [msg] = decodeHandshakes(rec.fragment)
  assert.equal(msg.msgType, HandshakeType.ClientHello)
  const server = new ServerHandshake(agreement, decodeClientHello(msg.body), msg)
  let toClient = server.flight
  for (let round = 0; round < 4; round++) {
    const toServer: Buffer[] = []
    let clientChannel
    for (const d of toClient) {
      const step = client.onRecords(parseRecords(d))
      toServer.push(...step.send)
      clientChannel ??= step.channel
    }

    toClient = []
    let serverChannel
    for (const d of toServer) {
      const step = server.onRecords(parseRecords(d))
      toClient.push(...step.send)
      serverChannel ??= step.channel
    }

    if (clientChannel && (serverChannel || server.isDone)) return {clientChannel, server}
    if (toClient.length === 0 && clientChannel) return {clientChannel, server}
  }

  assert.fail('handshake did not finish')
}

/** The first application record the client's channel seals. */
function firstDataRecord(clientChannel: NonNullable<ReturnType<ClientHandshake['onRecords']>['channel']>) {
  return parseRecords(clientChannel.seal(ContentType.ApplicationData, Buffer.from([0x03, 1, 2, 3])))[0]
}

describe('ClientHandshake against ServerHandshake', () => {
  it('completes PSK-NEGOTIATE and both sides agree on the keys', () => {
    const psk = crypto.randomBytes(32)
    const appId = crypto.randomBytes(32)
    const client = new ClientHandshake({mode: 'psk', appId, psk})
    const {clientChannel, server} = run(client, {mode: 'psk', id: appId, psk, suites: [...PSK_SUITE_IDS]})
    assert.equal(client.suiteName !== undefined, true)
    assert.ok(server.isDone)
    assert.equal(firstDataRecord(clientChannel).epoch, 1)
  })

  for (const [name, suite, version] of [
    ['DTLS 1.2 AES256-GCM-SHA384', 0x009d, DtlsVersion.Dtls12],
    ['DTLS 1.2 ECDHE-RSA-AES128-GCM-SHA256', 0xc02f, DtlsVersion.Dtls12],
    ['DTLS 1.2 AES256-SHA', 0x0035, DtlsVersion.Dtls12],
    ['DTLS 0.9 AES128-SHA', 0x002f, DtlsVersion.Dtls09],
  ] as const) {
    it(`completes a resumption in ${name}`, () => {
      const masterSecret = crypto.randomBytes(48)
      const sessionId = crypto.randomBytes(32)
      const client = new ClientHandshake({mode: 'resume', sessionId, masterSecret, suite, version})
      const {server} = run(client, {mode: 'resume', id: sessionId, masterSecret, suite, version})
      assert.ok(server.isDone, 'the server did not accept our Finished')
    })
  }

  it('refuses a server Finished made with another master secret', () => {
    const sessionId = crypto.randomBytes(32)
    const client = new ClientHandshake({mode: 'resume', sessionId, masterSecret: crypto.randomBytes(48), suite: 0x009d, version: DtlsVersion.Dtls12})
    assert.throws(
      () => run(client, {mode: 'resume', id: sessionId, masterSecret: crypto.randomBytes(48), suite: 0x009d, version: DtlsVersion.Dtls12}),
      (e: unknown) => (e as {code?: string}).code === 'DTLS_BAD_MAC' || (e as {code?: string}).code === 'DTLS_BAD_FINISHED',
    )
  })
})
