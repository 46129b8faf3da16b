/**
 * The probe: speaks to a gateway as a client would, step by step (TLS, the login XML, the
 * login itself, CONNECT and the CSTP tunnel), records what it saw, and grades it with
 * `checks.ts`. Each step has its own timeout; a step that cannot run leaves the later ones out.
 *
 * Flow: `probeGateway` → `probeTls` (one connection per TLS version; the chain listed, and
 * told apart from what the trust store added, chain.ts) → `probeAuth` (the XML init, and GET /
 * as a legacy client on a second connection) → `login` (auth-reply rounds until `complete`) →
 * `probeTunnel` (CONNECT on a fresh connection with only the webvpn cookie, as a reconnecting
 * client does; a DPD round trip; the DTLS handshake the gateway picked; then, when DTLS was
 * offered, a second CONNECT with the same cookie as the other client family, to try the DTLS
 * mode that family would get; DISCONNECT 0xb0 so the gateway frees the session at once) →
 * `probeLegacy` (the form login of openconnect --no-xmlpost, legacy-step.ts, then CONNECT with
 * its cookie and DISCONNECT at once, so that session is freed too).
 *
 * `--record` sees the `--as` client's login and first CONNECT only: a transcript is one
 * client's exchange (docs/transcript-format.md). The legacy client and the other family's
 * CONNECT are other clients and stay out of it.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import tls from 'node:tls'

import {type ClientFamily, CLIENT_IDENTITY, type ServerAuthDoc, authHeaders, buildInit, buildReply, credentialValues, legacyHeaders, parseServerXml} from '../client/auth-xml.js'
import {HttpClient, type HttpResponse, header, headerAll, openTls} from '../client/http-client.js'
import {CSTP_HEADER_LEN, CstpType, DisconnectReason, cstpTypeName} from '../cstp/constants.js'
import {CstpDecoder} from '../cstp/decoder.js'
import {encodeCstpFrame, encodeDisconnect} from '../cstp/encoder.js'
import {AnygateError, configError} from '../errors.js'
import {pinSha256} from '../pki/pin.js'
import type {ClientRecorder} from '../replay/recorder.js'
import {type ChainEntry, chainValidity, describeChain, oneLine, peerChain} from './chain.js'
import {type Check, type DtlsObservation, type Family, gradeAuth, gradeDtls, gradeLegacyLogin, gradeLogin, gradeTls, gradeTunnel, verdicts} from './checks.js'
import {agreementFrom, runDtls} from './dtls-step.js'
import {getLegacyForm, legacyLogin} from './legacy-step.js'

export interface ProbeOptions {
  url: string
  as: ClientFamily
  timeoutMs: number
  cafile?: string
  servercert?: string
  user?: string
  password?: string
  group?: string
  /** `--record`: told of every exchange and tunnel frame. */
  recorder?: ClientRecorder
  /** Called as each step starts and ends, for a progress line on a terminal. */
  onStep?: (step: string, state: 'start' | 'done') => void
}

export interface ProbeReport {
  target: string
  as: ClientFamily
  tls?: {protocol: string | null; cipher: string; versions: {tls12: boolean; tls13: boolean}; certificate: CertInfo; chain: ChainEntry[]}
  auth?: {serverVersion?: string; aggregateAuthVersion?: string; fields: string[]; groups: string[]; headers: Record<string, string>; legacy: LegacyFacts}
  login?: {ok: boolean; error?: string}
  tunnel?: TunnelFacts
  checks: Check[]
  verdict: Record<Family, string>
}

export interface CertInfo {
  subject: string
  issuer: string
  validTo: string
  pin: string
  hostnameMatches: boolean
  trusted: boolean
}

/** The legacy (non-XML) login of openconnect --no-xmlpost (auth-and-cstp.md §2.13). */
export interface LegacyFacts {
  /** GET /, as that client sends it, answered with a login form. */
  formServed: boolean
  /** With --user: the login through that form, then CONNECT and DISCONNECT with its cookie. */
  login?: LegacyLoginFacts
}

