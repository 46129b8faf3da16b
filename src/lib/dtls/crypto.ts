/**
 * Key schedule and record protection on `node:crypto` (dtls-and-datapath.md §7).
 *
 * PRFs: TLS 1.2 P_hash (RFC 5246 §5) and the TLS 1.0 MD5⊕SHA1 PRF (RFC 2246 §5) for DTLS 0.9.
 * Record protection: AES-GCM (RFC 5288), ChaCha20-Poly1305 (RFC 7905) and CBC with
 * MAC-then-encrypt HMAC (RFC 5246 §6.2.3.2), each with the 8-byte epoch‖seq as sequence number.
 * Pure functions over buffers: no sockets, no timers.
 */
import crypto from 'node:crypto'

import {DTLS_RECORD_HEADER_LEN, DtlsVersion, MASTER_SECRET_LEN, VERIFY_DATA_LEN} from './constants.js'
import type {CipherSuite, PrfKind} from './suites.js'

function pHash(hash: string, secret: Buffer, seed: Buffer, len: number): Buffer {
  const out = Buffer.allocUnsafe(len)
  let a = seed
  let done = 0
  while (done < len) {
    a = crypto.createHmac(hash, secret).update(a).digest()
    const block = crypto.createHmac(hash, secret).update(a).update(seed).digest()
    done += block.copy(out, done)
  }

  return out
}

/** PRF(secret, label, seed) cut to `len` bytes, for the given PRF kind. */
export function prf(kind: PrfKind, secret: Buffer, label: string, seed: Buffer, len: number): Buffer {
  const labelSeed = Buffer.concat([Buffer.from(label, 'latin1'), seed])
  if (kind !== 'tls10') return pHash(kind, secret, labelSeed, len)

  // RFC 2246 §5: halves overlap by one byte when the secret's length is odd
  const half = Math.ceil(secret.length / 2)
  const md5 = pHash('md5', secret.subarray(0, half), labelSeed, len)
  const sha1 = pHash('sha1', secret.subarray(secret.length - half), labelSeed, len)
  for (let i = 0; i < len; i++) md5[i] ^= sha1[i]
  return md5
}

/** The PRF a suite uses under a record version: DTLS 0.9 always uses the TLS 1.0 PRF (§5.1). */
export function prfKind(suite: CipherSuite, version: number): PrfKind {
  return version === DtlsVersion.Dtls09 ? 'tls10' : suite.prf
}

/** The hash of the handshake transcript that the Finished PRF takes as seed (§7.7). */
export function transcriptHash(kind: PrfKind, messages: Buffer[]): Buffer {
  if (kind !== 'tls10') {
    const h = crypto.createHash(kind)
    for (const m of messages) h.update(m)
    return h.digest()
  }

  const md5 = crypto.createHash('md5')
  const sha1 = crypto.createHash('sha1')
  for (const m of messages) {
    md5.update(m)
    sha1.update(m)
  }

  return Buffer.concat([md5.digest(), sha1.digest()])
}

export function verifyData(kind: PrfKind, master: Buffer, label: string, hash: Buffer): Buffer {
  return prf(kind, master, label, hash, VERIFY_DATA_LEN)
}

/** RFC 4279 §2 premaster for a PSK of N bytes: N zeros framed by lengths, then the PSK. */
export function pskPremaster(psk: Buffer): Buffer {
  const n = psk.length
  const out = Buffer.alloc(2 + n + 2 + n)
  out.writeUInt16BE(n, 0)
  out.writeUInt16BE(n, 2 + n)
  psk.copy(out, 4 + n)
  return out
}

export function masterSecret(kind: PrfKind, premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return prf(kind, premaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), MASTER_SECRET_LEN)
}

/** One direction's keys. `iv` is the AEAD salt/IV; empty for CBC (explicit IV per record). */
export interface DirectionKeys {
  key: Buffer
  iv: Buffer
  macKey: Buffer
}

export interface KeyBlock {
  client: DirectionKeys
  server: DirectionKeys
  /** Exactly the bytes consumed, for tests. */
  block: Buffer
}

