/**
 * The DTLS UDP listener against hostile datagrams: each is dropped with its code and counted,
 * and the listener still answers a real (captured) ClientHello afterwards.
 */
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import dgram from 'node:dgram'
import {after, before, describe, it} from 'node:test'

import {DtlsLink} from '../../../src/lib/gateway/dtls-link.js'
import {DtlsListener} from '../../../src/lib/gateway/udp.js'
import {noopLogger} from '../../../src/lib/log/logger.js'
import {Session} from '../../../src/lib/session/store.js'
import {createMemoryTun} from '../../../src/lib/tun/memory.js'
import {PSK_SUITE_IDS} from '../../../src/lib/dtls/suites.js'
import {ClientHandshake} from '../../../src/lib/dtls/client.js'
import {ContentType, DtlsVersion} from '../../../src/lib/dtls/constants.js'
import {parseRecords} from '../../../src/lib/dtls/record.js'
import type {DtlsAgreement} from '../../../src/lib/dtls/server.js'
import {hex, loadVectors} from '../dtls/vectors.js'

const vector = loadVectors().find((v) => v.file === 'psk-negotiate-tls12-aes256gcm.json')

describe('DtlsListener', () => {
  let listener: DtlsListener
  let link: DtlsLink
  let client: dgram.Socket
  const session = new Session('alice', undefined, '127.0.0.1', 'test', Buffer.alloc(32))

  before(async () => {
    listener = new DtlsListener('127.0.0.1', noopLogger)
    await listener.listen(0)
    const v = vector!
    link = linkOn(listener, session, 'mem0', {agreement: {mode: 'psk', id: hex(v.client_hello_session_id), psk: hex(v.psk!), suites: PSK_SUITE_IDS}, mtu: 1400, choice: 'PSK-NEGOTIATE'})
    listener.add(link)
    client = dgram.createSocket('udp4')
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r))
  })

  after(() => {
    listener.close()
    client.close()
  })

  const send = (buf: Buffer) => new Promise<void>((r) => client.send(buf, listener.port, '127.0.0.1', () => r()))
  const settle = () => new Promise((r) => setTimeout(r, 50))
  const count = (code: string) => listener.dropCounts()[code] ?? 0

  const record = (type: number, version: number, epoch: number, seq: number, body: Buffer) => {
    const h = Buffer.alloc(13)
    h[0] = type
    h.writeUInt16BE(version, 1)
    h.writeUInt16BE(epoch, 3)
    h.writeUIntBE(seq, 5, 6)
    h.writeUInt16BE(body.length, 11)
    return Buffer.concat([h, body])
  }

  const cases: [string, string, () => Buffer][] = [
    ['a datagram shorter than a record header', 'DTLS_RECORD_TOO_SHORT', () => Buffer.from('17fefd0001', 'hex')],
    ['a length running past the datagram', 'DTLS_RECORD_TOO_SHORT', () => record(23, 0xfefd, 1, 1, Buffer.alloc(40)).subarray(0, 30)],
    ['an oversized record length', 'DTLS_RECORD_TOO_LONG', () => {
      const r = record(23, 0xfefd, 1, 1, Buffer.alloc(8))
      r.writeUInt16BE(0xffff, 11)
      return r
    }],
    ['a record version that is not DTLS', 'DTLS_BAD_VERSION', () => record(23, 0x0303, 1, 1, Buffer.alloc(40))],
    ['application data from an unknown address', 'DTLS_UNKNOWN_PEER', () => record(23, 0xfefd, 1, 1, crypto.randomBytes(60))],
    ['a ClientHello for an unknown session', 'DTLS_UNKNOWN_SESSION', () => {
      const hello = hex(vector!.datagrams[0].udp_payload_hex)
      hello[13 + 12 + 2 + 32 + 1] ^= 0xff // first byte of the session id
      return hello
    }],
  ]

  for (const [what, code, make] of cases) {
    it(`drops ${what} (${code})`, async () => {
      const before = count(code)
      await send(make())
      await settle()
      assert.equal(count(code), before + 1, JSON.stringify(listener.dropCounts()))
    })
  }

  it('drops 200 random datagrams without a throw, then still answers a ClientHello', async () => {
    for (let i = 0; i < 200; i++) await send(crypto.randomBytes(1 + (i * 37) % 1400))
    await settle()
    const total = Object.values(listener.dropCounts()).reduce((a, b) => a + b, 0)
    assert.ok(total >= 200 + cases.length, `only ${total} drops counted`)

    const answer = new Promise<Buffer>((r) => client.once('message', (m) => r(m)))
    await send(hex(vector!.datagrams[0].udp_payload_hex))
    const sh = await answer
    assert.equal(sh[0], 22)
    assert.equal(sh[13], 2, 'a ServerHello')
  })

  it('sizes the DTLS MTU by the suite the PSK handshake picked, not the estimate in the offer', async () => {
    // The offer assumed ChaCha20 (29 bytes of overhead): 1500 - 20 - 8 - 29 - 1 = 1442. The
    // client's first suite is AES-256-GCM (37 bytes), which leaves 1434.
    const psk = crypto.randomBytes(32)
    const appId = crypto.randomBytes(32)
    const s2 = new Session('bob', undefined, '127.0.0.1', 'test', Buffer.alloc(32))
    const link2 = linkOn(listener, s2, 'mem1', {agreement: {mode: 'psk', id: appId, psk, suites: PSK_SUITE_IDS}, mtu: 1442, choice: 'PSK-NEGOTIATE'})
    listener.add(link2)
    const peer = dgram.createSocket('udp4')
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r))
    try {
      const hs = new ClientHandshake({mode: 'psk', appId, psk})
      const up = new Promise<NonNullable<ReturnType<ClientHandshake['onRecords']>['channel']>>((resolve) => {
        peer.on('message', (d) => {
          const step = hs.onRecords(parseRecords(d))
          for (const out of step.send) peer.send(out, listener.port, '127.0.0.1')
          if (step.channel) resolve(step.channel)
        })
      })
      assert.equal(link2.mtu, 1442)
      for (const out of hs.flight) peer.send(out, listener.port, '127.0.0.1')
      const channel = await up
      const end = Date.now() + 2000
      while (!s2.dtls?.isUp && Date.now() < end) await settle()
      assert.equal(s2.dtls?.cipher, 'DTLS1.2 PSK-AES-256-GCM')
      assert.equal(link2.mtu, 1434)

      // The client moves to another port: its first authenticated record moves the session,
      // and its old address is no longer routed to it (a garbage record from there is from
      // an unknown peer, not a bad MAC on this session).
      const moved = dgram.createSocket('udp4')
      await new Promise<void>((r) => moved.bind(0, '127.0.0.1', r))
      try {
        const keepalive = channel.seal(ContentType.ApplicationData, Buffer.from([0x07]))
        await new Promise<void>((r) => moved.send(keepalive, listener.port, '127.0.0.1', () => r()))
        await settle()
        assert.equal(s2.dtls?.remote, `127.0.0.1:${moved.address().port}`)
        const [unknownBefore, macBefore] = [count('DTLS_UNKNOWN_PEER'), count('DTLS_BAD_MAC')]
        const junk = record(23, 0xfefd, 1, 99, crypto.randomBytes(60))
        await new Promise<void>((r) => peer.send(junk, listener.port, '127.0.0.1', () => r()))
        await settle()
        assert.deepEqual([count('DTLS_UNKNOWN_PEER'), count('DTLS_BAD_MAC')], [unknownBefore + 1, macBefore])
      } finally {
        moved.close()
      }
    } finally {
      listener.remove(link2)
      peer.close()
    }
  })

  it('resends its resumption flight when the client\'s Finished is lost, until the client answers', async () => {
    // Resumption: the server finishes first, so when the client's CCS + Finished is lost only
    // a timer on our side brings the handshake to an end (RFC 6347 §4.2.4).
    const sessionId = crypto.randomBytes(32)
    const masterSecret = crypto.randomBytes(48)
    const s3 = new Session('carol', undefined, '127.0.0.1', 'test', Buffer.alloc(32))
    const link3 = linkOn(listener, s3, 'mem2', {agreement: {mode: 'resume', id: sessionId, masterSecret, suite: 0x009d, version: DtlsVersion.Dtls12}, mtu: 1400, choice: 'AES256-GCM-SHA384'})
    listener.add(link3)
    const peer = dgram.createSocket('udp4')
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r))
    try {
      const hs = new ClientHandshake({mode: 'resume', sessionId, masterSecret, suite: 0x009d, version: DtlsVersion.Dtls12})
      const arrivals: number[] = []
      let finished: Buffer[] = []
      peer.on('message', (d) => {
        arrivals.push(Date.now())
        if (arrivals.length === 1) {
          // The first server flight: the client finishes, and its Finished is lost on the way
          const step = hs.onRecords(parseRecords(d))
          assert.ok(step.channel, 'the client finished on the first flight')
          finished = step.send
          return
        }

        // A repeated server flight: the client repeats its last flight, as GnuTLS and OpenSSL do
        for (const out of finished) peer.send(out, listener.port, '127.0.0.1')
      })
      const started = Date.now()
      for (const out of hs.flight) peer.send(out, listener.port, '127.0.0.1')
      const end = Date.now() + 5000
      while (!s3.dtls?.isUp && Date.now() < end) await settle()
      assert.equal(s3.dtls?.isUp, true, 'DTLS came up after our retransmission')
      assert.equal(s3.dtls?.mode, 'resumption')
      assert.equal(arrivals.length, 2, 'one retransmission, then nothing more')
      assert.ok(arrivals[1] - started >= 900, `retransmitted after ${arrivals[1] - started} ms, not at once`)
      assert.equal(link3.counters.flightsResent, 1)
      await new Promise((r) => setTimeout(r, 2200))
      assert.equal(arrivals.length, 2, 'the timer stopped once the client\'s Finished verified')
    } finally {
      listener.remove(link3)
      link3.close()
      peer.close()
    }
  })

  it('drops a forged client Finished (DTLS_BAD_MAC) and makes no channel', async () => {
    const [cke] = vector!.datagrams.filter((d) => d.direction.startsWith('client')).slice(1)
    const forged = hex(cke.udp_payload_hex)
    forged[forged.length - 1] ^= 1
    const before = count('DTLS_BAD_MAC')
    await send(forged)
    await settle()
    assert.equal(count('DTLS_BAD_MAC'), before + 1)
    assert.equal(session.dtls, undefined, 'no channel from a forged Finished')
  })
})

/** A link on `listener` for `session`, over a memory TUN, as the gateway makes one at CONNECT. */
function linkOn(
  listener: DtlsListener,
  session: Session,
  tunName: string,
  offer: {agreement: DtlsAgreement; mtu: number; choice: string},
): DtlsLink {
  return new DtlsLink({
    offer: {...offer, headers: [], link: {baseMtu: 1500, remoteIsIpv6: false}},
    session,
    tun: createMemoryTun(tunName, 32),
    port: listener,
    log: noopLogger,
    dpd: 30,
  })
}