export interface LegacyLoginFacts {
  /** Why it was not tried, when it was not. */
  skipped?: string
  /** The field names posted in each round; values are never kept. */
  rounds: string[][]
  complete: boolean
  /** Where the session cookie came from; the cookie itself is never reported. */
  cookieFrom?: 'Set-Cookie' | 'session-token'
  /** The CONNECT answer's status line. */
  connect?: string
  /** DISCONNECT 0xb0 was sent on the granted tunnel, on which the gateway frees the session. */
  disconnected: boolean
  error?: string
}

export interface TunnelFacts {
  ipv4?: string
  netmask?: string
  ipv6?: string
  mtu?: number
  baseMtu?: number
  dns: string[]
  routes: string[]
  excludes: string[]
  dpd?: number
  keepalive?: number
  dpdRttMs?: number
  headers: Record<string, string | string[]>
  dtls: {offered: boolean; port?: number; cipher?: string; established: boolean; handshakeMs?: number; dpdRttMs?: number; error?: string}
  /** Each DTLS handshake tried: first as `--as`, then as the other family. */
  dtlsModes?: DtlsModeResult[]
}

export interface DtlsModeResult {
  /** The client family whose CONNECT headers got this offer. */
  as: ClientFamily
  /** PSK-NEGOTIATE (openconnect) or resumption of X-DTLS-Master-Secret (Cisco Secure Client). */
  mode?: 'psk' | 'resume'
  cipher?: string
  established: boolean
  handshakeMs?: number
  dpdRttMs?: number
  error?: string
}

/** The gateway could not be reached at all: the command exits 2. */
export class UnreachableError extends AnygateError {}

