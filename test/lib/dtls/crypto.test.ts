import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import {describe, it} from 'node:test'

import {DtlsVersion} from '../../../src/lib/dtls/constants.js'
import {keyBlock, masterSecret, openRecord, prf, prfKind, pskPremaster, sealRecordWhole} from '../../../src/lib/dtls/crypto.js'
import {parseRecords} from '../../../src/lib/dtls/record.js'
import {SUITES} from '../../../src/lib/dtls/suites.js'
import {hex, loadVectors} from './vectors.js'

const vectors = loadVectors()

describe('dtls prf', () => {
  it('matches the published TLS 1.2 P_SHA256 test vector', () => {
    // The widely circulated P_SHA256 vector (IETF TLS WG mailing list, 2009)
    const secret = hex('9bbe436ba940f017b17652849a71db35')
    const seed = hex('a0ba9f936cda311827a6f796ffd5198c')
    const out = prf('sha256', secret, 'test label', seed, 100)
    assert.equal(
      out.subarray(0, 16).toString('hex'),
      'e3f229ba727be17b8d122620557cd453',
    )
  })
})

describe('dtls key schedule from the captured vectors', () => {
  for (const v of vectors) {
    const suite = SUITES[Number(v.negotiated.cipher_suite)]
    const version = Number.parseInt(v.negotiated.version, 16)

    it(`${v.file}: rebuilds the key block from the master secret`, () => {
      assert.ok(suite, `suite ${v.negotiated.cipher_suite} implemented`)
      const kind = prfKind(suite, version)
      const kb = keyBlock(kind, suite, hex(v.master_secret), hex(v.client_random), hex(v.server_random))
      assert.equal(kb.block.toString('hex'), v.key_block)
      if (v.keys.client_write_key) assert.equal(kb.client.key.toString('hex'), v.keys.client_write_key)
      if (v.keys.server_write_iv) assert.equal(kb.server.iv.toString('hex'), v.keys.server_write_iv)
      if (v.keys.server_write_mac_key) assert.equal(kb.server.macKey.toString('hex'), v.keys.server_write_mac_key)
    })

    if (v.psk) {
      it(`${v.file}: derives the PSK-mode master secret from the PSK`, () => {
        const kind = prfKind(suite, version)
        assert.equal(pskPremaster(hex(v.psk!)).toString('hex'), v.psk_premaster_secret)
        const ms = masterSecret(kind, pskPremaster(hex(v.psk!)), hex(v.client_random), hex(v.server_random))
        assert.equal(ms.toString('hex'), v.master_secret)
      })
    }

    if (v.cstp_tls?.version === 'TLS1.2' && v.cstp_tls.master_secret) {
      it(`${v.file}: reproduces the RFC 5705 exporter without context`, () => {
        const t = v.cstp_tls!
        const seed = Buffer.concat([hex(t.client_random!), hex(t.server_random!)])
        const psk = prf(t.prf_hash as 'sha384', hex(t.master_secret!), 'EXPORTER-openconnect-psk', seed, 32)
        assert.equal(psk.toString('hex'), v.psk)
      })
    }

    it(`${v.file}: opens every encrypted record and seals it back byte for byte`, () => {
      const kb = keyBlock(prfKind(suite, version), suite, hex(v.master_secret), hex(v.client_random), hex(v.server_random))
      let checked = 0
      for (const d of v.datagrams) {
        const keys = d.direction.startsWith('client') ? kb.client : kb.server
        const recs = parseRecords(hex(d.udp_payload_hex))
        for (const [i, r] of recs.entries()) {
          const meta = d.records[i]
          if (!meta.plaintext) continue
          const pt = openRecord(suite, version, keys, r.type, r.epoch, r.seq, r.fragment)
          assert.ok(Buffer.isBuffer(pt), `${d.direction} record ${r.epoch}/${r.seq}: ${String(pt)}`)
          assert.equal(pt.toString('hex'), meta.plaintext)
          const iv = meta.explicit_iv ? hex(meta.explicit_iv) : undefined
          const again = sealRecordWhole(suite, version, keys, r.type, r.epoch, r.seq, pt, iv)
          assert.equal(again.toString('hex'), r.raw.toString('hex'))
          checked++
        }
      }

      assert.ok(checked >= 2, `only ${checked} encrypted records in the vector`)
    })
  }
})

describe('dtls record protection rejects', () => {
  const key = {key: crypto.randomBytes(32), iv: crypto.randomBytes(4), macKey: Buffer.alloc(0)}
  const gcm = SUITES[0x009d]
  const cbc = SUITES[0x0035]
  const cbcKey = {key: crypto.randomBytes(32), iv: Buffer.alloc(0), macKey: crypto.randomBytes(20)}
  const body = (rec: Buffer) => rec.subarray(13)

  it('a GCM record with one flipped bit (DTLS_BAD_MAC)', () => {
    const rec = sealRecordWhole(gcm, DtlsVersion.Dtls12, key, 23, 1, 5, Buffer.from('hello'))
    rec[rec.length - 1] ^= 1
    assert.equal(openRecord(gcm, DtlsVersion.Dtls12, key, 23, 1, 5, body(rec)), 'DTLS_BAD_MAC')
  })

  it('a GCM record opened under another sequence number (DTLS_BAD_MAC)', () => {
    const rec = sealRecordWhole(gcm, DtlsVersion.Dtls12, key, 23, 1, 5, Buffer.from('hello'))
    assert.equal(openRecord(gcm, DtlsVersion.Dtls12, key, 23, 1, 6, body(rec)), 'DTLS_BAD_MAC')
  })

  it('a fragment shorter than nonce and tag (DTLS_RECORD_TOO_SHORT)', () => {
    assert.equal(openRecord(gcm, DtlsVersion.Dtls12, key, 23, 1, 5, Buffer.alloc(20)), 'DTLS_RECORD_TOO_SHORT')
    assert.equal(openRecord(cbc, DtlsVersion.Dtls09, cbcKey, 23, 1, 5, Buffer.alloc(40)), 'DTLS_RECORD_TOO_SHORT')
  })

  it('a CBC record with a bad MAC or bad padding', () => {
    const rec = sealRecordWhole(cbc, DtlsVersion.Dtls09, cbcKey, 23, 1, 5, Buffer.from('hello world'))
    assert.equal(openRecord(cbc, DtlsVersion.Dtls09, cbcKey, 23, 1, 5, body(rec)).toString(), 'hello world')
    assert.equal(openRecord(cbc, DtlsVersion.Dtls12, cbcKey, 23, 1, 5, body(rec)), 'DTLS_BAD_MAC')
    const bad = Buffer.from(rec)
    bad[13 + 16] ^= 1 // first ciphertext block: garbles the data, the MAC catches it
    assert.equal(openRecord(cbc, DtlsVersion.Dtls09, cbcKey, 23, 1, 5, body(bad)), 'DTLS_BAD_MAC')
    const random = Buffer.concat([Buffer.alloc(13), crypto.randomBytes(64)])
    assert.match(String(openRecord(cbc, DtlsVersion.Dtls09, cbcKey, 23, 1, 5, body(random))), /DTLS_BAD_(MAC|PADDING)/)
  })
})
