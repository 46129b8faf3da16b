/**
 * The real TUN device, over the in-project addon (`native/tun.c`, built into
 * `build/Release/tun.node` by `npm run build:native`). The only module that loads the addon.
 *
 * Read path: the addon's uv_poll fires on the main loop, `drain` asks it for packets into the
 * current arena until the kernel queue is empty or `TUN_MAX_BATCH` frames are in hand, and the
 * frames go to the consumer as subarrays. Ownership: the arena is a bump allocator, so a frame
 * handed out is never written again; when the arena has no room for one more full frame a
 * fresh one replaces it, and the old one lives until the last frame viewing it is collected.
 */

import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {AnygateError, isErrnoException} from '../errors.js'
import {
  TUN_MAX_BATCH,
  emptyTunStats,
  type TunDevice,
  type TunErrorListener,
  type TunPacketsListener,
} from './device.js'

const ADDON_RELATIVE_PATH = join('build', 'Release', 'tun.node')
const BUILD_HINT = 'run `npm run build:native` in the anygate package'

/** Linux IFNAMSIZ is 16 with the terminating NUL. */
const IFNAME_MAX_BYTES = 15
/** RFC 791: every IPv4 host must take 68-byte datagrams. */
const MTU_MIN = 68
const MTU_MAX = 65535
const HEADROOM_MAX = 1024

declare const tunHandleBrand: unique symbol
/** The addon's external owning one fd; opaque to JS. */
type TunHandle = {readonly [tunHandleBrand]: true}

/** What `native/tun.c` exports. Errors thrown carry `code` (errno name) and `syscall`. */
export interface TunAddon {
  open(name: string | undefined): {handle: TunHandle; name: string}
  readBatch(
    handle: TunHandle,
    arena: Buffer,
    start: number,
    headroom: number,
    maxPacket: number,
    meta: Int32Array,
    maxCount: number,
  ): number
  /** Bytes written, or a negative errno. */
  write(handle: TunHandle, packet: Buffer): number
  watch(handle: TunHandle, onReadable: (status: number) => void, resource: object): void
  close(handle: TunHandle): void
}

const ADDON_FUNCTIONS = ['open', 'readBatch', 'write', 'watch', 'close'] as const

export interface OpenTunOptions {
  /** Interface name, at most 15 bytes; `%d` lets the kernel number it. Default: `tunN`. */
  name?: string
  /** Free bytes in front of each packet handed out (the CSTP header is 8). */
  headroom: number
  /**
   * Largest packet read; give the MTU later set with `configureTun`. A longer packet (the
   * interface MTU was raised behind our back) is dropped and counted in `stats.rxDropped`.
   */
  mtu: number
}

/**
 * The directory holding anygate's package.json, found by walking up from the file `from` (this
 * module by default), so the same code works from `src/` under tsx and from `dist/`.
 * Throws `TUN_ADDON_MISSING` when no package.json is above `from`.
 */
export function findPackageRoot(from: string = fileURLToPath(import.meta.url)): string {
  const start = dirname(from)
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) break
  }
  throw new AnygateError('TUN_ADDON_MISSING', `no package.json above ${start}: ${BUILD_HINT}`)
}

/**
 * Loads the addon from `file` (default: `build/Release/tun.node` under the package root).
 * Throws `TUN_ADDON_MISSING` when the file is absent and `TUN_ADDON_LOAD_FAILED` when it does
 * not load or lacks a function (a build for another Node ABI or from older sources).
 */
export function loadTunAddon(file?: string): TunAddon {
  const root = findPackageRoot()
  const path = file ?? join(root, ADDON_RELATIVE_PATH)
  if (!existsSync(path)) {
    throw new AnygateError('TUN_ADDON_MISSING', `tun addon not found at ${path}: ${BUILD_HINT}`)
  }

  let addon: unknown
  try {
    addon = createRequire(join(root, 'package.json'))(path)
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err)
    const msg = `cannot load ${path} (${detail}): ${BUILD_HINT}`
    throw new AnygateError('TUN_ADDON_LOAD_FAILED', msg)
  }

  const missing = ADDON_FUNCTIONS.filter((fn) => typeof Object(addon)[fn] !== 'function')
  if (missing.length > 0) {
    const list = missing.join(', ')
    throw new AnygateError('TUN_ADDON_LOAD_FAILED', `${path} lacks ${list}: ${BUILD_HINT}`)
  }
  return addon as TunAddon
}

