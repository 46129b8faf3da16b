/**
 * DTLS wire values (RFC 6347, RFC 5246, ../shared/protocol/dtls-and-datapath.md §2.4, §5, §7, §9).
 *
 * A record is a 13-byte header (type, version, epoch, 48-bit sequence, length) and a fragment;
 * a datagram may hold several records. Inside an application-data record the first plaintext
 * byte is the AnyConnect packet type (§9.1).
 */

export const DTLS_RECORD_HEADER_LEN = 13
export const RECORD_TYPE_OFFSET = 0
export const RECORD_VERSION_OFFSET = 1
export const RECORD_EPOCH_OFFSET = 3
export const RECORD_SEQ_OFFSET = 5
export const RECORD_LENGTH_OFFSET = 11
/** RFC 6347 §4.1: a fragment may not exceed 2^14 + 2048 bytes (protected). */
export const MAX_RECORD_FRAGMENT = 16384 + 2048
/** The largest UDP payload we read or write. */
export const MAX_DATAGRAM = 65507

export const HANDSHAKE_HEADER_LEN = 12
export const RANDOM_LEN = 32
export const MAX_SESSION_ID_LEN = 32
export const MASTER_SECRET_LEN = 48
export const VERIFY_DATA_LEN = 12
/** Extension 48018: openconnect 7.x's App-ID carrier (dtls-and-datapath.md §3.2). */
export const EXT_OPENCONNECT_APP_ID = 0xbb92
export const EXT_RENEGOTIATION_INFO = 0xff01
export const EXT_RECORD_SIZE_LIMIT = 0x001c
export const RECORD_SIZE_LIMIT = 16384
/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3). */
export const SCSV_RENEGOTIATION = 0x00ff

/** RFC 5288 §3: the explicit part of an AES-GCM record's nonce. */
export const GCM_EXPLICIT_NONCE_LEN = 8
/** Datagram bytes in front of an IP packet when sealed in place: header, explicit IV/nonce, type. */
export const DTLS_MAX_EXPLICIT_IV = 16
export const DTLS_HEADROOM = DTLS_RECORD_HEADER_LEN + DTLS_MAX_EXPLICIT_IV + 1 + 2

export const ContentType = {
  ChangeCipherSpec: 20,
  Alert: 21,
  Handshake: 22,
  ApplicationData: 23,
} as const
export type ContentType = (typeof ContentType)[keyof typeof ContentType]

export const HandshakeType = {
  ClientHello: 1,
  ServerHello: 2,
  HelloVerifyRequest: 3,
  ServerHelloDone: 14,
  ClientKeyExchange: 16,
  Finished: 20,
} as const
export type HandshakeType = (typeof HandshakeType)[keyof typeof HandshakeType]

/** Record and hello versions: DTLS 1.2, DTLS 1.0, Cisco's pre-RFC "DTLS 0.9" (§5). */
export const DtlsVersion = {
  Dtls12: 0xfefd,
  Dtls10: 0xfeff,
  Dtls09: 0x0100,
} as const
export type DtlsVersion = (typeof DtlsVersion)[keyof typeof DtlsVersion]

/** The first plaintext byte of a DTLS application-data record (§9.1). */
export const AcType = {
  Data: 0x00,
  DpdRequest: 0x03,
  DpdResponse: 0x04,
  Disconnect: 0x05,
  Keepalive: 0x07,
  Compressed: 0x08,
} as const

const CONTENT_NAMES = new Map<number, string>(Object.entries(ContentType).map(([k, v]) => [v, k]))

export function contentTypeName(type: number): string {
  return CONTENT_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`
}
