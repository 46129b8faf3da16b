/**
 * The TUN layer as the rest of anygate sees it.
 *
 * Flow: the kernel routes a packet for a VPN address to the session's interface; the device
 * reads it into a frame with `headroom` free bytes in front, and hands frames to the session in
 * batches on the main loop. The CSTP layer writes its 8-byte header into the headroom and gives
 * the whole frame to `tls.write`, so an outbound packet is never copied in JS. Inbound, the
 * session calls `write` with each IP packet a client sent; the kernel copies it before `write`
 * returns.
 *
 * Only `native.ts` talks to the kernel (through the addon); `memory.ts` is the test double.
 * Addresses and MTU are set with `ip.ts`.
 */

import type {AnygateError} from '../errors.js'

/** At most this many frames reach the consumer per wakeup; the rest wait for the next one. */
export const TUN_MAX_BATCH = 64

/** Counters of one device, updated in place. Bytes count IP packets, never headroom. */
export interface TunStats {
  rxPackets: number
  rxBytes: number
  /** Packets read but thrown away: longer than the device's MTU (the interface MTU was raised). */
  rxDropped: number
  txPackets: number
  txBytes: number
  /** Packets `write` refused: kernel queue full, not an IP packet, or the device closed. */
  txDropped: number
}

/**
 * Receives a batch of frames, each `[headroom bytes][one IP packet]`. The consumer owns every
 * frame: the device never writes to it again, and the headroom bytes are unspecified.
 */
export type TunPacketsListener = (frames: Buffer[], headroom: number) => void

/** Called once when the device stopped reading for good; the device is closed by then. */
export type TunErrorListener = (error: AnygateError) => void

/**
 * One TUN interface owned by one session. Made by `openTun` (real) or `createMemoryTun`
 * (tests); the session that made it must `close` it.
 */
export interface TunDevice {
  /** The interface name the kernel gave, e.g. `anygate3`. */
  readonly name: string

  /**
   * Starts delivering packets: `onPackets` runs on the main loop with 1 to `TUN_MAX_BATCH`
   * frames per call. Call once. When reading fails for good (the interface was deleted under
   * us) the device closes itself and calls `onError` with code `TUN_READ_FAILED`; without
   * `onError` that error is thrown from the loop callback, as an `'error'` event without a
   * listener would be.
   */
  start(onPackets: TunPacketsListener, onError?: TunErrorListener): void

  /**
   * Writes one IP packet; the caller may reuse `packet` as soon as this returns. Returns false
   * when the packet was dropped (kernel queue full, not IPv4/IPv6, or the device closed) and
   * counts it in `stats.txDropped`. Never throws for what the kernel refuses.
   */
  write(packet: Buffer): boolean

  readonly stats: TunStats

  /** Idempotent. Stops polling, then closes the fd; the kernel removes the interface. */
  close(): void
}

/** A fresh zeroed counter set. */
export const emptyTunStats = (): TunStats => ({
  rxPackets: 0,
  rxBytes: 0,
  rxDropped: 0,
  txPackets: 0,
  txBytes: 0,
  txDropped: 0,
})