/**
 * Creates a TUN interface (IFF_TUN, no packet-info header) and returns it unconfigured and
 * down; bring it up with `configureTun`. Needs root or CAP_NET_ADMIN. The caller owns the
 * device and must `close` it. Throws `TUN_NOT_PERMITTED`, `TUN_OPEN_FAILED` (no
 * /dev/net/tun, name in use or invalid), `TUN_ADDON_MISSING` / `TUN_ADDON_LOAD_FAILED`, and
 * RangeError for a headroom or MTU out of range.
 */
export function openTun(opts: OpenTunOptions): TunDevice {
  checkOptions(opts)
  const addon = loadTunAddon()

  let opened: {handle: TunHandle; name: string}
  try {
    opened = addon.open(opts.name)
  } catch (err) {
    throw openError(err, opts.name)
  }
  return new NativeTun(addon, opened.handle, opened.name, opts)
}

function checkOptions({name, headroom, mtu}: OpenTunOptions): void {
  if (!Number.isInteger(headroom) || headroom < 0 || headroom > HEADROOM_MAX) {
    throw new RangeError(`tun headroom ${headroom} is not an integer in 0..${HEADROOM_MAX}`)
  }
  if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) {
    throw new RangeError(`tun mtu ${mtu} is not an integer in ${MTU_MIN}..${MTU_MAX}`)
  }
  if (name === undefined || isValidIfName(name)) return

  const rule = `1 to ${IFNAME_MAX_BYTES} bytes, no whitespace, '/' or ':'`
  throw new AnygateError('TUN_OPEN_FAILED', `interface name ${JSON.stringify(name)} is not ${rule}`)
}

const isValidIfName = (name: string) =>
  Buffer.byteLength(name) >= 1 &&
  Buffer.byteLength(name) <= IFNAME_MAX_BYTES &&
  name !== '.' &&
  name !== '..' &&
  !/[\s/:]/.test(name)

