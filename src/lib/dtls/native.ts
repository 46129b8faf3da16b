/**
 * The DTLS fast path's addon (`native/datapath.c`, built into `build/Release/datapath.node` by
 * `npm run build:native`): AES-GCM records on OpenSSL's EVP AEAD with a context kept per
 * direction, and a batch of TUN frames sealed in place and sent with one sendmmsg.
 *
 * Switched by `ANYGATE_NATIVE_DTLS`: `0` (or `off`) keeps every record on `node:crypto`. When
 * the addon is missing or does not load, the JS path is used and `nativeDatapathError` says why.
 * Sequence numbers and epochs stay with `DtlsChannel`: the addon is handed the first sequence
 * number of a batch and uses one per frame.
 */
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {findPackageRoot} from '../tun/native.js'

declare const aeadBrand: unique symbol
/** One EVP_CIPHER_CTX, keyed once, for one direction; opaque to JS. */
export type AeadHandle = {readonly [aeadBrand]: true}

/** What `native/datapath.c` exports. Misuse (wrong sizes, wrong handle) throws. */
export interface DatapathAddon {
  aeadNew(key: Buffer, salt: Buffer, isSeal: boolean): AeadHandle
  /** `buf` is [21 bytes room][plaintext][16 bytes room] and becomes one whole record. */
  seal(aead: AeadHandle, buf: Buffer, type: number, version: number, epoch: number, seq: number): void
  /** Decrypts in place: plaintext length at fragment offset 8, or -1 too short, -2 bad tag. */
  open(aead: AeadHandle, fragment: Buffer, type: number, version: number, epoch: number, seq: number): number
  /** Datagrams sent, or -errno when the first send failed; frame i gets sequence firstSeq + i. */
  sealBatch(
    aead: AeadHandle,
    fd: number,
    sockaddr: Buffer,
    frames: Buffer[],
    headroom: number,
    version: number,
    epoch: number,
    firstSeq: number,
    contentType: number,
    acType: number,
  ): number
  sockaddr(address: string, port: number): Buffer
}

export const OPEN_TOO_SHORT = -1

const ADDON_RELATIVE_PATH = join('build', 'Release', 'datapath.node')
const ADDON_FUNCTIONS = ['aeadNew', 'seal', 'open', 'sealBatch', 'sockaddr'] as const

let loaded: DatapathAddon | undefined
let loadError: string | undefined
let isLoadTried = false

/** True unless `ANYGATE_NATIVE_DTLS` is `0`, `off` or `false`. */
export function isNativeDtlsEnabled(): boolean {
  const v = (process.env.ANYGATE_NATIVE_DTLS ?? '').toLowerCase()
  return v !== '0' && v !== 'off' && v !== 'false'
}

/** Loads the addon once (the switch is read then too); undefined when off or not loadable. */
export function nativeDatapath(): DatapathAddon | undefined {
  if (isLoadTried) return loaded
  isLoadTried = true
  if (!isNativeDtlsEnabled()) return undefined
  const path = join(findPackageRoot(), ADDON_RELATIVE_PATH)
  if (!existsSync(path)) {
    loadError = `${path} not found: run \`npm run build:native\``
    return undefined
  }

  try {
    const addon = createRequire(join(findPackageRoot(), 'package.json'))(path) as Record<string, unknown>
    const missing = ADDON_FUNCTIONS.filter((fn) => typeof addon[fn] !== 'function')
    if (missing.length > 0) throw new Error(`lacks ${missing.join(', ')}`)
    loaded = addon as unknown as DatapathAddon
  } catch (err) {
    loadError = `cannot load ${path}: ${err instanceof Error ? err.message : String(err)}`
  }
  return loaded
}

/** Why the addon is not in use, for the log; undefined when it is loaded or not tried. */
export function nativeDatapathError(): string | undefined {
  return loadError
}
