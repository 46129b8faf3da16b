import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {ContentType, DtlsVersion} from '../../../src/lib/dtls/constants.js'
import {decodeClientHello} from '../../../src/lib/dtls/messages/client-hello.js'
import {decodeHandshakes} from '../../../src/lib/dtls/messages/handshake.js'
import {parseRecords} from '../../../src/lib/dtls/record.js'
import {type DtlsAgreement, ServerHandshake} from '../../../src/lib/dtls/server.js'
import {hex, loadVectors, type Vector} from './vectors.js'

const vectors = loadVectors()

function agreementOf(v: Vector): DtlsAgreement {
  const id = hex(v.client_hello_session_id)
  if (v.psk) return {mode: 'psk', id, psk: hex(v.psk), suites: [Number(v.negotiated.cipher_suite)]}
  const version = Number.parseInt(v.negotiated.version, 16) as DtlsVersion
  return {mode: 'resume', id, masterSecret: hex(v.master_secret), suite: Number(v.negotiated.cipher_suite), version}
}

/** Feeds the captured server's random choices back in, in the order the handshake asks. */
function capturedRandom(v: Vector): (n: number) => Buffer {
  const queue = [hex(v.server_random)]
  if (v.psk) queue.push(hex(v.server_hello_session_id))
  const serverFinished = v.datagrams
    .filter((d) => d.direction.startsWith('server'))
    .flatMap((d) => d.records)
    .find((r) => r.finished)
  if (serverFinished?.explicit_iv) queue.push(hex(serverFinished.explicit_iv))
  return (n) => {
    const next = queue.shift()
    assert.ok(next && next.length === n, `unexpected random(${n})`)
    return next
  }
}

function start(v: Vector, first: Buffer) {
  const [rec] = parseRecords(first)
  const [msg] = decodeHandshakes(rec.fragment)
  const echoRecordSizeLimit = !v.file.startsWith('server-side')
  return new ServerHandshake(agreementOf(v), decodeClientHello(msg.body), msg, {random: capturedRandom(v), echoRecordSizeLimit})
}

describe('dtls server handshake replayed from captures', () => {
  for (const v of vectors) {
    it(`${v.file}: answers the captured client with the captured server bytes`, () => {
      const client = v.datagrams.filter((d) => d.direction.startsWith('client')).map((d) => hex(d.udp_payload_hex))
      const firstAppData = v.datagrams.findIndex((d) => d.records[0].content_type === ContentType.ApplicationData)
      const upTo = firstAppData < 0 ? v.datagrams.length : firstAppData
      const expected = v.datagrams
        .slice(0, upTo)
        .filter((d) => d.direction.startsWith('server'))
        .map((d) => d.udp_payload_hex)
        .join('')

      const hs = start(v, client[0])
      const sent = [...hs.flight]
      for (const dgram of client.slice(1)) {
        const recs = parseRecords(dgram)
        if (recs[0].type === ContentType.ApplicationData) break
        const step = hs.onRecords(recs)
        sent.push(...step.send)
      }

      assert.equal(Buffer.concat(sent).toString('hex'), expected)
      assert.ok(hs.isDone, 'handshake done')
    })

    it(`${v.file}: the established channel opens the client's first application record`, () => {
      const client = v.datagrams.filter((d) => d.direction.startsWith('client')).map((d) => hex(d.udp_payload_hex))
      const hs = start(v, client[0])
      let channel
      for (const dgram of client.slice(1)) {
        const recs = parseRecords(dgram)
        if (recs[0].type === ContentType.ApplicationData) {
          assert.ok(channel)
          const pt = channel.open(recs[0])
          assert.ok(Buffer.isBuffer(pt), String(pt))
          assert.equal(pt[0], 0x03, 'the MTU probe is a DPD request')
          assert.equal(channel.open(recs[0]), 'DTLS_REPLAYED')
          assert.equal(channel.open({...recs[0], epoch: 2}), 'DTLS_WRONG_EPOCH')
          return
        }

        channel = hs.onRecords(recs).channel ?? channel
      }

      assert.ok(v.file.startsWith('server-side') || v.file.includes('rekey'), 'no application record in vector')
    })
  }

  it('resends its flight when the ClientHello comes again, and refuses a forged Finished', () => {
    const v = vectors.find((x) => x.file === 'psk-negotiate-tls12-aes256gcm.json')!
    const client = v.datagrams.filter((d) => d.direction.startsWith('client')).map((d) => hex(d.udp_payload_hex))
    const hs = start(v, client[0])
    const again = hs.onRecords(parseRecords(client[0]))
    assert.deepEqual(again.send, hs.flight)

    const forged = Buffer.from(client[1])
    forged[forged.length - 1] ^= 0x80
    assert.throws(() => hs.onRecords(parseRecords(forged)), {code: 'DTLS_BAD_MAC'})
  })

  it('refuses a resumption hello with another session id or suite', () => {
    const v = vectors.find((x) => x.file === 'legacy-dtls12-aes256gcm-resumption.json')!
    const first = hex(v.datagrams[0].udp_payload_hex)
    const [rec] = parseRecords(first)
    const [msg] = decodeHandshakes(rec.fragment)
    const hello = decodeClientHello(msg.body)
    const other = {...(agreementOf(v) as Extract<DtlsAgreement, {mode: 'resume'}>)}
    assert.throws(() => new ServerHandshake({...other, id: Buffer.alloc(32)}, hello, msg), {code: 'DTLS_RESUME_MISMATCH'})
    assert.throws(() => new ServerHandshake({...other, suite: 0x009c}, hello, msg), {code: 'DTLS_RESUME_MISMATCH'})
    assert.throws(() => new ServerHandshake({...other, version: DtlsVersion.Dtls09}, hello, msg), {code: 'DTLS_BAD_VERSION'})
  })

  it('refuses a PSK hello with no suite in common', () => {
    const v = vectors.find((x) => x.file === 'psk-negotiate-tls12-aes256gcm.json')!
    const [rec] = parseRecords(hex(v.datagrams[0].udp_payload_hex))
    const [msg] = decodeHandshakes(rec.fragment)
    const agreement: DtlsAgreement = {mode: 'psk', id: Buffer.alloc(32), psk: hex(v.psk!), suites: [0x1234]}
    assert.throws(() => new ServerHandshake(agreement, decodeClientHello(msg.body), msg), {code: 'DTLS_NO_SHARED_CIPHER'})
  })
})
