/**
 * The 12-byte DTLS handshake header (RFC 6347 §4.2.2): msg_type, length (24), message_seq,
 * fragment_offset (24), fragment_length (24).
 */
import {HANDSHAKE_HEADER_LEN} from '../constants.js'
import {dtlsError} from '../record.js'

export interface HandshakeMessage {
  msgType: number
  length: number
  messageSeq: number
  fragmentOffset: number
  fragmentLength: number
  body: Buffer
  /** Header and body as received (one whole message, unfragmented). */
  raw: Buffer
}

/**
 * Reads the handshake messages of one plaintext handshake record. Fragmented messages are
 * refused with `DTLS_FRAGMENTED`: every AnyConnect client hello fits one datagram.
 */
export function decodeHandshakes(fragment: Buffer): HandshakeMessage[] {
  const out: HandshakeMessage[] = []
  let at = 0
  while (at < fragment.length) {
    if (fragment.length - at < HANDSHAKE_HEADER_LEN) {
      throw dtlsError('DTLS_HANDSHAKE_TOO_SHORT', `${fragment.length - at} bytes left for a 12-byte handshake header`)
    }

    const length = fragment.readUIntBE(at + 1, 3)
    const fragmentOffset = fragment.readUIntBE(at + 6, 3)
    const fragmentLength = fragment.readUIntBE(at + 9, 3)
    if (fragmentOffset !== 0 || fragmentLength !== length) {
      // Not yet: handshake message reassembly; no AnyConnect client fragments its hellos.
      throw dtlsError('DTLS_FRAGMENTED', `fragment ${fragmentOffset}+${fragmentLength} of ${length}`)
    }

    const end = at + HANDSHAKE_HEADER_LEN + length
    if (end > fragment.length) {
      throw dtlsError('DTLS_HANDSHAKE_TOO_SHORT', `handshake length ${length} runs past the record`)
    }

    out.push({
      msgType: fragment[at],
      length,
      messageSeq: fragment.readUInt16BE(at + 4),
      fragmentOffset,
      fragmentLength,
      body: fragment.subarray(at + HANDSHAKE_HEADER_LEN, end),
      raw: fragment.subarray(at, end),
    })
    at = end
  }

  return out
}

/** A whole, unfragmented handshake message with its 12-byte header. */
export function encodeHandshake(msgType: number, messageSeq: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HANDSHAKE_HEADER_LEN + body.length)
  out[0] = msgType
  out.writeUIntBE(body.length, 1, 3)
  out.writeUInt16BE(messageSeq, 4)
  out.writeUIntBE(0, 6, 3)
  out.writeUIntBE(body.length, 9, 3)
  body.copy(out, HANDSHAKE_HEADER_LEN)
  return out
}