export function parseTarget(url: string): {host: string; port: number; path: string; href: string} {
  let u: URL
  try {
    u = new URL(/^[a-z]+:\/\//i.test(url) ? url : `https://${url}`)
  } catch {
    throw configError('PROBE_BAD_URL', `bad URL ${JSON.stringify(url)}: expected https://HOST[:PORT][/PATH]`)
  }

  if (u.protocol !== 'https:' || !u.hostname) {
    throw configError('PROBE_BAD_URL', `bad URL ${JSON.stringify(url)}: only https:// gateways`)
  }

  const host = u.hostname.replace(/^\[|\]$/g, '')
  return {host, port: Number(u.port || 443), path: u.pathname || '/', href: u.href}
}

export async function probeGateway(o: ProbeOptions): Promise<ProbeReport> {
  const target = parseTarget(o.url)
  const report: ProbeReport = {target: target.href, as: o.as, checks: [], verdict: {cisco: 'pass', openconnect: 'pass'}}
  const ca = o.cafile ? readCa(o.cafile) : undefined
  const conn = {host: target.host, port: target.port, ca, timeoutMs: o.timeoutMs}
  const step = async <T>(name: string, fn: () => Promise<T>) => {
    o.onStep?.(name, 'start')
    try {
      return await fn()
    } finally {
      o.onStep?.(name, 'done')
    }
  }

  // 1. TLS
  report.tls = await step('TLS', () => probeTls(conn, target.host, o, report.checks))
  if (report.checks.some((c) => c.id === 'tls.trust' && c.status === 'fail')) return finish(report)

  // 2. The login XML without credentials, and GET / as a legacy client
  const client = new HttpClient(conn, authHeaders(o.as))
  client.onExchange = o.recorder?.http
  const legacy = new HttpClient(conn, legacyHeaders())
  try {
    const forms = await step('auth', () => probeAuth(client, legacy, target, o, report))
    if (o.user === undefined) return finish(report)

    // 3. Login and CONNECT
    const cookie = forms.xml && (await step('login', () => login(client, target, o, forms.xml!, report)))
    if (cookie) report.tunnel = await step('tunnel', () => probeTunnel(conn, cookie, o, report.checks))

    // 4. The legacy form login, once the XML login's session is gone
    if (forms.legacy) await step('legacy login', () => probeLegacy(conn, legacy, forms.legacy!, o, report))
  } finally {
    client.close()
    legacy.close()
  }

  return finish(report)
}

/** The report with its keys in reading order and the verdicts filled in. */
function finish(r: ProbeReport): ProbeReport {
  const {target, as, tls, auth, login, tunnel, checks} = r
  return {target, as, tls, auth, login, tunnel, checks, verdict: verdicts(checks)}
}

function readCa(file: string): Buffer {
  try {
    return fs.readFileSync(file)
  } catch (err) {
    throw configError('PROBE_CAFILE', `cannot read --cafile ${file}: ${(err as Error).message}`)
  }
}

async function probeTls(conn: Parameters<typeof openTls>[0], host: string, o: ProbeOptions, checks: Check[]) {
  let socket: tls.TLSSocket
  try {
    socket = await openTls(conn)
  } catch (err) {
    throw new UnreachableError('PROBE_UNREACHABLE', `cannot reach ${host}:${conn.port}: ${describe(err)}`)
  }

  const peer = socket.getPeerCertificate(true)
  const listed = peerChain(socket)
  const cert = listed[0]
  const pin = pinSha256(cert)
  const hostnameMatches = tls.checkServerIdentity(host, peer) === undefined
  const info = {
    protocol: socket.getProtocol(),
    cipher: socket.getCipher().name,
    isTrusted: socket.authorized,
    trustError: socket.authorizationError ? String(socket.authorizationError) : undefined,
  }
  socket.destroy()

  // These connections trust nothing (an empty CA list), so their chain is only what the
  // gateway sent: Node can add no issuer from a store (chain.ts).
  let sent: Set<string> | undefined
  const tryVersion = async (min: tls.SecureVersion, max: tls.SecureVersion) => {
    try {
      const s = await openTls({...conn, ca: [], minVersion: min, maxVersion: max})
      sent ??= new Set(peerChain(s).map((x) => x.fingerprint256))
      s.destroy()
      return true
    } catch {
      return false
    }
  }
  const versions = {tls12: await tryVersion('TLSv1.2', 'TLSv1.2'), tls13: await tryVersion('TLSv1.3', 'TLSv1.3')}

  const chain = describeChain(listed, sent)
  checks.push(...gradeTls({...info, versions, chain: chainValidity(chain), hostnameMatches, pin, expectedPin: o.servercert, now: new Date()}))
  return {
    protocol: info.protocol,
    cipher: info.cipher,
    versions,
    certificate: {subject: oneLine(cert.subject), issuer: oneLine(cert.issuer), validTo: new Date(cert.validTo).toISOString(), pin, hostnameMatches, trusted: info.isTrusted},
    chain,
  }
}

/** The init, then GET / on the legacy client; returns the forms each offered. */
async function probeAuth(client: HttpClient, legacyClient: HttpClient, target: ReturnType<typeof parseTarget>, o: ProbeOptions, report: ProbeReport) {
  const contentType: [string, string] = ['Content-Type', CLIENT_IDENTITY[o.as].contentType]
  let res: HttpResponse
  try {
    res = await client.request('POST', target.path, buildInit(o.as, target.href, o.group), [contentType])
  } catch (err) {
    report.checks.push({id: 'auth.init', step: 'auth', status: 'fail', detail: `init failed: ${describe(err)}`})
    return {}
  }

  const isXml = res.body.trimStart().startsWith('<?xml') || res.body.trimStart().startsWith('<config-auth')
  const doc = isXml ? safeParse(res.body) : undefined
  // Closed at once: the login, if any, comes after the tunnel step, on a fresh connection.
  const legacy = await getLegacyForm(legacyClient)
  legacyClient.close()
  const fields = doc?.form?.inputs.map((i) => i.name) ?? []
  const groups = doc?.form?.selects.find((s) => s.name === 'group_list')?.options.map((g) => g.label) ?? []

  report.checks.push(
    ...gradeAuth({
      initStatus: res.status,
      isXml: doc !== undefined,
      hasTranscend: header(res, 'X-Transcend-Version') === '1',
      aggregateAuthVersion: doc?.aggregateAuthVersion,
      formFields: fields,
      groups,
      legacyGetWorks: legacy.isServed,
    }),
  )
  const shown = ['Server', 'X-Transcend-Version', 'Content-Type', 'X-Aggregate-Auth']
  report.auth = {
    serverVersion: doc?.serverVersion,
    aggregateAuthVersion: doc?.aggregateAuthVersion,
    fields,
    groups,
    headers: Object.fromEntries(shown.flatMap((h) => (header(res, h) ? [[h, header(res, h)!]] : []))),
    legacy: {formServed: legacy.isServed},
  }
  return {xml: doc?.type === 'auth-request' ? doc : undefined, legacy: legacy.doc}
}

function safeParse(body: string) {
  try {
    return parseServerXml(body)
  } catch {
    return undefined
  }
}

const MAX_LOGIN_ROUNDS = 5

/** Answers forms until `complete`; returns the webvpn cookie, or undefined when refused. */
async function login(client: HttpClient, target: ReturnType<typeof parseTarget>, o: ProbeOptions, first: ServerAuthDoc, report: ProbeReport) {
  const contentType: [string, string] = ['Content-Type', CLIENT_IDENTITY[o.as].contentType]
  let doc = first
  let res: HttpResponse | undefined
  let passwordSent = false

  for (let round = 0; round < MAX_LOGIN_ROUNDS && doc.type === 'auth-request'; round++) {
    if (passwordSent && doc.error) break
    const values = credentialValues(doc, o.user ?? '', o.password ?? '')

    passwordSent ||= (doc.form?.inputs ?? []).some((i) => i.type === 'password')
    const action = doc.form?.action ?? target.path
    res = await client.request('POST', action, buildReply(o.as, doc, values, o.group), [contentType])
    const next = res.status === 200 ? safeParse(res.body) : undefined
    if (!next) break
    doc = next
  }

  const isComplete = doc.type === 'complete'
  const cookieHeader = headerAll(res ?? ({headers: []} as unknown as HttpResponse), 'Set-Cookie').find((c) => /^webvpn=[^;]+/.test(c))
  const cookie = cookieHeader ? /^webvpn=([^;]+)/.exec(cookieHeader)![1] : doc.sessionToken
  const error = isComplete ? undefined : (doc.error ?? (res ? `status ${res.status} ${res.statusText}` : 'no answer'))
  report.checks.push(
    ...gradeLogin({
      isComplete,
      error,
      cookieFromHeader: Boolean(cookieHeader),
      cookieFromToken: Boolean(doc.sessionToken),
      cookieFlags: cookieHeader?.split(';').slice(1).join(';').trim() ?? '',
    }),
  )
  report.login = {ok: isComplete && Boolean(cookie), error}
  return isComplete ? cookie : undefined
}

/** The CONNECT headers of each client family (auth-and-cstp.md §3.1). */
export function connectHeaders(as: ClientFamily, localAddress: string, masterSecret: string): [string, string][] {
  const h: [string, string][] = [
    ['User-Agent', CLIENT_IDENTITY[as].tunnelAgent],
    ['X-CSTP-Version', '1'],
    ['X-CSTP-Hostname', os.hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'probe'],
    ['X-CSTP-Base-MTU', '1500'],
    ['X-CSTP-MTU', '1390'],
    ['X-CSTP-Address-Type', 'IPv6,IPv4'],
    ['X-CSTP-Full-IPv6-Capability', 'true'],
    ['X-DTLS-Master-Secret', masterSecret],
  ]
  if (as === 'cisco') {
    h.push(
      ['X-CSTP-Protocol', 'Copyright (c) 2004 Cisco Systems, Inc.'],
      ['X-CSTP-Local-Address-IP4', localAddress],
      ['X-DTLS-CipherSuite', 'DHE-RSA-AES256-SHA:AES256-SHA:DHE-RSA-AES128-SHA:AES128-SHA'],
      ['X-DTLS12-CipherSuite', 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA:AES128-SHA'],
      ['X-DTLS-Header-Pad-Length', '0'],
    )
  } else {
    h.push(
      ['X-DTLS-CipherSuite', 'PSK-NEGOTIATE:OC-DTLS1_2-AES256-GCM:OC-DTLS1_2-AES128-GCM:AES256-SHA:AES128-SHA'],
      ['X-DTLS12-CipherSuite', 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA:AES128-SHA'],
    )
  }

  return h
}

async function probeTunnel(conn: Parameters<typeof openTls>[0], cookie: string, o: ProbeOptions, checks: Check[]): Promise<TunnelFacts> {
  const other: ClientFamily = o.as === 'cisco' ? 'openconnect' : 'cisco'
  const first = await connectTunnel(conn, cookie, o.as, o, o.recorder)
  let last = first
  try {
    const {facts} = first
    if (!first.socket || !first.res) {
      checks.push({id: 'tunnel.connect', step: 'tunnel', status: 'fail', detail: `CONNECT failed: ${first.error ?? 'no answer'}`})
      return facts
    }

    const statusLine = `HTTP/1.1 ${first.res.status} ${first.res.statusText}`
    if (first.res.status !== 200) {
      checks.push(...gradeTunnel({statusLine, headers: first.res.headers}))
      return facts
    }

    const rtt = await dpdRoundTrip(first.socket, first.client.takeRest(), o.timeoutMs, o.recorder).then(
      (ms) => ({ms, error: undefined}),
      (err: Error) => ({ms: undefined, error: err.message}),
    )
    facts.dpdRttMs = rtt.ms
    checks.push(...gradeTunnel({statusLine, headers: first.res.headers, dpdRttMs: rtt.ms, dpdError: rtt.error}))
    if (!facts.dtls.offered || !facts.dtls.port) return facts

    const mine = await tryDtls(conn.host, first, o)
    facts.dtls = {...facts.dtls, ...withoutFamily(mine)}
    facts.dtlsModes = [mine]
    checks.push(gradeDtls(mine, {affects: [o.as], family: o.as}))

    // The other family's mode needs its own CONNECT (the gateway picks one mode per CONNECT).
    // The first connection ends without a DISCONNECT, so the cookie stays good, as when a
    // client's connection breaks and it reconnects (auth-and-cstp.md §3).
    await endQuietly(first.socket, o.timeoutMs)
    const second = await connectTunnel(conn, cookie, other, o)
    last = second
    const theirs: DtlsModeResult =
      second.res?.status === 200
        ? await tryDtls(conn.host, second, o)
        : {as: other, established: false, error: `reconnect with the cookie refused: ${second.res ? `${second.res.status} ${second.res.statusText}` : second.error}`}
    facts.dtlsModes.push(theirs)
    checks.push(gradeDtls(theirs, {affects: [other], family: other, id: `tunnel.dtls-as-${other}`}))
    return facts
  } finally {
    if (last !== first) first.client.close()
    await disconnect(last, o.timeoutMs)
  }
}

/**
 * Ends a tunnel the gateway granted with DISCONNECT 0xb0, on which the gateway frees the
 * session at once (auth-and-cstp.md §4.5), and waits briefly for it to close the connection.
 * False when there was no tunnel to end.
 */
async function disconnect(t: TunnelAttempt, timeoutMs: number): Promise<boolean> {
  const isUp = t.res?.status === 200 && t.socket?.writable === true
  if (isUp) await endQuietly(t.socket!, timeoutMs, encodeDisconnect(DisconnectReason.UserLogout, 'probe finished'))
  t.client.close()
  return isUp
}

/**
 * The legacy form login with the credentials (legacy-step.ts), then CONNECT with its cookie and
 * DISCONNECT at once, so the gateway keeps nothing of it. It runs after the XML session has
 * ended, so a gateway that limits sessions per user is never asked for two at once.
 */
async function probeLegacy(conn: Parameters<typeof openTls>[0], client: HttpClient, form: ServerAuthDoc, o: ProbeOptions, report: ProbeReport) {
  const isOnlyPath = report.login === undefined
  let facts: LegacyLoginFacts
  if (report.login && !report.login.ok) {
    // A wrong password tried again only adds to the failed logins held against this address.
    facts = {skipped: 'the XML login with these credentials failed', rounds: [], complete: false, disconnected: false}
  } else {
    const r = await legacyLogin(client, form, {user: o.user ?? '', password: o.password ?? '', group: o.group})
    client.close()
    const t = r.cookie ? await connectTunnel(conn, r.cookie, 'openconnect', o) : undefined
    facts = {
      rounds: r.rounds,
      complete: r.isComplete,
      cookieFrom: r.cookieFrom,
      connect: t?.res ? `HTTP/1.1 ${t.res.status} ${t.res.statusText}` : undefined,
      disconnected: t ? await disconnect(t, o.timeoutMs) : false,
      error: r.error ?? t?.error,
    }
  }

  const check = gradeLegacyLogin({
    skipped: facts.skipped,
    isComplete: facts.complete,
    error: facts.error,
    hasCookie: facts.cookieFrom !== undefined,
    connectStatusLine: facts.connect,
    connectError: facts.error,
    isOnlyPath,
  })
  const at = report.checks.findIndex((c) => c.id === 'auth.legacy')
  report.checks.splice(at < 0 ? report.checks.length : at + 1, 0, check)
  if (report.auth) report.auth.legacy.login = facts
}

interface TunnelAttempt {
  client: HttpClient
  facts: TunnelFacts
  socket?: tls.TLSSocket
  res?: HttpResponse
  masterSecret: string
  as: ClientFamily
  error?: string
}

/** One CONNECT with only the cookie, on a fresh connection, with `as`'s header set. */
async function connectTunnel(
  conn: Parameters<typeof openTls>[0],
  cookie: string,
  as: ClientFamily,
  o: ProbeOptions,
  recorder?: ClientRecorder,
): Promise<TunnelAttempt> {
  const client = new HttpClient(conn, [])
  client.onExchange = recorder?.http
  client.cookies.set('webvpn', cookie)
  const masterSecret = crypto.randomBytes(48).toString('hex').toUpperCase()
  try {
    const socket = await client.tls()
    const res = await client.request('CONNECT', '/CSCOSSLC/tunnel', '', connectHeaders(as, socket.localAddress ?? '', masterSecret))
    return {client, socket, res, masterSecret, as, facts: tunnelFacts(res.headers)}
  } catch (err) {
    return {client, masterSecret, as, facts: tunnelFacts([]), error: describe(err)}
  }
}

async function tryDtls(host: string, t: TunnelAttempt, o: ProbeOptions): Promise<DtlsModeResult> {
  const port = t.facts.dtls.port
  const agreement = agreementFrom(t.res!.headers, t.masterSecret, t.socket!)
  if (typeof agreement === 'string') return {as: t.as, established: false, error: agreement}
  if (!port) return {as: t.as, mode: agreement.mode, established: false, error: 'no X-DTLS-Port'}
  return {as: t.as, mode: agreement.mode, ...(await runDtls(host, port, agreement, o.timeoutMs))}
}

function withoutFamily(m: DtlsModeResult): DtlsObservation {
  const {as: _as, mode: _mode, ...rest} = m
  return rest
}

/** Closes a tunnel's TLS connection, after `lastFrame` if given, and waits (briefly) until it is gone. */
async function endQuietly(socket: tls.TLSSocket, timeoutMs: number, lastFrame?: Buffer): Promise<void> {
  if (socket.destroyed) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy()
      resolve()
    }, Math.min(timeoutMs, 2000))
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    if (lastFrame) socket.end(lastFrame)
    else socket.end()
  })
}