/** RFC 5246 §6.3: the key block, seeded server_random ‖ client_random, cut as §7.2. */
export function keyBlock(kind: PrfKind, suite: CipherSuite, master: Buffer, clientRandom: Buffer, serverRandom: Buffer): KeyBlock {
  const isAead = suite.macLen === 0
  const ivLen = isAead ? suite.ivLen : 0
  const total = 2 * (suite.macLen + suite.keyLen + ivLen)
  const block = prf(kind, master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), total)
  let at = 0
  const take = (n: number) => block.subarray(at, (at += n))
  const clientMac = take(suite.macLen)
  const serverMac = take(suite.macLen)
  const clientKey = take(suite.keyLen)
  const serverKey = take(suite.keyLen)
  const clientIv = take(ivLen)
  const serverIv = take(ivLen)
  return {
    client: {key: clientKey, iv: clientIv, macKey: clientMac},
    server: {key: serverKey, iv: serverIv, macKey: serverMac},
    block,
  }
}

const TAG_LEN = 16
const EXPLICIT_NONCE_LEN = 8

/** Why a protected record was refused; the codes are counted and logged at debug. */
export type OpenFailure = 'DTLS_RECORD_TOO_SHORT' | 'DTLS_BAD_MAC' | 'DTLS_BAD_PADDING'

/** Writes the 13-byte record header at `out[at]`. */
export function writeRecordHeader(out: Buffer, at: number, type: number, version: number, epoch: number, seq: number, length: number) {
  out[at] = type
  out.writeUInt16BE(version, at + 1)
  out.writeUInt16BE(epoch, at + 3)
  out.writeUIntBE(seq, at + 5, 6)
  out.writeUInt16BE(length, at + 11)
}

/** epoch‖seq ‖ type ‖ version ‖ length: the AEAD AAD and the start of the CBC MAC input. */
function pseudoHeader(type: number, version: number, epoch: number, seq: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(13)
  h.writeUInt16BE(epoch, 0)
  h.writeUIntBE(seq, 2, 6)
  h[8] = type
  h.writeUInt16BE(version, 9)
  h.writeUInt16BE(length, 11)
  return h
}

function chachaNonce(iv: Buffer, epoch: number, seq: number): Buffer {
  const n = Buffer.from(iv)
  n[4] ^= epoch >>> 8
  n[5] ^= epoch & 0xff
  const hi = Math.floor(seq / 0x100000000)
  const lo = seq >>> 0
  n[6] ^= (hi >>> 8) & 0xff
  n[7] ^= hi & 0xff
  n[8] ^= lo >>> 24
  n[9] ^= (lo >>> 16) & 0xff
  n[10] ^= (lo >>> 8) & 0xff
  n[11] ^= lo & 0xff
  return n
}

/** Bytes a sealed fragment carries in front of the ciphertext: explicit nonce or IV. */
export function explicitLen(suite: CipherSuite): number {
  if (suite.cipher === 'chacha20-poly1305') return 0
  return suite.macLen === 0 ? EXPLICIT_NONCE_LEN : suite.ivLen
}

/**
 * Seals `plaintext` as one record. `head` must be a buffer of exactly 13 + explicitLen(suite)
 * bytes (it may be the headroom in front of the plaintext); the header and explicit IV/nonce
 * are written into it. Returns the pieces of the record, in order, for one `send`.
 * `iv` overrides the random CBC IV (tests replaying captures only).
 */
export function sealRecord(
  suite: CipherSuite,
  version: number,
  keys: DirectionKeys,
  type: number,
  epoch: number,
  seq: number,
  head: Buffer,
  plaintext: Buffer,
  iv?: Buffer,
): Buffer[] {
  const ex = explicitLen(suite)
  const len = plaintext.length

  // AEAD (GCM, ChaCha20-Poly1305): explicit nonce = epoch‖seq, as GnuTLS (§7.4)
  if (suite.macLen === 0) {
    writeRecordHeader(head, 0, type, version, epoch, seq, ex + len + TAG_LEN)
    let nonce: Buffer
    if (ex > 0) {
      head.writeUInt16BE(epoch, DTLS_RECORD_HEADER_LEN)
      head.writeUIntBE(seq, DTLS_RECORD_HEADER_LEN + 2, 6)
      nonce = Buffer.concat([keys.iv, head.subarray(DTLS_RECORD_HEADER_LEN)])
    } else {
      nonce = chachaNonce(keys.iv, epoch, seq)
    }

    const c = crypto.createCipheriv(suite.cipher as 'aes-256-gcm', keys.key, nonce, {authTagLength: TAG_LEN})
    c.setAAD(pseudoHeader(type, version, epoch, seq, len))
    const ct = c.update(plaintext)
    c.final()
    return [head, ct, c.getAuthTag()]
  }

  // CBC, MAC-then-encrypt with minimal padding (§7.6)
  const block = suite.ivLen
  const mac = crypto
    .createHmac(suite.macHash ?? 'sha1', keys.macKey)
    .update(pseudoHeader(type, version, epoch, seq, len))
    .update(plaintext)
    .digest()
  const padLen = block - ((len + mac.length + 1) % block)
  const tail = Buffer.allocUnsafe(mac.length + padLen + 1)
  mac.copy(tail, 0)
  tail.fill(padLen, mac.length)
  const explicitIv = iv ?? crypto.randomBytes(block)
  writeRecordHeader(head, 0, type, version, epoch, seq, block + len + tail.length)
  explicitIv.copy(head, DTLS_RECORD_HEADER_LEN)
  const c = crypto.createCipheriv(suite.cipher, keys.key, explicitIv).setAutoPadding(false)
  return [head, c.update(plaintext), c.update(tail), c.final()]
}

