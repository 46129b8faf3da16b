/**
 * CSTP stream decoder. TLS hands us a byte stream; frames may be split across `data` events or
 * several may arrive in one. `push()` appends a chunk and emits every whole frame through the
 * `onFrame` callback; payloads are `subarray` views into the chunk when a frame lies inside one
 * chunk, and copies only when it spans chunks.
 *
 * The header is checked whole before the payload is awaited: magic, reserved byte, and the
 * length against `maxPayload` (the negotiated MTU), so a hostile length never makes us buffer.
 */
import {
  CSTP_HEADER_LEN,
  CSTP_LENGTH_OFFSET,
  CSTP_MAGIC_0,
  CSTP_MAGIC_1,
  CSTP_MAGIC_2,
  CSTP_MAGIC_3,
  CSTP_RESERVED_OFFSET,
  CSTP_TYPE_OFFSET,
} from './constants.js'
import {cstpError} from '../errors.js'

const EMPTY = Buffer.alloc(0)

export type FrameHandler = (type: number, payload: Buffer) => void

export class CstpDecoder {
  private chunks: Buffer[] = []
  private buffered = 0
  /** Type and length of a header already read whose payload is still arriving, else -1. */
  private pendingType = -1
  private pendingLen = 0

  /**
   * @param maxPayload the largest payload accepted; a longer frame throws CSTP_BAD_LENGTH.
   * @param onFrame called synchronously for each frame; the payload view is valid only
   *   during the call unless the caller copies it.
   */
  constructor(
    private maxPayload: number,
    private readonly onFrame: FrameHandler,
  ) {}

  setMaxPayload(n: number) {
    this.maxPayload = n
  }

  /** Feeds bytes. Throws a ProtocolError on a malformed header; the stream is then unusable. */
  push(chunk: Buffer): void {
    if (this.buffered === 0 && this.pendingType < 0) {
      this.parseChunk(chunk)
      return
    }

    this.chunks.push(chunk)
    this.buffered += chunk.length
    this.drainBuffered()
  }

  // Fast path: nothing buffered, frames read straight out of the chunk as views.
  private parseChunk(chunk: Buffer) {
    let off = 0

    while (chunk.length - off >= CSTP_HEADER_LEN) {
      const len = this.readHeader(chunk, off)
      const end = off + CSTP_HEADER_LEN + len
      if (end > chunk.length) break
      this.onFrame(chunk[off + CSTP_TYPE_OFFSET], chunk.subarray(off + CSTP_HEADER_LEN, end))
      off = end
    }

    if (off === chunk.length) return
    const rest = chunk.subarray(off)
    this.chunks = [rest]
    this.buffered = rest.length
    this.drainBuffered()
  }

  private drainBuffered() {
    for (;;) {
      // Header
      if (this.pendingType < 0) {
        if (this.buffered < CSTP_HEADER_LEN) return
        const header = this.take(CSTP_HEADER_LEN)
        this.pendingLen = this.readHeader(header, 0)
        this.pendingType = header[CSTP_TYPE_OFFSET]
      }

      // Payload
      if (this.buffered < this.pendingLen) return
      const payload = this.take(this.pendingLen)
      const type = this.pendingType
      this.pendingType = -1
      this.onFrame(type, payload)
    }
  }

  /** Validates the header at `off` and returns its payload length. */
  private readHeader(buf: Buffer, off: number): number {
    const isMagic =
      buf[off] === CSTP_MAGIC_0 &&
      buf[off + 1] === CSTP_MAGIC_1 &&
      buf[off + 2] === CSTP_MAGIC_2 &&
      buf[off + 3] === CSTP_MAGIC_3
    if (!isMagic) {
      throw cstpError('CSTP_BAD_MAGIC', `bad frame magic ${buf.toString('hex', off, off + 4)}`)
    }

    if (buf[off + CSTP_RESERVED_OFFSET] !== 0) {
      throw cstpError('CSTP_BAD_HEADER', `reserved byte is ${buf[off + CSTP_RESERVED_OFFSET]}`)
    }

    const len = buf.readUInt16BE(off + CSTP_LENGTH_OFFSET)
    if (len > this.maxPayload) {
      throw cstpError('CSTP_BAD_LENGTH', `length ${len} exceeds ${this.maxPayload}`)
    }

    return len
  }

  /** Removes and returns the first `n` buffered bytes, copying only across chunk boundaries. */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY
    this.buffered -= n
    const first = this.chunks[0]

    if (first.length > n) {
      this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }

    if (first.length === n) {
      this.chunks.shift()
      return first
    }

    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[0]
      const want = n - filled
      if (c.length <= want) {
        c.copy(out, filled)
        filled += c.length
        this.chunks.shift()
        continue
      }

      c.copy(out, filled, 0, want)
      this.chunks[0] = c.subarray(want)
      filled += want
    }

    return out
  }
}
