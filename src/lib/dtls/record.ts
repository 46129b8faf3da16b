/**
 * The DTLS record layer's framing (RFC 6347 §4.1), wireguard-go style: a datagram may hold
 * several records; each is checked against the header length, then its own length, then taken
 * as a view. Bytes in, values out.
 */
import {
  DTLS_RECORD_HEADER_LEN,
  DtlsVersion,
  MAX_RECORD_FRAGMENT,
  RECORD_EPOCH_OFFSET,
  RECORD_LENGTH_OFFSET,
  RECORD_SEQ_OFFSET,
  RECORD_VERSION_OFFSET,
} from './constants.js'
import {ProtocolError} from '../errors.js'

export const dtlsError = (code: string, message: string) => new ProtocolError('dtls', code, message)

export interface DtlsRecord {
  type: number
  version: number
  epoch: number
  /** The 48-bit sequence number (fits a JS number). */
  seq: number
  /** A view of the fragment inside the datagram. */
  fragment: Buffer
  /** A view of header and fragment, for retransmission checks. */
  raw: Buffer
}

/** True for the record versions AnyConnect peers use: FE xx (DTLS 1.x) and 01 00 (0.9). */
export function isKnownVersion(version: number): boolean {
  return (version & 0xff00) === 0xfe00 || version === DtlsVersion.Dtls09
}

/**
 * Splits a datagram into records. Throws a `ProtocolError` (layer dtls) naming the first
 * problem: `DTLS_RECORD_TOO_SHORT`, `DTLS_RECORD_TOO_LONG`, `DTLS_BAD_VERSION`. Callers drop
 * the whole datagram on a throw.
 */
export function parseRecords(datagram: Buffer): DtlsRecord[] {
  const out: DtlsRecord[] = []
  let at = 0
  while (at < datagram.length) {
    const left = datagram.length - at
    if (left < DTLS_RECORD_HEADER_LEN) {
      throw dtlsError('DTLS_RECORD_TOO_SHORT', `${left} bytes left, a record header needs ${DTLS_RECORD_HEADER_LEN}`)
    }

    const version = datagram.readUInt16BE(at + RECORD_VERSION_OFFSET)
    if (!isKnownVersion(version)) {
      throw dtlsError('DTLS_BAD_VERSION', `record version 0x${version.toString(16)} is not DTLS`)
    }

    const length = datagram.readUInt16BE(at + RECORD_LENGTH_OFFSET)
    if (length > MAX_RECORD_FRAGMENT) {
      throw dtlsError('DTLS_RECORD_TOO_LONG', `record length ${length} exceeds ${MAX_RECORD_FRAGMENT}`)
    }

    const end = at + DTLS_RECORD_HEADER_LEN + length
    if (end > datagram.length) {
      throw dtlsError('DTLS_RECORD_TOO_SHORT', `record length ${length} runs past the datagram by ${end - datagram.length}`)
    }

    out.push({
      type: datagram[at],
      version,
      epoch: datagram.readUInt16BE(at + RECORD_EPOCH_OFFSET),
      seq: datagram.readUIntBE(at + RECORD_SEQ_OFFSET, 6),
      fragment: datagram.subarray(at + DTLS_RECORD_HEADER_LEN, end),
      raw: datagram.subarray(at, end),
    })
    at = end
  }

  return out
}
