/**
 * A small HTTP/1.1 client over one TLS connection, as an AnyConnect client speaks: requests
 * with exactly the headers we choose, keep-alive, cookies carried between requests, and a
 * CONNECT that leaves the socket to the caller. Node's `https` module reorders and adds headers
 * and hides the CONNECT socket's reuse of the login connection, hence this.
 *
 * Used by `probe` and `replay`; nothing here is specific to one gateway.
 */
import tls from 'node:tls'

import {ProtocolError} from '../errors.js'

export interface HttpResponse {
  status: number
  statusText: string
  /** Names as sent, in order; repeated headers appear repeatedly. */
  headers: [string, string][]
  body: string
}

const MAX_RESPONSE_BYTES = 4 * 1024 * 1024
const clientError = (code: string, message: string) => new ProtocolError('http', code, message)

/** Header value by case-insensitive name (first match). */
export function header(res: HttpResponse, name: string): string | undefined {
  const lower = name.toLowerCase()
  return res.headers.find(([k]) => k.toLowerCase() === lower)?.[1]
}

export function headerAll(res: HttpResponse, name: string): string[] {
  const lower = name.toLowerCase()
  return res.headers.filter(([k]) => k.toLowerCase() === lower).map(([, v]) => v)
}

export interface ConnectOptions {
  host: string
  port: number
  servername?: string
  /** Verified by the caller (probe grades trust itself); an empty list trusts nothing. */
  ca?: string | Buffer | (string | Buffer)[]
  minVersion?: tls.SecureVersion
  maxVersion?: tls.SecureVersion
  timeoutMs: number
}

/** Opens a TLS connection that never rejects on certificate grounds; the caller checks. */
export function openTls(o: ConnectOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: o.host,
      port: o.port,
      servername: isIpLiteral(o.host) ? undefined : (o.servername ?? o.host),
      ca: o.ca,
      minVersion: o.minVersion,
      maxVersion: o.maxVersion,
      rejectUnauthorized: false,
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(clientError('CLIENT_TIMEOUT', `no TLS connection to ${o.host}:${o.port} within ${o.timeoutMs} ms`))
    }, o.timeoutMs)
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      resolve(socket)
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':')
}

/** A request as written on the wire (Host, Cookie and Content-Length included). */
export interface SentRequest {
  method: string
  path: string
  headers: [string, string][]
  body: string
}

/** One keep-alive connection; reopens when the server closed it. */
export class HttpClient {
  readonly cookies = new Map<string, string>()
  /** Called after each answer with what was sent and received (`probe --record`). */
  onExchange?: (req: SentRequest, res: HttpResponse) => void
  private socket?: tls.TLSSocket
  private buffer = Buffer.alloc(0)
  private waiter?: () => void
  private isClosed = true

  constructor(
    private readonly conn: ConnectOptions,
    private readonly baseHeaders: [string, string][],
  ) {}

