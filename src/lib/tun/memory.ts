/**
 * An in-memory `TunDevice` for tests of the session and CSTP layers: no kernel, no root.
 * It keeps the real device's contract (fresh frames with headroom, batches of at most
 * `TUN_MAX_BATCH`, copies on write, counters, idempotent close) so code that passes with it
 * behaves the same over `openTun`.
 */

import {AnygateError} from '../errors.js'
import {
  TUN_MAX_BATCH,
  emptyTunStats,
  type TunDevice,
  type TunErrorListener,
  type TunPacketsListener,
} from './device.js'

const IP_VERSION_4 = 4
const IP_VERSION_6 = 6

export interface MemoryTun extends TunDevice {
  /** Copies of the packets `write` accepted, oldest first. Tests may clear it. */
  readonly written: Buffer[]
  /** While true, `write` refuses every packet, as a full kernel queue would. */
  isQueueFull: boolean
  readonly isClosed: boolean

  /**
   * Delivers `packets` as the kernel would: each copied into a fresh frame after `headroom`
   * bytes, in batches of at most `TUN_MAX_BATCH`. Once started this calls the consumer before
   * it returns; before `start` the packets wait and arrive in a microtask after it. Returns
   * false, delivering nothing, once closed.
   */
  inject(...packets: Buffer[]): boolean

  /** Ends the device as a deleted interface would: closes it, then reports `TUN_READ_FAILED`. */
  fail(detail?: string): void
}

/**
 * What a Gateway's `tun` option needs, over memory devices: each session's device is pushed
 * on `opened` (named `vpns0`, `vpns1`, …), and configuring addresses does nothing.
 */
export function memoryTunFactory(opened: MemoryTun[]): {
  open(): MemoryTun
  configure(): Promise<void>
} {
  return {
    open: () => {
      const t = createMemoryTun(`vpns${opened.length}`, 8)
      opened.push(t)
      return t
    },
    configure: async () => {},
  }
}

/** A fresh memory device called `name`; `headroom` as in `openTun`. */
export function createMemoryTun(name: string, headroom: number): MemoryTun {
  if (!Number.isInteger(headroom) || headroom < 0) {
    throw new RangeError(`tun headroom ${headroom} is not a non-negative integer`)
  }
  return new MemoryTunDevice(name, headroom)
}

class MemoryTunDevice implements MemoryTun {
  readonly stats = emptyTunStats()
  readonly written: Buffer[] = []
  isQueueFull = false

  readonly #headroom: number
  #backlog: Buffer[] = []
  #onPackets?: TunPacketsListener
  #onError?: TunErrorListener
  #isClosed = false

  constructor(
    readonly name: string,
    headroom: number,
  ) {
    this.#headroom = headroom
  }

  get isClosed(): boolean {
    return this.#isClosed
  }

  start(onPackets: TunPacketsListener, onError?: TunErrorListener): void {
    if (this.#isClosed) throw new TypeError(`tun ${this.name} is closed`)
    if (this.#onPackets) throw new TypeError(`tun ${this.name} is already started`)

    this.#onPackets = onPackets
    this.#onError = onError
    if (this.#backlog.length > 0) queueMicrotask(() => this.#deliverBacklog())
  }

  write(packet: Buffer): boolean {
    if (this.#isClosed || this.isQueueFull || !isIpPacket(packet)) {
      this.stats.txDropped++
      return false
    }

    this.written.push(Buffer.from(packet))
    this.stats.txPackets++
    this.stats.txBytes += packet.length
    return true
  }

  close(): void {
    this.#isClosed = true
    this.#onPackets = undefined
    this.#onError = undefined
    this.#backlog = []
  }

  inject(...packets: Buffer[]): boolean {
    if (this.#isClosed) return false

    this.#backlog.push(...packets.map((packet) => this.#frame(packet)))
    if (this.#onPackets) this.#deliverBacklog()
    return true
  }

  fail(detail = 'interface deleted'): void {
    const error = new AnygateError('TUN_READ_FAILED', `tun ${this.name} stopped reading: ${detail}`)
    const onError = this.#onError
    this.close()
    if (!onError) throw error

    onError(error)
  }

  #frame(packet: Buffer): Buffer {
    const frame = Buffer.alloc(this.#headroom + packet.length)
    packet.copy(frame, this.#headroom)
    return frame
  }

  #deliverBacklog(): void {
    while (this.#backlog.length > 0 && this.#onPackets) {
      const batch = this.#backlog.splice(0, TUN_MAX_BATCH)
      this.stats.rxPackets += batch.length
      this.stats.rxBytes += batch.reduce((sum, frame) => sum + frame.length - this.#headroom, 0)
      this.#onPackets(batch, this.#headroom)
    }
  }
}

/** What the kernel's tun write accepts (IFF_NO_PI): a non-empty IPv4 or IPv6 packet. */
const isIpPacket = (packet: Buffer) =>
  packet.length > 0 && (packet[0] >> 4 === IP_VERSION_4 || packet[0] >> 4 === IP_VERSION_6)
