/**
 * The gateway: one HTTPS listener carrying the aggregate-auth login (HTTP/1.1 with keep-alive)
 * and the `CONNECT /CSCOSSLC/tunnel` hand-off to a CSTP tunnel with its own TUN interface.
 *
 * Flow: TLS handshake → Node's HTTP parser → `onRequest` (login XML through `LoginHandler`, a
 * few static Cisco client URLs) or `onConnect` (cookie → session → addresses → TUN → `200
 * CONNECTED` → `CstpTunnel`). Every failure from the network ends its own connection with one
 * log line; nothing a peer sends reaches the process's uncaught handler.
 *
 * State: sessions live in `SessionStore` (cookies, leases); each live tunnel is owned by its
 * session; the gateway tracks sockets only to enforce the auth timeout and to close on stop.
 */
import crypto from 'node:crypto'
import type {IncomingMessage, ServerResponse} from 'node:http'
import https from 'node:https'
import net from 'node:net'
import type {Duplex} from 'node:stream'
import type {TLSSocket} from 'node:tls'

import {answerRaw, readBody} from './http-util.js'
import {
  LOGIN_PATHS,
  TUNNEL_PATH,
  TUNNEL_PATH_NO_SLASH,
  WEBVPN_COOKIE,
} from '../http-auth/constants.js'
import {getCookie} from '../http-auth/cookies.js'
import {BanList, type BanSettings, normalizeAddress} from '../http-auth/ban.js'
import {LoginHandler, type PasswordChecker} from '../http-auth/login.js'
import {buildConnectResponse, computeMtu, parseTunnelRequest, tlsRecordOverhead} from '../cstp/connect.js'
import {CSTP_HEADER_LEN} from '../cstp/constants.js'
import {CstpTunnel} from '../cstp/tunnel.js'
import {DTLS_HEADROOM} from '../dtls/constants.js'
import {type DtlsOffer, negotiateDtls} from '../dtls/negotiate.js'
import {DtlsLink} from './dtls-link.js'
import {DtlsListener} from './udp.js'
import {ProtocolError, configError} from '../errors.js'
import type {ServeConfig} from '../config/schema.js'
import type {Logger} from '../log/logger.js'
import {AddressPool} from '../session/pool.js'
import {type Session, SessionStore} from '../session/store.js'
import type {TunDevice} from '../tun/device.js'
import type {TunAddressConfig} from '../tun/ip.js'
import type {ExchangeRecorder} from '../replay/gateway-recorder.js'

export interface TunFactory {
  open(opts: {name: string; headroom: number; mtu: number}): TunDevice
  configure(name: string, cfg: TunAddressConfig): Promise<void>
}

export interface GatewayOptions {
  config: ServeConfig
  certPem: string
  keyPem: string
  users: PasswordChecker
  tun: TunFactory
  log: Logger
  version: string
  /** `serve --record`: told of each login exchange and each CONNECT, and may tap a tunnel. */
  recorder?: ExchangeRecorder
}

const EMPTY_HTML = {type: 'text/html', body: '<html></html>\n'}
const EMPTY_MANIFEST = {type: 'text/xml', body: '<?xml version="1.0" encoding="UTF-8"?>\n<vpn rev="1.0">\n</vpn>\n'}

/**
 * What Cisco Secure Client's downloader asks for around a login, answered as ocserv answers it
 * (auth-and-cstp.md §2.16): empty pages and manifests, so it finds nothing to install or update
 * and goes on to the tunnel. Any other path gets 404 and keeps the connection (ocserv's close
 * on an unexpected URL is what broke Cisco clients on its /+CSCOT+/ paths).
 */
const STATIC_PAGES: Record<string, {type: string; body: string}> = {
  '/logout': EMPTY_HTML,
  '/1/index.html': EMPTY_HTML,
  '/1/Linux': EMPTY_HTML,
  '/1/Linux_64': EMPTY_HTML,
  '/1/Windows': EMPTY_HTML,
  '/1/Windows_ARM64': EMPTY_HTML,
  '/1/Darwin_i386': EMPTY_HTML,
  '/1/VPNManifest.xml': EMPTY_MANIFEST,
  '/VPNManifest.xml': EMPTY_MANIFEST,
  '/+CSCOT+/': EMPTY_MANIFEST,
  '/1/binaries/update.txt': {type: 'text/xml', body: '0,0,0000\n'},
  // A downloader stub that installs nothing and succeeds.
  '/1/binaries/vpndownloader.sh': {type: 'application/x-shellscript', body: '#!/bin/sh\nexit 0\n'},
}

