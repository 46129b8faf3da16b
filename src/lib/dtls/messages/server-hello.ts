/** ServerHello (RFC 5246 §7.4.1.3) and the empty ServerHelloDone (§7.4.5). */
import {RANDOM_LEN} from '../constants.js'
import {dtlsError} from '../record.js'

export interface ServerHello {
  serverVersion: number
  random: Buffer
  sessionId: Buffer
  cipherSuite: number
  /** Sent in this order; an empty list sends no extensions block at all. */
  extensions: [number, Buffer][]
}

export function encodeServerHello(h: ServerHello): Buffer {
  const extLen = h.extensions.reduce((n, [, d]) => n + 4 + d.length, 0)
  const size = 2 + RANDOM_LEN + 1 + h.sessionId.length + 2 + 1 + (h.extensions.length > 0 ? 2 + extLen : 0)
  const out = Buffer.allocUnsafe(size)
  let at = out.writeUInt16BE(h.serverVersion, 0)
  at += h.random.copy(out, at)
  at = out.writeUInt8(h.sessionId.length, at)
  at += h.sessionId.copy(out, at)
  at = out.writeUInt16BE(h.cipherSuite, at)
  at = out.writeUInt8(0, at) // compression null
  if (h.extensions.length === 0) return out
  at = out.writeUInt16BE(extLen, at)
  for (const [type, data] of h.extensions) {
    at = out.writeUInt16BE(type, at)
    at = out.writeUInt16BE(data.length, at)
    at += data.copy(out, at)
  }

  return out
}

export function decodeServerHelloSuite(body: Buffer): number {
  const sidLen = body[2 + RANDOM_LEN]
  return body.readUInt16BE(2 + RANDOM_LEN + 1 + sidLen)
}

export const encodeServerHelloDone = (): Buffer => Buffer.alloc(0)

/** The fields of a ServerHello a client checks; throws DTLS_BAD_SERVER_HELLO when cut short. */
export function decodeServerHello(body: Buffer): Omit<ServerHello, 'extensions'> {
  const bad = () => dtlsError('DTLS_BAD_SERVER_HELLO', 'server hello cut short')
  if (body.length < 2 + RANDOM_LEN + 1) throw bad()
  const idLen = body[2 + RANDOM_LEN]
  const at = 2 + RANDOM_LEN + 1 + idLen
  if (idLen > 32 || body.length < at + 3) throw bad()
  return {
    serverVersion: body.readUInt16BE(0),
    random: body.subarray(2, 2 + RANDOM_LEN),
    sessionId: body.subarray(2 + RANDOM_LEN + 1, at),
    cipherSuite: body.readUInt16BE(at),
  }
}

/** A HelloVerifyRequest's cookie (RFC 6347 §4.2.1). */
export function decodeHelloVerifyRequest(body: Buffer): Buffer {
  if (body.length < 3 || body.length < 3 + body[2]) throw dtlsError('DTLS_BAD_SERVER_HELLO', 'hello verify request cut short')
  return body.subarray(3, 3 + body[2])
}
