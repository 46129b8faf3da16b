/**
 * Sessions, found by id and by cookie. A session is born at login and holds the user, the
 * address leases and at most one live tunnel. It outlives its tunnel for `cookieTimeout`
 * seconds so that a client can reconnect with the same cookie (auth-and-cstp.md §4.7), and
 * dies at once on a user logout (DISCONNECT 0xb0), an admin disconnect or its session timeout.
 *
 * Cookies are 32 bytes from the CSPRNG, sent base64 (as ocserv's, so a client that checks the
 * shape is content). The store keeps only their SHA-256 and compares digests in constant time;
 * the session id shown to administrators is separate random bytes, never derived from the cookie.
 */
import crypto from 'node:crypto'

import type {AddressPool} from './pool.js'

export const COOKIE_BYTES = 32
const SESSION_ID_BYTES = 6

export interface SessionTunnel {
  /**
   * Ends the tunnel; `reason` goes to the log. `invalidate` (default: `notifyClient`) says
   * whether the cookie dies with it.
   */
  close(reason: string, notifyClient: boolean, invalidate?: boolean): void
}

/** What `session list` shows about DTLS; `isUp` false means traffic fell back to CSTP. */
export interface SessionDtls {
  isUp: boolean
  /** e.g. `DTLS1.2 PSK-AES-256-GCM`. */
  cipher: string
  /** The client's UDP address:port now. */
  remote: string
  mode: 'psk' | 'resumption'
  since: Date
}

export class Session {
  readonly id = crypto.randomBytes(SESSION_ID_BYTES).toString('hex')
  readonly createdAt = new Date()
  ipv4?: string
  ipv6?: string
  tunnel?: SessionTunnel
  /** ms since epoch after which the cookie is refused; undefined while a tunnel is up. */
  expiresAt?: number
  bytesIn = 0
  bytesOut = 0
  /** IP packets from the client (In) and to it (Out), counted on the data path (CSTP and DTLS). */
  packetsIn = 0
  packetsOut = 0
  /** The TUN interface and tunnel MTU of the current or last tunnel. */
  device?: string
  mtu?: number
  /** The DTLS channel of the current tunnel, once a handshake completed (session list shows it). */
  dtls?: SessionDtls

  constructor(
    readonly user: string,
    readonly group: string | undefined,
    readonly remoteAddress: string,
    readonly userAgent: string,
    readonly cookieDigest: Buffer,
  ) {}
}

export function digestCookie(cookie: string): Buffer {
  return crypto.createHash('sha256').update(cookie, 'latin1').digest()
}

export class SessionStore {
  private readonly byDigest = new Map<string, Session>()
  private readonly byId = new Map<string, Session>()
  private readonly sweeper: NodeJS.Timeout

  constructor(
    private readonly pools: {v4: AddressPool; v6?: AddressPool},
    private readonly cookieTimeoutMs: number,
    sweepMs = Math.min(10_000, cookieTimeoutMs),
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepMs)
    this.sweeper.unref()
  }

  get size(): number {
    return this.byId.size
  }

  all(): Session[] {
    return [...this.byId.values()]
  }

  get(id: string): Session | undefined {
    return this.byId.get(id)
  }

  /** Creates a session and returns it with its cookie (the only time the cookie exists in clear). */
  create(user: string, group: string | undefined, remote: string, userAgent: string) {
    const cookie = crypto.randomBytes(COOKIE_BYTES).toString('base64')
    const session = new Session(user, group, remote, userAgent, digestCookie(cookie))
    session.expiresAt = Date.now() + this.cookieTimeoutMs
    this.byDigest.set(session.cookieDigest.toString('hex'), session)
    this.byId.set(session.id, session)
    return {session, cookie}
  }

  /**
   * The live session for a cookie, or undefined when unknown or expired. The map is keyed by
   * the digest, so the lookup leaks nothing about the cookie; the final compare is constant-time.
   */
  findByCookie(cookie: string): Session | undefined {
    const digest = digestCookie(cookie)
    const session = this.byDigest.get(digest.toString('hex'))
    if (!session || !crypto.timingSafeEqual(digest, session.cookieDigest)) return undefined
    if (session.expiresAt !== undefined && session.expiresAt < Date.now()) {
      this.invalidate(session)
      return undefined
    }

    return session
  }

  /** Marks a session in use by a tunnel: it cannot expire while the tunnel lives. */
  attach(session: Session, tunnel: SessionTunnel) {
    session.tunnel = tunnel
    session.expiresAt = undefined
  }

  /** The tunnel ended but the cookie stays good for the cookie timeout. */
  detach(session: Session, tunnel: SessionTunnel) {
    if (session.tunnel !== tunnel) return
    session.tunnel = undefined
    if (this.byId.has(session.id)) session.expiresAt = Date.now() + this.cookieTimeoutMs
  }

  /** Ends a session for good: cookie refused, leases freed. Does not touch its tunnel. */
  invalidate(session: Session) {
    this.byDigest.delete(session.cookieDigest.toString('hex'))
    this.byId.delete(session.id)
    this.pools.v4.release(session.ipv4)
    this.pools.v6?.release(session.ipv6)
    session.ipv4 = undefined
    session.ipv6 = undefined
  }

  private sweep() {
    const now = Date.now()
    for (const s of this.byId.values()) {
      if (s.expiresAt !== undefined && s.expiresAt < now) this.invalidate(s)
    }
  }

  close() {
    clearInterval(this.sweeper)
  }
}