/** Seals into a fresh buffer (handshake messages, DPD answers): not the hot path. */
export function sealRecordWhole(
  suite: CipherSuite,
  version: number,
  keys: DirectionKeys,
  type: number,
  epoch: number,
  seq: number,
  plaintext: Buffer,
  iv?: Buffer,
): Buffer {
  const head = Buffer.allocUnsafe(DTLS_RECORD_HEADER_LEN + explicitLen(suite))
  return Buffer.concat(sealRecord(suite, version, keys, type, epoch, seq, head, plaintext, iv))
}

/**
 * Opens one protected fragment (the record body after the 13-byte header). Returns the
 * plaintext, or the reason it was refused. Never throws on peer input.
 */
export function openRecord(
  suite: CipherSuite,
  version: number,
  keys: DirectionKeys,
  type: number,
  epoch: number,
  seq: number,
  fragment: Buffer,
): Buffer | OpenFailure {
  const ex = explicitLen(suite)

  // AEAD
  if (suite.macLen === 0) {
    const len = fragment.length - ex - TAG_LEN
    if (len < 0) return 'DTLS_RECORD_TOO_SHORT'
    const nonce = ex > 0 ? Buffer.concat([keys.iv, fragment.subarray(0, ex)]) : chachaNonce(keys.iv, epoch, seq)
    const d = crypto.createDecipheriv(suite.cipher as 'aes-256-gcm', keys.key, nonce, {authTagLength: TAG_LEN})
    d.setAAD(pseudoHeader(type, version, epoch, seq, len))
    d.setAuthTag(fragment.subarray(ex + len))
    const pt = d.update(fragment.subarray(ex, ex + len))
    try {
      d.final()
    } catch {
      return 'DTLS_BAD_MAC'
    }

    return pt
  }

  // CBC: check padding and MAC; both computed before deciding (RFC 5246 §6.2.3.2)
  const block = suite.ivLen
  const body = fragment.length - block
  if (body < suite.macLen + 1 || body % block !== 0) return 'DTLS_RECORD_TOO_SHORT'
  const d = crypto.createDecipheriv(suite.cipher, keys.key, fragment.subarray(0, block)).setAutoPadding(false)
  const pt = Buffer.concat([d.update(fragment.subarray(block)), d.final()])
  const padLen = pt[pt.length - 1]
  let isPadBad = padLen + 1 + suite.macLen > pt.length
  const padStart = isPadBad ? pt.length - 1 : pt.length - 1 - padLen
  for (let i = padStart; i < pt.length; i++) if (pt[i] !== padLen) isPadBad = true
  const dataLen = Math.max(0, padStart - suite.macLen)
  const mac = crypto
    .createHmac(suite.macHash ?? 'sha1', keys.macKey)
    .update(pseudoHeader(type, version, epoch, seq, dataLen))
    .update(pt.subarray(0, dataLen))
    .digest()
  const isMacBad = !crypto.timingSafeEqual(mac, pt.subarray(dataLen, dataLen + suite.macLen))
  if (isPadBad) return 'DTLS_BAD_PADDING'
  if (isMacBad) return 'DTLS_BAD_MAC'
  return pt.subarray(0, dataLen)
}
