/**
 * crypt(3) password hashes as ocserv's plain auth stores them in its users file.
 *
 * Read: `$1$` (MD5-crypt), `$5$` (SHA-256-crypt) and `$6$` (SHA-512-crypt), the last two with an
 * optional `rounds=N$`. Written: `$6$` by default, `$5$` on request (what ocpasswd 1.1.6 writes).
 * ocserv hands the stored string to the system crypt(), so on Debian it also takes yescrypt
 * (`$y$`), gost-yescrypt (`$gy$`), scrypt (`$7$`), bcrypt (`$2b$`/`$2y$`), SHA-1-crypt (`$sha1$`),
 * Sun MD5 (`$md5`), BSDi (`_`) and traditional DES; anygate checks those through the same
 * system crypt (`system-crypt.ts`, the native addon) and, where that is missing, reports them
 * as unsupported and never matches them.
 *
 * These functions are synchronous and take ~10 ms for the default rounds: the serve path runs
 * them in a worker (`password-worker.ts`), the CLI calls them directly.
 */
import {createHash, randomInt, timingSafeEqual} from 'node:crypto'

import {encrypt as shaCrypt} from 'unixcrypt'

import {systemCrypt} from './system-crypt.js'

/** The alphabet crypt(3) uses for salts and its own base-64 encoding. */
const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const SHA_CRYPT_SALT_LEN = 16
const MD5_CRYPT_SALT_MAX = 8
const MD5_CRYPT_ROUNDS = 1000
const MD5_CRYPT_PREFIX = '$1$'
/**
 * Longest password hashed or checked. SHA-crypt's cost grows with the password's length, so an
 * unbounded one would let a login request buy seconds of CPU.
 */
export const MAX_PASSWORD_BYTES = 1024

export const HashScheme = {
  Md5Crypt: 'md5-crypt',
  Sha256Crypt: 'sha256-crypt',
  Sha512Crypt: 'sha512-crypt',
} as const
export type HashScheme = (typeof HashScheme)[keyof typeof HashScheme]

/** The schemes `hashPassword` can write, by the name the CLI's `--hash` flag takes. */
export const WRITABLE_SCHEMES = {sha512: HashScheme.Sha512Crypt, sha256: HashScheme.Sha256Crypt}
export type WritableScheme = keyof typeof WRITABLE_SCHEMES

/** Schemes only the system's crypt(3) checks here, by the prefix of their hashes. */
const SYSTEM_SCHEMES: [prefix: string, name: string][] = [
  ['$y$', 'yescrypt'],
  ['$gy$', 'gost-yescrypt'],
  ['$7$', 'scrypt'],
  ['$2', 'bcrypt'],
  ['$sha1$', 'sha1-crypt'],
  ['$md5', 'sun-md5-crypt'],
  ['_', 'bsdi-des-crypt'],
]

/**
 * Names the scheme of a stored hash (without any `!` lock prefix): one we verify, or the name of
 * one we recognise but cannot check, or `unknown`.
 */
export function describeHash(hash: string): {scheme: HashScheme} | {unsupported: string} {
  if (hash.startsWith('$1$')) return {scheme: HashScheme.Md5Crypt}
  if (hash.startsWith('$5$')) return {scheme: HashScheme.Sha256Crypt}
  if (hash.startsWith('$6$')) return {scheme: HashScheme.Sha512Crypt}

  for (const [prefix, name] of SYSTEM_SCHEMES) {
    if (hash.startsWith(prefix)) return {unsupported: name}
  }

  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return {unsupported: 'des-crypt'}
  return {unsupported: 'unknown'}
}

/** A fresh salt of `len` characters drawn uniformly from the crypt alphabet. */
function randomSalt(len: number): string {
  let salt = ''
  for (let i = 0; i < len; i++) salt += CRYPT_ALPHABET[randomInt(CRYPT_ALPHABET.length)]
  return salt
}

/** Hashes a password for the users file: `$6$` + 16 random salt characters by default. */
export function hashPassword(password: string, scheme: WritableScheme = 'sha512'): string {
  const id = scheme === 'sha256' ? '5' : '6'
  return shaCrypt(password, `$${id}$${randomSalt(SHA_CRYPT_SALT_LEN)}`)
}

