/**
 * The anti-replay window of one epoch (RFC 6347 §4.1.2.6, RFC 4303 §3.4.3; 64 entries as
 * GnuTLS, dtls-and-datapath.md §10). `check` runs before authentication, `accept` only after
 * it succeeded, so a forged record cannot move the window.
 */

export const REPLAY_WINDOW_SIZE = 64

export class ReplayWindow {
  /** Highest accepted sequence number, or -1 before the first record. */
  private top = -1
  /** Bit i of the 64-bit map (lo: 0-31, hi: 32-63) set: `top - i` was seen. */
  private lo = 0
  private hi = 0

  /** False when `seq` is a duplicate or too old to tell. */
  check(seq: number): boolean {
    if (this.top < 0 || seq > this.top) return true
    const back = this.top - seq
    if (back >= REPLAY_WINDOW_SIZE) return false
    const bit = back < 32 ? (this.lo >>> back) & 1 : (this.hi >>> (back - 32)) & 1
    return bit === 0
  }

  /** Marks `seq` seen; the right edge always moves to the newest record. */
  accept(seq: number) {
    if (this.top < 0 || seq - this.top >= REPLAY_WINDOW_SIZE) {
      this.top = seq
      this.lo = 1
      this.hi = 0
      return
    }

    if (seq > this.top) {
      const shift = seq - this.top
      if (shift >= 32) {
        this.hi = (this.lo << (shift - 32)) >>> 0
        this.lo = 0
      } else {
        this.hi = ((this.hi << shift) | (this.lo >>> (32 - shift))) >>> 0
        this.lo = (this.lo << shift) >>> 0
      }

      this.lo = (this.lo | 1) >>> 0
      this.top = seq
      return
    }

    const back = this.top - seq
    if (back < 32) this.lo = (this.lo | (1 << back)) >>> 0
    else this.hi = (this.hi | (1 << (back - 32))) >>> 0
  }
}