/** Sends a CSTP DPD request with a random payload and waits for the echo. */
function dpdRoundTrip(socket: tls.TLSSocket, head: Buffer, timeoutMs: number, recorder?: ClientRecorder): Promise<number> {
  const payload = crypto.randomBytes(16)
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const timer = setTimeout(() => done(new Error(`no DPD answer within ${timeoutMs} ms`)), timeoutMs)
    const decoder = new CstpDecoder(0xffff, (type, p) => {
      recorder?.frame('gateway', cstpTypeName(type), p.length)
      if (type === CstpType.DpdResponse && p.equals(payload)) done(undefined, performance.now() - started)
      if (type === CstpType.Disconnect || type === CstpType.Terminate) done(new Error('the gateway ended the tunnel'))
    })
    const onData = (c: Buffer) => {
      try {
        decoder.push(c)
      } catch (err) {
        done(err as Error)
      }
    }

    function done(err?: Error, ms?: number) {
      clearTimeout(timer)
      socket.off('data', onData)
      if (err) reject(err)
      else resolve(ms!)
    }

    socket.on('data', onData)
    if (head.length >= CSTP_HEADER_LEN) onData(head)
    socket.write(encodeCstpFrame(CstpType.DpdRequest, payload))
    recorder?.frame('client', cstpTypeName(CstpType.DpdRequest), payload.length)
  })
}

