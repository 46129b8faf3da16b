/**
 * The native AES-GCM fast path (native/datapath.c) against the JS record layer: byte for byte
 * on the captured vectors and on random records, hostile fragments, and a sealed batch sent
 * with sendmmsg to a real UDP socket.
 */
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import dgram from 'node:dgram'
import {after, before, describe, it} from 'node:test'

import {DtlsChannel} from '../../../src/lib/dtls/channel.js'
import {AcType, ContentType, DTLS_HEADROOM, DtlsVersion} from '../../../src/lib/dtls/constants.js'
import {type DirectionKeys, keyBlock, openRecord, prfKind, sealRecordWhole} from '../../../src/lib/dtls/crypto.js'
import {nativeDatapath, nativeDatapathError} from '../../../src/lib/dtls/native.js'
import {parseRecords} from '../../../src/lib/dtls/record.js'
import {type CipherSuite, SUITES} from '../../../src/lib/dtls/suites.js'
import {DtlsListener} from '../../../src/lib/gateway/udp.js'
import {noopLogger} from '../../../src/lib/log/logger.js'
import {hex, loadVectors} from './vectors.js'

const addon = nativeDatapath()
const skip = !addon && `datapath addon not loaded: ${nativeDatapathError() ?? 'ANYGATE_NATIVE_DTLS off'}`
const isGcm = (s: CipherSuite) => s.cipher === 'aes-128-gcm' || s.cipher === 'aes-256-gcm'
const ROOM = 13 + 8
const TAG = 16

/** The native seal of one record: [room][plaintext][tag room] sealed in place. */
function nativeSeal(keys: DirectionKeys, version: number, type: number, epoch: number, seq: number, pt: Buffer): Buffer {
  const buf = Buffer.alloc(ROOM + pt.length + TAG)
  pt.copy(buf, ROOM)
  addon!.seal(addon!.aeadNew(keys.key, keys.iv, true), buf, type, version, epoch, seq)
  return buf
}

const randomKeys = (suite: CipherSuite): DirectionKeys => ({
  key: crypto.randomBytes(suite.keyLen),
  iv: crypto.randomBytes(suite.ivLen),
  macKey: Buffer.alloc(0),
})

describe('native aes-gcm on the captured vectors', {skip}, () => {
  for (const v of loadVectors()) {
    const suite = SUITES[Number(v.negotiated.cipher_suite)]
    if (!suite || !isGcm(suite)) continue
    const version = Number.parseInt(v.negotiated.version, 16)

    it(`${v.file}: seals every captured record byte for byte and opens it back`, () => {
      const kb = keyBlock(prfKind(suite, version), suite, hex(v.master_secret), hex(v.client_random), hex(v.server_random))
      let checked = 0
      for (const d of v.datagrams) {
        const keys = d.direction.startsWith('client') ? kb.client : kb.server
        for (const [i, r] of parseRecords(hex(d.udp_payload_hex)).entries()) {
          if (!d.records[i].plaintext) continue
          const pt = hex(d.records[i].plaintext!)
          const sealed = nativeSeal(keys, version, r.type, r.epoch, r.seq, pt)
          assert.equal(sealed.toString('hex'), r.raw.toString('hex'))
          assert.equal(sealed.toString('hex'), sealRecordWhole(suite, version, keys, r.type, r.epoch, r.seq, pt).toString('hex'))

          const frag = Buffer.from(r.fragment)
          const n = addon!.open(addon!.aeadNew(keys.key, keys.iv, false), frag, r.type, version, r.epoch, r.seq)
          assert.equal(frag.subarray(8, 8 + n).toString('hex'), d.records[i].plaintext)
          checked++
        }
      }

      assert.ok(checked >= 2, `only ${checked} encrypted records in the vector`)
    })
  }
})

describe('native aes-gcm against sealRecord', {skip}, () => {
  for (const id of [0x00a8, 0x00a9]) {
    const suite = SUITES[id]
    it(`${suite.label}: matches the JS seal for random records, one context reused`, () => {
      const keys = randomKeys(suite)
      const sealer = addon!.aeadNew(keys.key, keys.iv, true)
      const opener = addon!.aeadNew(keys.key, keys.iv, false)
      for (const len of [0, 1, 15, 16, 17, 100, 1400, 16383]) {
        const seq = crypto.randomInt(2 ** 47) * 2 + 1
        const epoch = crypto.randomInt(65536)
        const pt = crypto.randomBytes(len)
        const buf = Buffer.alloc(ROOM + len + TAG)
        pt.copy(buf, ROOM)
        addon!.seal(sealer, buf, ContentType.ApplicationData, DtlsVersion.Dtls12, epoch, seq)
        const js = sealRecordWhole(suite, DtlsVersion.Dtls12, keys, ContentType.ApplicationData, epoch, seq, pt)
        assert.equal(buf.toString('hex'), js.toString('hex'), `length ${len}, seq ${seq}`)

        const frag = Buffer.from(js.subarray(13))
        assert.equal(addon!.open(opener, frag, ContentType.ApplicationData, DtlsVersion.Dtls12, epoch, seq), len)
        assert.ok(frag.subarray(8, 8 + len).equals(pt))
      }
    })
  }

  it('refuses a flipped bit, another sequence number and short or random fragments', () => {
    const suite = SUITES[0x00a9]
    const keys = randomKeys(suite)
    const opener = addon!.aeadNew(keys.key, keys.iv, false)
    const rec = sealRecordWhole(suite, DtlsVersion.Dtls12, keys, 23, 1, 5, Buffer.from('hello'))
    const flipped = Buffer.from(rec.subarray(13))
    flipped[10] ^= 1
    assert.equal(addon!.open(opener, flipped, 23, DtlsVersion.Dtls12, 1, 5), -2)
    assert.equal(addon!.open(opener, Buffer.from(rec.subarray(13)), 23, DtlsVersion.Dtls12, 1, 6), -2)
    assert.equal(addon!.open(opener, Buffer.alloc(23), 23, DtlsVersion.Dtls12, 1, 5), -1)
    for (let i = 0; i < 200; i++) {
      const junk = crypto.randomBytes(crypto.randomInt(0, 2000))
      assert.ok(addon!.open(opener, junk, 23, DtlsVersion.Dtls12, 1, i) < 0)
    }

    // The context survives failures: a good record still opens
    assert.equal(addon!.open(opener, Buffer.from(rec.subarray(13)), 23, DtlsVersion.Dtls12, 1, 5), 5)
  })

  it('rejects misuse with a throw, not a crash', () => {
    const keys = randomKeys(SUITES[0x00a9])
    assert.throws(() => addon!.aeadNew(Buffer.alloc(24), keys.iv, true), RangeError)
    assert.throws(() => addon!.aeadNew(keys.key, Buffer.alloc(12), true), RangeError)
    const sealer = addon!.aeadNew(keys.key, keys.iv, true)
    assert.throws(() => addon!.seal(sealer, Buffer.alloc(20), 23, DtlsVersion.Dtls12, 1, 1), RangeError)
    assert.throws(() => addon!.seal(sealer, Buffer.alloc(40), 23, DtlsVersion.Dtls12, 1, 2 ** 48), RangeError)
    assert.throws(() => addon!.open(sealer, Buffer.alloc(40), 23, DtlsVersion.Dtls12, 1, 1), TypeError)
  })
})

