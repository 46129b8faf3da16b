/**
 * ClientHello (RFC 6347 §4.2.1, RFC 5246 §7.4.1.2) and the routing peek of
 * dtls-and-datapath.md §8.1: the session_id (or openconnect 7.x's extension 48018) names the
 * AnyConnect session.
 */
import {
  DTLS_RECORD_HEADER_LEN,
  EXT_OPENCONNECT_APP_ID,
  HANDSHAKE_HEADER_LEN,
  HandshakeType,
  MAX_SESSION_ID_LEN,
  RANDOM_LEN,
} from '../constants.js'
import {dtlsError} from '../record.js'

export interface ClientHello {
  clientVersion: number
  random: Buffer
  sessionId: Buffer
  cookie: Buffer
  cipherSuites: number[]
  compressionMethods: Buffer
  /** Extension type → data, in the order sent. */
  extensions: Map<number, Buffer>
}

export function decodeClientHello(body: Buffer): ClientHello {
  let at = 0
  const need = (n: number, what: string) => {
    if (at + n > body.length) throw dtlsError('DTLS_BAD_CLIENT_HELLO', `client hello ends inside ${what}`)
  }

  const vec = (lenBytes: number, what: string, max: number) => {
    need(lenBytes, what)
    const n = body.readUIntBE(at, lenBytes)
    if (n > max) throw dtlsError('DTLS_BAD_CLIENT_HELLO', `${what} of ${n} bytes exceeds ${max}`)
    at += lenBytes
    need(n, what)
    return body.subarray(at, (at += n))
  }

  need(2 + RANDOM_LEN, 'version and random')
  const clientVersion = body.readUInt16BE(0)
  const random = body.subarray(2, 2 + RANDOM_LEN)
  at = 2 + RANDOM_LEN
  const sessionId = vec(1, 'session_id', MAX_SESSION_ID_LEN)
  const cookie = vec(1, 'cookie', 255)
  const suites = vec(2, 'cipher_suites', 0xfffe)
  if (suites.length % 2 !== 0) throw dtlsError('DTLS_BAD_CLIENT_HELLO', 'odd cipher_suites length')
  const cipherSuites: number[] = []
  for (let i = 0; i < suites.length; i += 2) cipherSuites.push(suites.readUInt16BE(i))
  const compressionMethods = vec(1, 'compression_methods', 255)

  const extensions = new Map<number, Buffer>()
  if (at < body.length) {
    const exts = vec(2, 'extensions', 0xffff)
    let e = 0
    while (e < exts.length) {
      if (exts.length - e < 4) throw dtlsError('DTLS_BAD_CLIENT_HELLO', 'extension header cut short')
      const type = exts.readUInt16BE(e)
      const n = exts.readUInt16BE(e + 2)
      if (e + 4 + n > exts.length) throw dtlsError('DTLS_BAD_CLIENT_HELLO', `extension ${type} runs past the list`)
      extensions.set(type, exts.subarray(e + 4, e + 4 + n))
      e += 4 + n
    }
  }

  return {clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions}
}

/** ocserv's minimum: record header, handshake header, version, random, session_id length. */
const MIN_HELLO_DATAGRAM = DTLS_RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + 2 + RANDOM_LEN + 1

/**
 * The AnyConnect id a first-record ClientHello carries, or undefined: extension 48018 first
 * (openconnect 7.x), else the session_id (§3.2, §8.1). Does not validate the rest.
 */
export function peekHelloSessionId(datagram: Buffer): Buffer | undefined {
  if (datagram.length < MIN_HELLO_DATAGRAM) return undefined
  if (datagram[DTLS_RECORD_HEADER_LEN] !== HandshakeType.ClientHello) return undefined
  try {
    const recLen = datagram.readUInt16BE(11)
    const frag = datagram.subarray(DTLS_RECORD_HEADER_LEN, DTLS_RECORD_HEADER_LEN + recLen)
    const hello = decodeClientHello(frag.subarray(HANDSHAKE_HEADER_LEN))
    const ext = hello.extensions.get(EXT_OPENCONNECT_APP_ID)
    if (ext && ext.length >= 2 && ext[0] === ext.length - 1) return ext.subarray(1)
    return hello.sessionId.length > 0 ? hello.sessionId : undefined
  } catch {
    return undefined
  }
}

/** A ClientHello body as an AnyConnect client builds it (§3.2, §4.2): null compression only. */
export function encodeClientHello(h: Omit<ClientHello, 'compressionMethods'>): Buffer {
  const exts = [...h.extensions]
  const extLen = exts.reduce((n, [, d]) => n + 4 + d.length, 0)
  const size =
    2 + RANDOM_LEN + 1 + h.sessionId.length + 1 + h.cookie.length + 2 + 2 * h.cipherSuites.length + 2 +
    (exts.length > 0 ? 2 + extLen : 0)
  const out = Buffer.allocUnsafe(size)
  let at = out.writeUInt16BE(h.clientVersion, 0)
  at += h.random.copy(out, at)
  at = out.writeUInt8(h.sessionId.length, at)
  at += h.sessionId.copy(out, at)
  at = out.writeUInt8(h.cookie.length, at)
  at += h.cookie.copy(out, at)
  at = out.writeUInt16BE(2 * h.cipherSuites.length, at)
  for (const s of h.cipherSuites) at = out.writeUInt16BE(s, at)
  at = out.writeUInt8(1, at)
  at = out.writeUInt8(0, at)
  if (exts.length === 0) return out
  at = out.writeUInt16BE(extLen, at)
  for (const [type, data] of exts) {
    at = out.writeUInt16BE(type, at)
    at = out.writeUInt16BE(data.length, at)
    at += data.copy(out, at)
  }

  return out
}
