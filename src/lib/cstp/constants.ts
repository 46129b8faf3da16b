/**
 * CSTP wire values (../shared/protocol/auth-and-cstp.md §4.1, §4.2, §4.5).
 *
 * A CSTP frame is an 8-byte header, `S T F 0x01`, a big-endian payload length, the packet type
 * and a zero byte, then the payload. One frame travels in one TLS record (§4.3).
 */

export const CSTP_MAGIC_0 = 0x53 // 'S'
export const CSTP_MAGIC_1 = 0x54 // 'T'
export const CSTP_MAGIC_2 = 0x46 // 'F'
export const CSTP_MAGIC_3 = 0x01
export const CSTP_HEADER_LEN = 8
export const CSTP_LENGTH_OFFSET = 4
export const CSTP_TYPE_OFFSET = 6
export const CSTP_RESERVED_OFFSET = 7
/** The payload length field is 16 bits. */
export const CSTP_MAX_PAYLOAD = 0xffff

export const CstpType = {
  Data: 0x00,
  DpdRequest: 0x03,
  DpdResponse: 0x04,
  Disconnect: 0x05,
  Keepalive: 0x07,
  Compressed: 0x08,
  Terminate: 0x09,
} as const

export type CstpType = (typeof CstpType)[keyof typeof CstpType]

const TYPE_NAMES = new Map<number, string>(Object.entries(CstpType).map(([k, v]) => [v, k]))

/** The name of a packet type for logs, or its hex value when unknown. */
export function cstpTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`
}

/** The first payload byte of a DISCONNECT frame (auth-and-cstp.md §4.5). */
export const DisconnectReason = {
  /** The user logged out: the cookie dies with the tunnel. */
  UserLogout: 0xb0,
  /** A local error on the client; the draft says to invalidate the session too. */
  ClientError: 0x70,
  /** The client is coming back (network change): keep the cookie. */
  Reconnecting: 0x91,
  /** The client paused the tunnel: keep the cookie. */
  Paused: 0xd1,
} as const