describe('native sealBatch over a real UDP socket', {skip}, () => {
  const suite = SUITES[0x00a9]
  const server = randomKeys(suite)
  const client = randomKeys(suite)
  let listener: DtlsListener
  let receiver: dgram.Socket
  const got: Buffer[] = []

  before(async () => {
    listener = new DtlsListener('127.0.0.1', noopLogger)
    await listener.listen(0)
    receiver = dgram.createSocket({type: 'udp4', recvBufferSize: 4 << 20})
    receiver.on('message', (m) => got.push(m))
    await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r))
  })

  after(() => {
    listener.close()
    receiver.close()
  })

  it('sends each frame of a packed arena as its own intact record, sequence numbers in order', async () => {
    // Frames packed as the TUN arena packs them: each headroom starts where the last frame ends
    const sizes = Array.from({length: 150}, (_, i) => [20, 1400, 64, 1, 576][i % 5] + (i % 7))
    const packets = sizes.map((n) => crypto.randomBytes(n))
    const arena = Buffer.alloc(sizes.reduce((a, n) => a + DTLS_HEADROOM + n, 0))
    const frames: Buffer[] = []
    let at = 0
    for (const p of packets) {
      p.copy(arena, at + DTLS_HEADROOM)
      frames.push(arena.subarray(at, at + DTLS_HEADROOM + p.length))
      at += DTLS_HEADROOM + p.length
    }

    const channel = new DtlsChannel(suite, DtlsVersion.Dtls12, client, server, 1, 1, 7)
    assert.ok(channel.hasFastPath)
    const peer = {address: '127.0.0.1', port: receiver.address().port, key: 'r'}
    const target = listener.batchTarget(peer)
    assert.ok(target, 'the listener offers its fd')
    const sent = channel.sealBatch(target, frames, DTLS_HEADROOM, ContentType.ApplicationData, AcType.Data)
    assert.equal(sent, frames.length)

    const deadline = Date.now() + 3000
    while (got.length < frames.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.equal(got.length, frames.length)
    for (const [i, d] of got.entries()) {
      const [rec, ...more] = parseRecords(d)
      assert.equal(more.length, 0)
      assert.equal(rec.seq, 7 + i)
      assert.equal(rec.epoch, 1)
      const pt = openRecord(suite, DtlsVersion.Dtls12, server, rec.type, rec.epoch, rec.seq, rec.fragment)
      assert.ok(Buffer.isBuffer(pt), `datagram ${i}: ${String(pt)}`)
      assert.equal(pt[0], AcType.Data)
      assert.ok(pt.subarray(1).equals(packets[i]), `datagram ${i} carries packet ${i}`)
    }

    // The JS seal continues the sequence after the batch
    const next = parseRecords(channel.seal(ContentType.ApplicationData, Buffer.from([AcType.Keepalive])))[0]
    assert.equal(next.seq, 7 + frames.length)
  })

  it('leaves a channel without a fast path (CBC) and a short headroom untouched', () => {
    const cbc = SUITES[0x008d]
    const keys = {key: crypto.randomBytes(32), iv: Buffer.alloc(0), macKey: crypto.randomBytes(20)}
    const channel = new DtlsChannel(cbc, DtlsVersion.Dtls12, keys, keys, 1, 1, 0)
    assert.equal(channel.hasFastPath, false)
    const target = {fd: 0, sockaddr: Buffer.alloc(16)}
    assert.equal(channel.sealBatch(target, [Buffer.alloc(64)], DTLS_HEADROOM, 23, 0), undefined)
    const gcm = new DtlsChannel(suite, DtlsVersion.Dtls12, client, server, 1, 1, 0)
    const frame = Buffer.alloc(64, 0xaa)
    assert.equal(gcm.sealBatch(target, [frame], 21, 23, 0), undefined)
    assert.ok(frame.equals(Buffer.alloc(64, 0xaa)))
  })
})
