/**
 * CSTP frame encoding. Frames are built whole (header and payload in one Buffer) because each
 * must go out in one TLS record (auth-and-cstp.md §4.3): one `write()` per frame.
 */
import {
  CSTP_HEADER_LEN,
  CSTP_LENGTH_OFFSET,
  CSTP_MAGIC_0,
  CSTP_MAGIC_1,
  CSTP_MAGIC_2,
  CSTP_MAGIC_3,
  CSTP_MAX_PAYLOAD,
  CSTP_RESERVED_OFFSET,
  CSTP_TYPE_OFFSET,
  CstpType,
} from './constants.js'

/**
 * Writes a CSTP header into the first 8 bytes of `frame`, whose payload follows it. The data
 * path uses this on TUN buffers read with 8 bytes of headroom, so no packet is copied.
 */
export function writeCstpHeader(frame: Buffer, type: number, payloadLen: number): void {
  if (payloadLen > CSTP_MAX_PAYLOAD) {
    throw new RangeError(`cstp payload of ${payloadLen} bytes exceeds ${CSTP_MAX_PAYLOAD}`)
  }

  frame[0] = CSTP_MAGIC_0
  frame[1] = CSTP_MAGIC_1
  frame[2] = CSTP_MAGIC_2
  frame[3] = CSTP_MAGIC_3
  frame.writeUInt16BE(payloadLen, CSTP_LENGTH_OFFSET)
  frame[CSTP_TYPE_OFFSET] = type
  frame[CSTP_RESERVED_OFFSET] = 0
}

/** A whole frame: header plus a copy of `payload`. */
export function encodeCstpFrame(type: number, payload?: Uint8Array): Buffer {
  const len = payload?.length ?? 0
  const frame = Buffer.allocUnsafe(CSTP_HEADER_LEN + len)
  writeCstpHeader(frame, type, len)
  if (payload) frame.set(payload, CSTP_HEADER_LEN)
  return frame
}

/**
 * A DISCONNECT frame. With no reason the payload is empty, as ocserv sends when it ends a
 * session (auth-and-cstp.md §4.5); openconnect then quits with "Received server disconnect".
 */
export function encodeDisconnect(reason?: number, text?: string): Buffer {
  if (reason === undefined) return encodeCstpFrame(CstpType.Disconnect)
  const body = Buffer.from(text ?? '', 'latin1')
  const payload = Buffer.allocUnsafe(1 + body.length)
  payload[0] = reason
  body.copy(payload, 1)
  return encodeCstpFrame(CstpType.Disconnect, payload)
}