function tunnelFacts(headers: [string, string][]): TunnelFacts {
  const all = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v)
  const num = (n: string) => (all(n)[0] !== undefined && /^\d+$/.test(all(n)[0]) ? Number(all(n)[0]) : undefined)
  const address = all('X-CSTP-Address')
  const grouped: Record<string, string | string[]> = {}
  for (const [k, v] of headers) {
    if (!/^X-(CSTP|DTLS)/i.test(k) || k === 'X-CSTP-Post-Auth-XML') continue
    const prev = grouped[k]
    grouped[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v]
  }

  return {
    ipv4: address.find((a) => !a.includes(':')),
    netmask: all('X-CSTP-Netmask')[0],
    ipv6: all('X-CSTP-Address-IP6')[0] ?? address.find((a) => a.includes(':')),
    mtu: num('X-CSTP-MTU') ?? num('X-DTLS-MTU'),
    baseMtu: num('X-CSTP-Base-MTU'),
    dns: [...all('X-CSTP-DNS'), ...all('X-CSTP-DNS-IP6')],
    routes: [...all('X-CSTP-Split-Include'), ...all('X-CSTP-Split-Include-IP6')],
    excludes: [...all('X-CSTP-Split-Exclude'), ...all('X-CSTP-Split-Exclude-IP6')],
    dpd: num('X-CSTP-DPD'),
    keepalive: num('X-CSTP-Keepalive'),
    headers: grouped,
    dtls: {
      offered: all('X-DTLS-Port').length > 0,
      port: num('X-DTLS-Port'),
      cipher: all('X-DTLS12-CipherSuite')[0] ?? all('X-DTLS-CipherSuite')[0],
      established: false,
    },
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e?.code === 'ECONNREFUSED') return 'connection refused'
  if (e?.code === 'EHOSTUNREACH' || e?.code === 'ENETUNREACH') return 'no route to host'
  if (e?.code === 'ENOTFOUND') return 'host not found'
  return e?.message ?? String(err)
}
