/** The PSK ClientKeyExchange (RFC 4279 §2): a 16-bit-length psk_identity and nothing else. */
import {dtlsError} from '../record.js'

/** Longest identity accepted; openconnect sends the 3 bytes `psk` (§3.1). */
export const MAX_PSK_IDENTITY = 128

export function decodePskClientKeyExchange(body: Buffer): {identity: Buffer} {
  if (body.length < 2) throw dtlsError('DTLS_BAD_KEY_EXCHANGE', 'client key exchange shorter than 2 bytes')
  const n = body.readUInt16BE(0)
  if (n > MAX_PSK_IDENTITY || body.length !== 2 + n) {
    throw dtlsError('DTLS_BAD_KEY_EXCHANGE', `psk identity length ${n} does not fit ${body.length - 2} bytes`)
  }

  return {identity: body.subarray(2)}
}

export function encodePskClientKeyExchange(identity: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + identity.length)
  out.writeUInt16BE(identity.length, 0)
  identity.copy(out, 2)
  return out
}