/**
 * Whether `verifyPassword` can check this hash: one of ours, or a scheme the system's crypt(3)
 * checks when its addon is loaded.
 */
export function isCheckable(hash: string): boolean {
  const described = describeHash(hash)
  return 'scheme' in described || (described.unsupported !== 'unknown' && systemCrypt() !== undefined)
}

/**
 * True when `password` matches the stored crypt string. Locked (`!…`), empty and unknown hashes
 * never match, nor do the system's schemes without its crypt. Compares in constant time for
 * equal lengths.
 */
export function verifyPassword(password: string, hash: string): boolean {
  const described = describeHash(hash)
  if (!('scheme' in described) && !isCheckable(hash)) return false
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return false

  let computed: string | null
  try {
    if (!('scheme' in described)) computed = systemCrypt()!.hash(password, hash)
    else if (described.scheme === HashScheme.Md5Crypt) computed = md5Crypt(password, hash)
    else computed = shaCrypt(password, hash.slice(0, hash.lastIndexOf('$')))
  } catch {
    // unixcrypt throws on a salt outside the crypt alphabet, the addon on a NUL in the
    // password: such a check matches nothing.
    return false
  }

  if (computed === null) return false

  const a = Buffer.from(computed)
  const b = Buffer.from(hash)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * MD5-crypt as FreeBSD defined it and glibc implements it: `$1$`, up to 8 salt characters, 1000
 * rounds of MD5 over password, salt and the previous digest. `setting` is a full hash or just
 * `$1$salt`; returns the full hash.
 */
export function md5Crypt(password: string, setting: string): string {
  if (!setting.startsWith(MD5_CRYPT_PREFIX)) throw new RangeError('not an MD5-crypt setting')
  const rest = setting.slice(MD5_CRYPT_PREFIX.length)
  const end = rest.indexOf('$')
  const salt = (end === -1 ? rest : rest.slice(0, end)).slice(0, MD5_CRYPT_SALT_MAX)

  const pw = Buffer.from(password, 'utf8')
  const saltBytes = Buffer.from(salt, 'utf8')
  const md5 = (...parts: Buffer[]) => {
    const h = createHash('md5')
    for (const p of parts) h.update(p)
    return h.digest()
  }

  // The initial digest: password, magic, salt, then as many bytes of an alternate digest as the
  // password is long, then one byte per bit of the password length.
  const alternate = md5(pw, saltBytes, pw)
  const initial = createHash('md5').update(pw).update(MD5_CRYPT_PREFIX).update(saltBytes)
  for (let left = pw.length; left > 0; left -= 16) {
    initial.update(alternate.subarray(0, Math.min(left, 16)))
  }
  for (let bits = pw.length; bits > 0; bits >>= 1) {
    initial.update(bits & 1 ? Buffer.alloc(1) : pw.subarray(0, 1))
  }
  let digest = initial.digest()

  // The stretching rounds.
  for (let i = 0; i < MD5_CRYPT_ROUNDS; i++) {
    const h = createHash('md5')
    h.update(i & 1 ? pw : digest)
    if (i % 3) h.update(saltBytes)
    if (i % 7) h.update(pw)
    h.update(i & 1 ? digest : pw)
    digest = h.digest()
  }

  return `${MD5_CRYPT_PREFIX}${salt}$${md5CryptEncode(digest)}`
}

/** The byte order MD5-crypt's output uses: five 3-byte groups, then the last byte alone. */
const MD5_CRYPT_GROUPS = [
  [0, 6, 12],
  [1, 7, 13],
  [2, 8, 14],
  [3, 9, 15],
  [4, 10, 5],
]

function md5CryptEncode(digest: Buffer): string {
  let out = ''
  const emit = (value: number, chars: number) => {
    for (let i = 0; i < chars; i++, value >>= 6) out += CRYPT_ALPHABET[value & 0x3f]
  }

  for (const [a, b, c] of MD5_CRYPT_GROUPS)
    emit((digest[a] << 16) | (digest[b] << 8) | digest[c], 4)
  emit(digest[11], 2)
  return out
}