function openError(err: unknown, name: string | undefined): AnygateError {
  const code = isErrnoException(err) ? err.code : undefined
  const syscall = isErrnoException(err) ? err.syscall : undefined
  const detail = err instanceof Error ? err.message : String(err)
  const what = name === undefined ? 'a tun interface' : `tun interface ${name}`

  if (syscall === 'open' && (code === 'EPERM' || code === 'EACCES')) {
    const msg = `cannot open /dev/net/tun (${detail}): run as root`
    return new AnygateError('TUN_NOT_PERMITTED', msg)
  }
  if (code === 'EPERM' || code === 'EACCES') {
    const msg = `creating ${what} needs root or CAP_NET_ADMIN (${detail})`
    return new AnygateError('TUN_NOT_PERMITTED', msg)
  }
  if (syscall === 'open' && (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO')) {
    const fix = 'load the tun module (modprobe tun) or pass the device into the container'
    return new AnygateError('TUN_OPEN_FAILED', `/dev/net/tun is not usable (${detail}): ${fix}`)
  }
  if (code === 'EBUSY') {
    return new AnygateError('TUN_OPEN_FAILED', `cannot create ${what}: the name is in use`)
  }
  if (code === 'EINVAL' && name !== undefined) {
    const msg = `cannot create ${what}: an interface of another kind has that name (${detail})`
    return new AnygateError('TUN_OPEN_FAILED', msg)
  }
  return new AnygateError('TUN_OPEN_FAILED', `cannot create ${what} (${detail})`)
}

class NativeTun implements TunDevice {
  readonly name: string
  readonly stats = emptyTunStats()

  readonly #addon: TunAddon
  readonly #handle: TunHandle
  readonly #headroom: number
  readonly #mtu: number
  /** Room one read needs: the extra byte shows that a packet was longer than the MTU. */
  readonly #frameRoom: number
  readonly #meta = new Int32Array(2 * TUN_MAX_BATCH)
  #arena = Buffer.alloc(0)
  #arenaPos = 0
  #onPackets?: TunPacketsListener
  #onError?: TunErrorListener
  #isClosed = false

  constructor(addon: TunAddon, handle: TunHandle, name: string, opts: OpenTunOptions) {
    this.#addon = addon
    this.#handle = handle
    this.name = name
    this.#headroom = opts.headroom
    this.#mtu = opts.mtu
    this.#frameRoom = opts.headroom + opts.mtu + 1
  }

  start(onPackets: TunPacketsListener, onError?: TunErrorListener): void {
    if (this.#isClosed) throw new TypeError(`tun ${this.name} is closed`)
    if (this.#onPackets) throw new TypeError(`tun ${this.name} is already started`)

    this.#onPackets = onPackets
    this.#onError = onError
    try {
      this.#addon.watch(this.#handle, (status) => this.#readable(status), this)
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err)
      throw new AnygateError('TUN_OPEN_FAILED', `cannot poll tun ${this.name} (${detail})`)
    }
  }

  write(packet: Buffer): boolean {
    const written = this.#isClosed ? -1 : this.#addon.write(this.#handle, packet)
    if (written < 0) {
      this.stats.txDropped++
      return false
    }

    this.stats.txPackets++
    this.stats.txBytes += written
    return true
  }

  close(): void {
    if (this.#isClosed) return

    this.#isClosed = true
    this.#addon.close(this.#handle)
    this.#onPackets = undefined
    this.#onError = undefined
    this.#arena = Buffer.alloc(0)
    this.#arenaPos = 0
  }

  #readable(status: number): void {
    if (status < 0) return this.#fail(`poll error ${status}`)

    let frames: Buffer[]
    try {
      frames = this.#drain()
    } catch (err) {
      return this.#fail(err instanceof Error ? err.message : String(err))
    }
    if (frames.length === 0 || !this.#onPackets) return

    this.#onPackets(frames, this.#headroom)
  }

  /** Reads until the kernel queue is empty or a batch is full; throws only if nothing came. */
  #drain(): Buffer[] {
    const frames: Buffer[] = []
    while (frames.length < TUN_MAX_BATCH) {
      if (this.#arena.length - this.#arenaPos < this.#frameRoom) this.#freshArena()

      let count: number
      try {
        count = this.#readBatch(TUN_MAX_BATCH - frames.length)
      } catch (err) {
        if (frames.length === 0) throw err
        break
      }
      this.#collect(count, frames)

      // Room left means the addon stopped on EAGAIN or the count, not on a full arena.
      if (this.#arena.length - this.#arenaPos >= this.#frameRoom) break
    }
    return frames
  }

  #readBatch(maxCount: number): number {
    return this.#addon.readBatch(
      this.#handle,
      this.#arena,
      this.#arenaPos,
      this.#headroom,
      this.#mtu + 1,
      this.#meta,
      maxCount,
    )
  }

  #collect(count: number, frames: Buffer[]): void {
    for (let i = 0; i < count; i++) {
      const start = this.#meta[2 * i]
      const length = this.#meta[2 * i + 1]
      this.#arenaPos = start + this.#headroom + length

      if (length > this.#mtu) {
        this.stats.rxDropped++
        continue
      }
      frames.push(this.#arena.subarray(start, this.#arenaPos))
      this.stats.rxPackets++
      this.stats.rxBytes += length
    }
  }

  // Not yet: a frame pins its whole arena (64 × (headroom + mtu + 1) bytes), so a consumer
  // that queues a few frames for long holds up to that much memory per frame.
  #freshArena(): void {
    this.#arena = Buffer.allocUnsafeSlow(TUN_MAX_BATCH * this.#frameRoom)
    this.#arenaPos = 0
  }

  #fail(detail: string): void {
    const error = new AnygateError('TUN_READ_FAILED', `tun ${this.name} stopped reading: ${detail}`)
    const onError = this.#onError
    this.close()
    if (!onError) throw error

    onError(error)
  }
}