  /** The TLS socket of the current connection (opened on first use). */
  async tls(): Promise<tls.TLSSocket> {
    if (this.socket && !this.isClosed) return this.socket
    const socket = await openTls(this.conn)
    this.socket = socket
    this.isClosed = false
    this.buffer = Buffer.alloc(0)
    socket.on('data', (c: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, c])
      if (this.buffer.length > MAX_RESPONSE_BYTES) socket.destroy()
      this.waiter?.()
    })
    socket.on('close', () => {
      this.isClosed = true
      this.waiter?.()
    })
    socket.on('error', () => {})
    return socket
  }

  /** Sends a request and reads the whole response; Set-Cookie values are kept. */
  async request(method: string, path: string, body = '', extra: [string, string][] = []): Promise<HttpResponse> {
    const socket = await this.tls()
    const cookie = [...this.cookies].filter(([, v]) => v !== '').map(([k, v]) => `${k}=${v}`).join('; ')
    const lines = [
      `${method} ${path} HTTP/1.1`,
      `Host: ${hostHeader(this.conn)}`,
      ...[...this.baseHeaders, ...extra].map(([k, v]) => `${k}: ${v}`),
      ...(cookie ? [`Cookie: ${cookie}`] : []),
      ...(method === 'CONNECT' ? [] : [`Content-Length: ${Buffer.byteLength(body)}`]),
      '',
      '',
    ]
    socket.write(lines.join('\r\n') + body)
    const res = await this.readResponse(method === 'CONNECT')
    if (this.onExchange) {
      const headers = lines.slice(1, -2).map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])
      this.onExchange({method, path, headers, body}, res)
    }

    for (const set of headerAll(res, 'Set-Cookie')) {
      const [pair] = set.split(';')
      const eq = pair.indexOf('=')
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
    }

    return res
  }

  /** After a 200 CONNECT: the bytes already read past the header, for the tunnel decoder. */
  takeRest(): Buffer {
    const rest = this.buffer
    this.buffer = Buffer.alloc(0)
    this.socket?.removeAllListeners('data')
    return rest
  }

  close() {
    this.socket?.destroy()
    this.isClosed = true
  }

  private async readResponse(isConnect: boolean): Promise<HttpResponse> {
    const deadline = Date.now() + this.conn.timeoutMs

    for (;;) {
      const parsed = parseResponse(this.buffer, isConnect)
      if (parsed) {
        this.buffer = this.buffer.subarray(parsed.consumed)
        const conn = header(parsed.res, 'Connection')?.toLowerCase()
        if (conn === 'close' && !isConnect) this.socket?.end()
        return parsed.res
      }

      if (this.isClosed) {
        if (this.buffer.length === 0) throw clientError('CLIENT_CLOSED', 'the gateway closed the connection without an answer')
        throw clientError('CLIENT_BAD_RESPONSE', 'the gateway closed the connection in the middle of an answer')
      }

      const left = deadline - Date.now()
      if (left <= 0) throw clientError('CLIENT_TIMEOUT', `no answer within ${this.conn.timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(t)
          resolve()
        }
      })
      this.waiter = undefined
    }
  }
}

function hostHeader(c: ConnectOptions): string {
  const host = c.host.includes(':') ? `[${c.host}]` : c.host
  return c.port === 443 ? host : `${host}:${c.port}`
}

/** Parses one response from `buf`, or returns undefined when more bytes are needed. */
export function parseResponse(buf: Buffer, isConnect = false): {res: HttpResponse; consumed: number} | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) {
    if (buf.length > 64 * 1024) throw clientError('CLIENT_BAD_RESPONSE', 'response header over 64 KiB')
    return undefined
  }

  const [statusLine, ...lines] = buf.toString('latin1', 0, end).split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
  if (!m) throw clientError('CLIENT_BAD_RESPONSE', `not an HTTP status line: ${JSON.stringify(statusLine.slice(0, 80))}`)
  const headers: [string, string][] = lines.map((l) => {
    const colon = l.indexOf(':')
    return colon < 0 ? [l, ''] : [l.slice(0, colon), l.slice(colon + 1).replace(/^ /, '')]
  })
  const res: HttpResponse = {status: Number(m[1]), statusText: m[2] ?? '', headers, body: ''}
  const bodyStart = end + 4
  if (isConnect && res.status === 200) return {res, consumed: bodyStart}

  const chunked = header(res, 'Transfer-Encoding')?.toLowerCase() === 'chunked'
  if (chunked) return parseChunked(buf, bodyStart, res)
  const len = Number(header(res, 'Content-Length') ?? 0)
  if (!Number.isFinite(len) || len < 0 || len > MAX_RESPONSE_BYTES) {
    throw clientError('CLIENT_BAD_RESPONSE', `bad Content-Length ${header(res, 'Content-Length')}`)
  }

  if (buf.length < bodyStart + len) return undefined
  res.body = buf.toString('utf8', bodyStart, bodyStart + len)
  return {res, consumed: bodyStart + len}
}

function parseChunked(buf: Buffer, start: number, res: HttpResponse) {
  const parts: Buffer[] = []
  let off = start
  for (;;) {
    const eol = buf.indexOf('\r\n', off)
    if (eol < 0) return undefined
    const size = parseInt(buf.toString('latin1', off, eol), 16)
    if (!Number.isFinite(size)) throw clientError('CLIENT_BAD_RESPONSE', 'bad chunk size')
    if (buf.length < eol + 2 + size + 2) return undefined
    if (size === 0) {
      res.body = Buffer.concat(parts).toString('utf8')
      return {res, consumed: eol + 4}
    }

    parts.push(buf.subarray(eol + 2, eol + 2 + size))
    off = eol + 2 + size + 2
  }
}
