/**
 * Cipher suites we implement and the AnyConnect names that select them
 * (dtls-and-datapath.md §2.4, §3.2, §7.2). A name means a different protocol depending on
 * the header it came in: `AES256-SHA` in `X-DTLS-CipherSuite` is DTLS 0.9, in
 * `X-DTLS12-CipherSuite` it is DTLS 1.2 (§14 item 4).
 */
import {DtlsVersion} from './constants.js'

export type BulkCipher = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305' | 'aes-128-cbc' | 'aes-256-cbc' | 'des-ede3-cbc'
export type PrfKind = 'sha256' | 'sha384' | 'tls10'

export interface CipherSuite {
  id: number
  /** For logs and `session.dtls.cipher`, in openconnect's words. */
  label: string
  cipher: BulkCipher
  keyLen: number
  /** AEAD: bytes of write IV from the key block (4 GCM salt, 12 ChaCha); CBC: block size. */
  ivLen: number
  /** CBC MAC hash and key length; undefined for AEAD. */
  macHash?: 'sha1' | 'sha256' | 'sha384'
  macLen: number
  /** PRF (and Finished hash) under DTLS 1.2; DTLS 0.9 always uses the TLS 1.0 PRF. */
  prf: 'sha256' | 'sha384'
  isPsk: boolean
}

const gcm128 = {cipher: 'aes-128-gcm', keyLen: 16, ivLen: 4, macLen: 0, prf: 'sha256'} as const
const gcm256 = {cipher: 'aes-256-gcm', keyLen: 32, ivLen: 4, macLen: 0, prf: 'sha384'} as const
const cbc128 = {cipher: 'aes-128-cbc', keyLen: 16, ivLen: 16, macHash: 'sha1', macLen: 20, prf: 'sha256'} as const
const cbc256 = {cipher: 'aes-256-cbc', keyLen: 32, ivLen: 16, macHash: 'sha1', macLen: 20, prf: 'sha256'} as const

export const SUITES: Record<number, CipherSuite> = {
  // PSK-NEGOTIATE (RFC 4279, RFC 5487, RFC 7905)
  0x00a9: {id: 0x00a9, label: 'PSK-AES-256-GCM', isPsk: true, ...gcm256},
  0x00a8: {id: 0x00a8, label: 'PSK-AES-128-GCM', isPsk: true, ...gcm128},
  0xccab: {
    id: 0xccab,
    label: 'PSK-CHACHA20-POLY1305',
    isPsk: true,
    cipher: 'chacha20-poly1305',
    keyLen: 32,
    ivLen: 12,
    macLen: 0,
    prf: 'sha256',
  },
  0x008d: {id: 0x008d, label: 'PSK-AES-256-CBC-SHA1', isPsk: true, ...cbc256},
  0x008c: {id: 0x008c, label: 'PSK-AES-128-CBC-SHA1', isPsk: true, ...cbc128},
  0x00ae: {id: 0x00ae, label: 'PSK-AES-128-CBC-SHA256', isPsk: true, ...cbc128, macHash: 'sha256', macLen: 32},
  // Resumption ("legacy") suites: the key exchange part is nominal (§2.4)
  0x009c: {id: 0x009c, label: 'RSA-AES-128-GCM', isPsk: false, ...gcm128},
  0x009d: {id: 0x009d, label: 'RSA-AES-256-GCM', isPsk: false, ...gcm256},
  0xc02f: {id: 0xc02f, label: 'ECDHE-RSA-AES-128-GCM', isPsk: false, ...gcm128},
  0xc030: {id: 0xc030, label: 'ECDHE-RSA-AES-256-GCM', isPsk: false, ...gcm256},
  0x002f: {id: 0x002f, label: 'RSA-AES-128-CBC-SHA1', isPsk: false, ...cbc128},
  0x0035: {id: 0x0035, label: 'RSA-AES-256-CBC-SHA1', isPsk: false, ...cbc256},
  0x000a: {
    id: 0x000a,
    label: 'RSA-3DES-CBC-SHA1',
    isPsk: false,
    cipher: 'des-ede3-cbc',
    keyLen: 24,
    ivLen: 8,
    macHash: 'sha1',
    macLen: 20,
    prf: 'sha256',
  },
}

/** PSK suites in our order of preference when the client's order ties (it never does). */
export const PSK_SUITE_IDS = [0x00a9, 0xccab, 0x008d, 0x00a8, 0x008c, 0x00ae]

export type LegacyHeader = 'X-DTLS-CipherSuite' | 'X-DTLS12-CipherSuite'

export interface LegacyName {
  header: LegacyHeader
  name: string
  suite: number
  version: DtlsVersion
}

/** Names in `X-DTLS12-CipherSuite`: DTLS 1.2 resumption, Cisco style. */
export const DTLS12_NAMES: Record<string, number> = {
  'ECDHE-RSA-AES256-GCM-SHA384': 0xc030,
  'ECDHE-RSA-AES128-GCM-SHA256': 0xc02f,
  'AES256-GCM-SHA384': 0x009d,
  'AES128-GCM-SHA256': 0x009c,
  'AES256-SHA': 0x0035,
  'AES128-SHA': 0x002f,
}

/** Names in `X-DTLS-CipherSuite`: openconnect's DTLS 1.2 resumption, or DTLS 0.9. */
export const DTLS_NAMES: Record<string, {suite: number; version: DtlsVersion}> = {
  'OC-DTLS1_2-AES256-GCM': {suite: 0x009d, version: DtlsVersion.Dtls12},
  'OC-DTLS1_2-AES128-GCM': {suite: 0x009c, version: DtlsVersion.Dtls12},
  'AES256-SHA': {suite: 0x0035, version: DtlsVersion.Dtls09},
  'AES128-SHA': {suite: 0x002f, version: DtlsVersion.Dtls09},
  'DES-CBC3-SHA': {suite: 0x000a, version: DtlsVersion.Dtls09},
}

export const PSK_NEGOTIATE = 'PSK-NEGOTIATE'

/** Every name the config may allow; DES-CBC3-SHA is off unless listed (issue 4). */
export const ALL_DTLS_CIPHER_NAMES = [
  PSK_NEGOTIATE,
  ...Object.keys(DTLS12_NAMES),
  ...Object.keys(DTLS_NAMES).filter((n) => !(n in DTLS12_NAMES)),
]
export const DEFAULT_DTLS_CIPHER_NAMES = ALL_DTLS_CIPHER_NAMES.filter((n) => n !== 'DES-CBC3-SHA')

/** The protocol version and label openconnect would print, e.g. `(DTLS1.2)-(PSK)-(AES-256-GCM)`. */
export function describeSuite(suite: CipherSuite, version: number): string {
  const v = version === DtlsVersion.Dtls09 ? 'DTLS0.9' : 'DTLS1.2'
  return `${v} ${suite.label}`
}

/** Bytes one record adds around its plaintext (header, explicit IV/nonce, tag or MAC+padding). */
export function recordOverhead(suite: CipherSuite): number {
  const header = 13
  if (suite.cipher === 'chacha20-poly1305') return header + 16
  if (suite.macLen === 0) return header + 8 + 16
  // CBC: explicit IV, MAC, and a whole block for padding, as ocserv counts (§7.6)
  return header + suite.ivLen + suite.macLen + suite.ivLen
}
