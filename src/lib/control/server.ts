/**
 * The control socket of a running `serve`: HTTP/1.1 over a UNIX socket (mode 0600, in the
 * state directory by default), JSON in and out, paths under `/v1` (docs/control-protocol.md).
 *
 * Flow: `start` refuses a socket another serve still answers on, removes one left by a serve
 * that died, and binds with a umask that keeps the file 0600 from its first instant. Each
 * request is routed by method and path to a read of the gateway (sessions, pools) or to
 * `Gateway.disconnect` or the ban list; answers are copies (`views.ts`), never live objects. Who may connect is
 * decided by the file mode and the directory's owner: Node cannot read SO_PEERCRED.
 */
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

import {
  type BanInfo,
  type BanRemoveResult,
  CONTROL_PREFIX,
  CONTROL_PROTOCOL_VERSION,
  type ControlErrorBody,
  type DisconnectResult,
  type StatusInfo,
} from './protocol.js'
import {poolUse, sessionInfo} from './views.js'
import {AnygateError, configError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import type {AddressPool} from '../session/pool.js'
import type {Session} from '../session/store.js'

/** Longest path a UNIX socket address holds on Linux (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107

/** What the control server needs of the gateway; `Gateway` has it. */
export interface ControlTarget {
  readonly sessions: {all(): Session[]; get(id: string): Session | undefined}
  readonly pool4: AddressPool
  readonly pool6?: AddressPool
  readonly startedAt: Date
  readonly bans: {list(): BanInfo[]; remove(address: string): boolean}
  readonly udp?: {dropCounts(): Record<string, number>; sendDropped: number}
  disconnect(session: Session, reason?: string): void
}

export interface ControlServerOptions {
  path: string
  gateway: ControlTarget
  version: string
  listen: StatusInfo['listen']
  log: Logger
}

type Answer = {status: number; body: unknown}

const fail = (status: number, code: string, message: string): Answer => ({
  status,
  body: {error: {code, message}} satisfies ControlErrorBody,
})

export class ControlServer {
  private readonly server: http.Server
  private socketIno?: number

  constructor(private readonly o: ControlServerOptions) {
    this.server = http.createServer((req, res) => this.onRequest(req, res))
    this.server.headersTimeout = 5000
    this.server.requestTimeout = 10_000
  }

  get path(): string {
    return this.o.path
  }

  /**
   * Binds the socket. Throws a ConfigError when the path is too long, is not a socket, or
   * another serve answers on it; a socket nobody answers on is removed first.
   */
  async start(): Promise<void> {
    const file = this.o.path
    if (Buffer.byteLength(file) > MAX_SOCKET_PATH_BYTES) {
      throw configError('CONTROL_SOCKET_PATH', `control socket path is ${Buffer.byteLength(file)} bytes, at most ${MAX_SOCKET_PATH_BYTES}: ${file}`)
    }

    await this.removeStale(file)
    fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700})

    // The umask makes the file 0600 at bind(2), before any chmod could run (dependencies.md §10).
    const oldMask = process.umask(0o177)
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject)
        this.server.listen(file, () => {
          this.server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      throw configError('CONTROL_SOCKET_LISTEN', `cannot listen on control socket ${file}: ${(err as Error).message}`)
    } finally {
      process.umask(oldMask)
    }

    fs.chmodSync(file, 0o600)
    this.socketIno = fs.statSync(file).ino
    this.server.on('error', (err) => this.o.log.error('control socket error', {reason: err.message}))
    this.o.log.info('control socket', {path: file})
  }

  /** Closes the socket and removes its file (if it is still ours). */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    await closed
    const st = statOrUndefined(this.o.path)
    if (st && st.ino === this.socketIno) fs.rmSync(this.o.path, {force: true})
  }

  private async removeStale(file: string) {
    const st = statOrUndefined(file)
    if (!st) return
    if (!st.isSocket()) {
      throw configError('CONTROL_SOCKET_PATH', `${file} exists and is not a socket; move it or pick another --control-socket`)
    }

    if (await answers(file)) {
      throw configError('CONTROL_SOCKET_BUSY', `another anygate serve is running: its control socket ${file} answers`)
    }

    fs.rmSync(file, {force: true})
    this.o.log.info('stale control socket removed', {path: file})
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse) {
    let answer: Answer
    try {
      answer = this.route(req.method ?? 'GET', req.url ?? '/')
    } catch (err) {
      if (err instanceof AnygateError) {
        answer = fail(400, err.code, err.message)
      } else {
        this.o.log.error('control request failed', {reason: (err as Error).message})
        answer = fail(500, 'CONTROL_INTERNAL', (err as Error).message)
      }
    }

    // Every request we define has an empty body; a client that sends one gets it ignored.
    req.resume()
    const body = JSON.stringify(answer.body, null, 2) + '\n'
    res.writeHead(answer.status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'X-Anygate-Control': String(CONTROL_PROTOCOL_VERSION),
    })
    res.end(body)
  }

  private route(method: string, url: string): Answer {
    const parts = url.split('?')[0].split('/').filter(Boolean).map(decodePart)
    if (parts.length === 0 || `/${parts[0]}` !== CONTROL_PREFIX) {
      const v = /^v\d+$/.test(parts[0] ?? '') ? parts[0] : undefined
      return v
        ? fail(404, 'CONTROL_BAD_VERSION', `protocol ${v} is not spoken here; this serve speaks ${CONTROL_PREFIX.slice(1)}`)
        : fail(404, 'CONTROL_NOT_FOUND', `no such path ${url}`)
    }

    const [, what, id, action] = parts
    const want = (m: string, make: () => Answer) =>
      method === m ? make() : fail(405, 'CONTROL_BAD_METHOD', `${method} is not allowed on ${url}; use ${m}`)

    if (what === 'status' && parts.length === 2) return want('GET', () => ({status: 200, body: this.status()}))
    if (what === 'sessions' && parts.length === 2) {
      return want('GET', () => ({status: 200, body: this.o.gateway.sessions.all().map(sessionInfo)}))
    }

    if (what === 'sessions' && parts.length === 3) return want('GET', () => this.showSession(id))
    if (what === 'sessions' && parts.length === 4 && action === 'disconnect') {
      return want('POST', () => this.disconnectSession(id))
    }

    if (what === 'users' && parts.length === 4 && action === 'disconnect') {
      return want('POST', () => this.disconnectUser(id))
    }

    if (what === 'bans' && parts.length === 2) return want('GET', () => ({status: 200, body: this.o.gateway.bans.list()}))
    if (what === 'bans' && parts.length === 4 && action === 'remove') return want('POST', () => this.removeBan(id))

    // Not yet: reload and stop requests on the socket; SIGHUP and SIGTERM do both, so a script
    // needs serve's pid (from `status`).

    return fail(404, 'CONTROL_NOT_FOUND', `no such path ${url}`)
  }

  private status(): StatusInfo {
    const g = this.o.gateway
    const sessions = g.sessions.all()
    const bans = g.bans.list()
    return {
      version: this.o.version,
      protocol: CONTROL_PROTOCOL_VERSION,
      pid: process.pid,
      startedAt: g.startedAt.toISOString(),
      uptimeSeconds: Math.floor((Date.now() - g.startedAt.getTime()) / 1000),
      listen: this.o.listen,
      controlSocket: this.o.path,
      sessions: {total: sessions.length, connected: sessions.filter((s) => s.tunnel).length},
      pools: {ipv4: poolUse(g.pool4), ipv6: g.pool6 ? poolUse(g.pool6) : null},
      bans: {scored: bans.length, banned: bans.filter((b) => b.banned).length},
      dtls: g.udp ? {drops: g.udp.dropCounts(), sendDropped: g.udp.sendDropped} : null,
    }
  }

  private removeBan(address: string): Answer {
    if (net.isIP(address) === 0) return fail(400, 'CONTROL_BAD_ADDRESS', `not an IP address: ${JSON.stringify(address)}`)
    if (!this.o.gateway.bans.remove(address)) return fail(404, 'CONTROL_NO_BAN', `no score or ban for ${address}`)
    this.o.log.info('ban removed', {remote: address})
    return {status: 200, body: {removed: address} satisfies BanRemoveResult}
  }

  private showSession(id: string): Answer {
    const s = this.o.gateway.sessions.get(id)
    return s ? {status: 200, body: sessionInfo(s)} : fail(404, 'CONTROL_NO_SESSION', `no session ${id}`)
  }

  private disconnectSession(id: string): Answer {
    const s = this.o.gateway.sessions.get(id)
    if (!s) return fail(404, 'CONTROL_NO_SESSION', `no session ${id}`)
    return {status: 200, body: this.end([s])}
  }

  private disconnectUser(user: string): Answer {
    const found = this.o.gateway.sessions.all().filter((s) => s.user === user)
    if (found.length === 0) return fail(404, 'CONTROL_NO_SESSION', `no session of user ${user}`)
    return {status: 200, body: this.end(found)}
  }

  /** Snapshots first, so the answer shows the addresses the sessions had. */
  private end(sessions: Session[]): DisconnectResult {
    const disconnected = sessions.map(sessionInfo)
    for (const s of sessions) {
      this.o.log.info('admin disconnect', {session: s.id, user: s.user, remote: s.remoteAddress})
      this.o.gateway.disconnect(s, 'admin disconnect')
    }

    return {disconnected}
  }
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw new AnygateError('CONTROL_BAD_PATH', `bad percent-encoding in ${JSON.stringify(part)}`)
  }
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file)
  } catch {
    return undefined
  }
}

/** Whether something accepts connections on the UNIX socket `file`. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    s.setTimeout(1000)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('timeout', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
