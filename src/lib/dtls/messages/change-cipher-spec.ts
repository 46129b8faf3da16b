/**
 * ChangeCipherSpec. DTLS 1.x: the single byte 01. DTLS 0.9: 01 followed by the sender's next
 * handshake message_seq, which the CCS consumes (dtls-and-datapath.md §5.1).
 */
import {DtlsVersion} from '../constants.js'

export function encodeChangeCipherSpec(version: number, messageSeq: number): Buffer {
  if (version !== DtlsVersion.Dtls09) return Buffer.from([1])
  const out = Buffer.allocUnsafe(3)
  out[0] = 1
  out.writeUInt16BE(messageSeq, 1)
  return out
}

export function isChangeCipherSpec(body: Buffer, version: number): boolean {
  if (body.length === 0 || body[0] !== 1) return false
  return version === DtlsVersion.Dtls09 ? body.length === 3 : body.length === 1
}