const MAX_REQUESTS_PER_CONNECTION = 32

export class Gateway {
  readonly sessions: SessionStore
  /** Failed-login scores and bans by client address (http-auth/ban.ts). */
  readonly bans: BanList
  readonly pool4: AddressPool
  readonly pool6?: AddressPool
  private readonly server: https.Server
  private readonly login: LoginHandler
  private readonly tunnels = new Set<CstpTunnel>()
  private readonly sockets = new Set<TLSSocket>()
  /** The DTLS socket on the listen port, unless `dtls` is off. */
  udp?: DtlsListener
  private udpPort = 0
  private readonly serverName: string
  readonly startedAt = new Date()

  constructor(private readonly o: GatewayOptions) {
    const c = o.config
    this.pool4 = new AddressPool(c.ipv4Pool)
    this.pool6 = c.ipv6Pool ? new AddressPool(c.ipv6Pool) : undefined
    this.sessions = new SessionStore({v4: this.pool4, v6: this.pool6}, c.cookieTimeout * 1000)
    this.serverName = `anygate ${o.version}`
    this.bans = new BanList(banSettings(c))

    this.login = new LoginHandler({
      users: o.users,
      sessions: this.sessions,
      groups: c.groups,
      banner: c.banner,
      serverVersion: o.version,
      serverCertSha1: certificateSha1(o.certPem),
      authTimeoutMs: c.authTimeout * 1000,
      log: o.log,
      onLoginFailed: (remote) => this.scoreFailedLogin(remote),
    })

    this.server = https.createServer(
      {
        cert: o.certPem,
        key: o.keyPem,
        minVersion: 'TLSv1.2',
        maxHeaderSize: c.maxHeaderBytes,
        requestTimeout: c.authTimeout * 1000,
        headersTimeout: Math.min(60_000, c.authTimeout * 1000),
        keepAliveTimeout: 30_000,
      },
      (req, res) => this.onRequest(req, res),
    )
    this.server.maxHeadersCount = 100
    this.server.maxRequestsPerSocket = MAX_REQUESTS_PER_CONNECTION
    this.server.maxConnections = c.maxClients
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onConnect(req, socket as TLSSocket, head).catch((err) => this.connectFailed(req, socket, err))
    })
    // Before the TLS listener's own: a banned address costs no handshake.
    this.server.prependListener('connection', (socket: net.Socket) => {
      if (this.bans.isBanned(socket.remoteAddress)) {
        this.o.log.debug('connection refused', {remote: socket.remoteAddress, reason: 'banned'})
        socket.destroy()
      }
    })
    this.server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket))
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket))
    this.server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      this.o.log.debug('tls handshake failed', {remote: socket.remoteAddress, reason: err.message})
    })
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{host: string; port: number}> {
    const {host, port} = this.o.config.listen
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        const addr = this.server.address() as net.AddressInfo
        this.server.on('error', (err) => this.o.log.error('listener error', {reason: err.message}))
        this.startUdp(addr.address, addr.port).then(() => resolve({host: addr.address, port: addr.port}), reject)
      })
    })
  }

  // DTLS listens on the TLS port, UDP (issue 4)
  private async startUdp(host: string, port: number) {
    if (!this.o.config.dtls) return
    const udp = new DtlsListener(host, this.o.log)
    await udp.listen(port)
    this.udp = udp
    this.udpPort = port
  }

  /** The DTLS offer for this CONNECT (dtls-and-datapath.md §2), or undefined for none. */
  private offerDtls(req: IncomingMessage, socket: TLSSocket, baseMtu: number, remoteIsIpv6: boolean): DtlsOffer | undefined {
    const c = this.o.config
    if (!this.udp || !c.dtls) return undefined
    return negotiateDtls(req.headers, {
      allowed: new Set(c.dtlsCiphers),
      id: crypto.randomBytes(32),
      // No context argument: an empty one gives another PSK under TLS 1.2 (§3.1, §14 item 2)
      // @ts-expect-error Node's types demand a context; omitting it is what the PSK needs
      exportPsk: () => socket.exportKeyingMaterial(32, 'EXPORTER-openconnect-psk'),
      cstpCipher: socket.getCipher()?.name ?? '',
      port: this.udpPort,
      dpd: c.dpd,
      keepalive: c.keepalive,
      rekeyTime: c.rekeyTime,
      baseMtu,
      remoteIsIpv6,
    })
  }

  /** Tunnels up now. */
  get tunnelCount(): number {
    return this.tunnels.size
  }

  /**
   * Stops: every client gets a DISCONNECT and its TUN interface goes, then the listener closes.
   * Resolves once all sockets are gone (or after `graceMs`).
   */
  async stop(graceMs = 3000): Promise<void> {
    for (const t of [...this.tunnels]) t.close('server shutdown', true)
    this.server.close()
    this.server.closeIdleConnections()
    const deadline = Date.now() + graceMs
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }

    for (const s of this.sockets) s.destroy()
    this.sessions.close()
    this.udp?.close()
  }

  /**
   * Takes a reloaded config for the logins and tunnels that follow. The caller keeps what
   * cannot change live (listener, pools, cookie store) at its running value (reload.ts).
   */
  reconfigure(config: ServeConfig) {
    this.o.config = config
    this.login.setOffer(config.groups, config.banner)
    this.server.maxConnections = config.maxClients
    this.bans.configure(banSettings(config))
  }

  private scoreFailedLogin(remote: string): boolean {
    const isNew = this.bans.add(remote, this.o.config.banPointsWrongPassword)
    if (isNew) {
      const entry = this.bans.list().find((b) => b.address === normalizeAddress(remote))
      this.o.log.warn('address banned', {remote, score: entry?.score, until: entry?.until})
    }

    return isNew || this.bans.isBanned(remote)
  }

  /**
   * Serves `certPem`/`keyPem` to the TLS handshakes that follow and sends its hash at login;
   * tunnels already up keep their connection. Throws a ConfigError, changing nothing, when the
   * two do not parse or do not belong together. Returns false when nothing changed.
   */
  setCertificate(certPem: string, keyPem: string): boolean {
    if (certPem === this.o.certPem && keyPem === this.o.keyPem) return false
    let cert: crypto.X509Certificate
    let key: crypto.KeyObject
    try {
      cert = new crypto.X509Certificate(certPem)
      key = crypto.createPrivateKey(keyPem)
    } catch (err) {
      throw configError('CERT_UNREADABLE', `the new certificate or key does not parse: ${(err as Error).message}`)
    }

    if (!cert.checkPrivateKey(key)) throw configError('CERT_BAD_PAIR', 'the new key does not belong to the new certificate')
    this.server.setSecureContext({cert: certPem, key: keyPem, minVersion: 'TLSv1.2'})
    this.login.setServerCertificate(certificateSha1(certPem))
    this.o.certPem = certPem
    this.o.keyPem = keyPem
    return true
  }

  /** The config in force. */
  get config(): ServeConfig {
    return this.o.config
  }

  /** Ends a session: its client is told, its cookie dies, its addresses are freed. */
  disconnect(session: Session, reason = 'admin disconnect') {
    session.tunnel?.close(reason, true)
    this.sessions.invalidate(session)
  }

  // Connections that never reach a tunnel end after the auth timeout (auth-and-cstp.md §2.18).
  private onSecureConnection(socket: TLSSocket) {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    socket.on('error', (err) => this.o.log.debug('connection error', {remote: socket.remoteAddress, reason: err.message}))
    const timer = setTimeout(() => {
      if (isTunnel(socket)) return
      this.o.log.warn('auth timeout', {remote: socket.remoteAddress})
      socket.destroy()
    }, this.o.config.authTimeout * 1000)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex) {
    const remote = (socket as TLSSocket).remoteAddress
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }

    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
    this.o.log.warn('bad http request', {remote, code: err.code, reason: err.message})
    answerRaw(socket, tooLarge ? 431 : 400, tooLarge ? 'Request Header Fields Too Large' : 'Bad Request')
  }

  private onRequest(req: IncomingMessage, res: ServerResponse) {
    this.handleRequest(req, res).catch((err) => {
      const remote = req.socket.remoteAddress
      if (err instanceof ProtocolError) {
        this.o.log.warn('bad auth request', {remote, code: err.code, reason: err.message})
        if (!res.headersSent) {
          res.writeHead(err.status ?? 400, {'Content-Length': 0, Connection: 'close'})
        }
        res.end()
        return
      }

      this.o.log.error('request failed', {remote, reason: (err as Error).message})
      if (!res.headersSent) res.writeHead(500, {'Content-Length': 0, Connection: 'close'})
      res.end()
    })
  }

  private async handleRequest(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]
    const method = req.method ?? 'GET'
    const isLogin = LOGIN_PATHS.has(path) && (method === 'GET' || method === 'POST')

    if (!isLogin) {
      req.resume()
      const page = method === 'GET' ? STATIC_PAGES[path] : undefined
      if (!page) {
        res.writeHead(404, {'Content-Type': 'text/html', 'Content-Length': 0})
        res.end()
        return
      }

      res.writeHead(200, {'Content-Type': page.type, 'Content-Length': Buffer.byteLength(page.body)})
      res.end(page.body)
      return
    }

    // A connection opened before its address was banned gets no more tries on it either.
    if (this.bans.isBanned(req.socket.remoteAddress)) {
      req.resume()
      res.writeHead(401, 'Authentication failed', {'Content-Length': 0, Connection: 'close'})
      res.end()
      return
    }

    const body = method === 'POST' ? await readBody(req, this.o.config.maxBodyBytes) : ''
    const answer = await this.login.handle({
      method,
      path,
      cookieHeader: req.headers.cookie,
      userAgent: req.headers['user-agent'] ?? '',
      remote: req.socket.remoteAddress ?? '',
      body,
    })

    res.statusCode = answer.status
    if (answer.statusText) res.statusMessage = answer.statusText
    res.setHeader('X-Transcend-Version', '1')
    const cookies = answer.headers.filter(([k]) => k === 'Set-Cookie').map(([, v]) => v)
    if (cookies.length > 0) res.setHeader('Set-Cookie', cookies)
    if (answer.body) res.setHeader('Content-Type', 'text/xml')
    res.setHeader('Content-Length', Buffer.byteLength(answer.body))
    if (answer.close) res.setHeader('Connection', 'close')
    res.end(answer.body)
    this.o.recorder?.http(req, body, res, answer.body)
  }

  private connectFailed(req: IncomingMessage, socket: Duplex, err: unknown) {
    this.o.log.error('tunnel setup failed', {
      remote: (socket as TLSSocket).remoteAddress,
      reason: (err as Error).message,
    })
    this.refuse(req, socket, getCookie(req.headers.cookie, WEBVPN_COOKIE), 503, 'Service Unavailable', ['X-Reason: Server error'])
  }

  /** Answers a CONNECT that gets no tunnel, closing its connection, and tells the recorder. */
  private refuse(req: IncomingMessage, socket: Duplex, cookie: string | undefined, status: number, text: string, extra?: string[]) {
    const answer = answerRaw(socket, status, text, extra)
    if (answer !== undefined) this.o.recorder?.connect(req, cookie, answer)
  }

  private async onConnect(req: IncomingMessage, socket: TLSSocket, head: Buffer) {
    const c = this.o.config
    const remote = socket.remoteAddress ?? ''
    const cookie = getCookie(req.headers.cookie, WEBVPN_COOKIE)

    // Cookie first, then path, as ocserv (auth-and-cstp.md §3.2)
    if (!cookie || !/^[A-Za-z0-9+/=_-]{16,128}$/.test(cookie)) {
      this.o.log.warn('tunnel refused', {remote, reason: 'no cookie'})
      this.refuse(req, socket, undefined, 503, 'Service Unavailable', ['X-Reason: No session cookie'])
      return
    }

    const session = this.sessions.findByCookie(cookie)
    if (!session) {
      this.o.log.warn('tunnel refused', {remote, reason: 'cookie not acceptable'})
      this.refuse(req, socket, cookie, 401, 'Cookie is not acceptable')
      return
    }

    if (req.url !== TUNNEL_PATH && req.url !== TUNNEL_PATH_NO_SLASH) {
      this.refuse(req, socket, cookie, 404, 'Not found')
      return
    }

    const log = this.o.log.child({session: session.id, user: session.user, remote})
    const tunReq = parseTunnelRequest(req.headers)
    // A second CONNECT with a live cookie replaces the first, keeping its addresses (§3.2).
    session.tunnel?.close('replaced by a new connection', false, false)

    // Addresses
    if (tunReq.wantsIpv4 && !session.ipv4) session.ipv4 = this.pool4.lease()
    if (this.pool6 && tunReq.wantsIpv6 && !session.ipv6) session.ipv6 = this.pool6.lease()
    if (!session.ipv4 && !session.ipv6) {
      log.error('tunnel refused', {reason: 'address pool exhausted'})
      this.refuse(req, socket, cookie, 503, 'Service Unavailable', ['X-Reason: No free address'])
      return
    }

    // MTU (§3.5)
    const cipher = socket.getCipher()
    const remoteIsIpv6 = net.isIPv6(remote) && !remote.startsWith('::ffff:')
    const {baseMtu, mtu: cstpMtu} = computeMtu({
      ourMtu: c.mtu,
      req: tunReq,
      remoteIsIpv6,
      tlsOverhead: tlsRecordOverhead(socket.getProtocol(), cipher?.name ?? ''),
    })
    // With DTLS both MTU headers carry the DTLS data MTU, as ocserv (dtls-and-datapath.md §9.5)
    const dtlsOffer = this.offerDtls(req, socket, baseMtu, remoteIsIpv6)
    const mtu = dtlsOffer ? dtlsOffer.mtu : cstpMtu

    // TUN
    const headroom = dtlsOffer ? DTLS_HEADROOM : CSTP_HEADER_LEN
    const tun = this.o.tun.open({name: `${c.device}%d`, headroom, mtu})
    try {
      await this.o.tun.configure(tun.name, {
        localV4: this.pool4.gateway,
        peerV4: session.ipv4 ?? '',
        mtu,
        localV6: session.ipv6 ? this.pool6?.gateway : undefined,
        peerV6: session.ipv6,
        prefixV6: 128,
      })
    } catch (err) {
      tun.close()
      throw err
    }

    if (socket.destroyed) {
      tun.close()
      return
    }

    const now = Date.now()
    const deadline = c.sessionTimeout > 0 ? session.createdAt.getTime() + c.sessionTimeout * 1000 : undefined
    const grant = {
      serverName: this.serverName,
      hostname: tunReq.hostname,
      ipv4: session.ipv4 ? {address: session.ipv4, pool: c.ipv4Pool} : undefined,
      ipv6: session.ipv6 && c.ipv6Pool ? {address: session.ipv6, pool: c.ipv6Pool} : undefined,
      dns: c.dns,
      routes: c.routes,
      noRoutes: c.noRoutes,
      defaultDomain: c.defaultDomain,
      banner: c.banner,
      dpd: c.dpd,
      keepalive: c.keepalive,
      idleTimeout: c.idleTimeout,
      sessionTimeout: c.sessionTimeout,
      sessionRemaining: deadline ? Math.max(1, Math.round((deadline - now) / 1000)) : 0,
      disconnectedTimeout: c.cookieTimeout,
      rekeyTime: c.rekeyTime,
      baseMtu,
      mtu,
      dtlsHeaders: dtlsOffer?.headers,
    }
    // Registered before the response: a ClientHello may race it (§8.1 item 5)
    const link =
      dtlsOffer && this.udp
        ? new DtlsLink({offer: dtlsOffer, session, tun, port: this.udp, log, dpd: c.dpd, onTraffic: () => tunnel.dataReceived()})
        : undefined
    if (link) this.udp?.add(link)
    if (dtlsOffer) log.debug('dtls offered', {choice: dtlsOffer.choice, dtlsMtu: dtlsOffer.mtu})
    const answer = buildConnectResponse(tunReq, grant)
    socket.write(answer)
    const tap = this.o.recorder?.connect(req, cookie, answer)
    markTunnel(socket)

    const tunnel: CstpTunnel = new CstpTunnel({
      socket,
      session,
      tun,
      mtu,
      dpd: c.dpd,
      idleTimeout: c.idleTimeout,
      sessionDeadline: deadline,
      log,
      dtls: link,
      tap,
      onClosed: (reason, invalidate) => {
        this.tunnels.delete(tunnel)
        if (link) this.udp?.remove(link)
        if (invalidate) this.sessions.invalidate(session)
        else this.sessions.detach(session, tunnel)
      },
    })
    this.tunnels.add(tunnel)
    this.sessions.attach(session, tunnel)
    session.mtu = mtu
    session.device = tun.name
    log.info('tunnel up', {vpnAddr: session.ipv4, vpnAddr6: session.ipv6, tun: tun.name, mtu})
    tunnel.start(head)
  }
}

const kTunnel = Symbol('anygate.tunnel')

function markTunnel(socket: TLSSocket) {
  ;(socket as unknown as Record<symbol, boolean>)[kTunnel] = true
}

function isTunnel(socket: TLSSocket): boolean {
  return (socket as unknown as Record<symbol, boolean>)[kTunnel] === true
}

/** SHA-1 of the certificate's DER, upper-case hex, as sent at login (auth-and-cstp.md §2.9). */
function certificateSha1(certPem: string): string {
  const der = new crypto.X509Certificate(certPem).raw
  return crypto.createHash('sha1').update(der).digest('hex').toUpperCase()
}

function banSettings(c: ServeConfig): BanSettings {
  return {maxScore: c.maxBanScore, resetSeconds: c.banResetTime}
}
