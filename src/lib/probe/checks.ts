/**
 * Grading: each function turns what the probe observed into checks (pass / warn / fail /
 * skip) with a one-line reason, and says which client families a check matters for. Pure,
 * so every grade has a unit test. Sources for each rule are cited beside it.
 */

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip'
export type Family = 'cisco' | 'openconnect'
export type Step = 'tls' | 'auth' | 'login' | 'tunnel'

export interface Check {
  id: string
  step: Step
  status: CheckStatus
  detail: string
  /** The client families this check matters to; both when absent. */
  affects?: Family[]
}

const both: Family[] = ['cisco', 'openconnect']
export const FAMILY_NAMES: Record<Family, string> = {cisco: 'Cisco Secure Client', openconnect: 'openconnect'}
const RANK: Record<CheckStatus, number> = {skip: 0, pass: 1, warn: 2, fail: 3}

/** The overall verdict per family: the worst status among the checks that matter to it. */
export function verdicts(checks: Check[]): Record<Family, CheckStatus> {
  const out: Record<Family, CheckStatus> = {cisco: 'pass', openconnect: 'pass'}
  for (const c of checks) {
    for (const f of c.affects ?? both) {
      if (RANK[c.status] > RANK[out[f]]) out[f] = c.status
    }
  }

  return out
}

/** One certificate of the chain, for the expiry grade. */
export interface CertValidity {
  /** How a detail names it: `intermediate "Example Issuing CA"`. */
  name: string
  validFrom: Date
  validTo: Date
}

export interface TlsObservation {
  protocol: string | null
  cipher: string
  versions: {tls12: boolean; tls13: boolean}
  /** Every certificate listed, leaf first (the leaf alone when nothing else is known). */
  chain: CertValidity[]
  hostnameMatches: boolean
  /** Trusted by the CA store or --cafile. */
  isTrusted: boolean
  trustError?: string
  pin: string
  /** The pin the user gave with --servercert, if any. */
  expectedPin?: string
  now: Date
}

export function gradeTls(o: TlsObservation): Check[] {
  const checks: Check[] = []
  checks.push({id: 'tls.protocol', step: 'tls', status: 'pass', detail: `${o.protocol} with ${o.cipher}`})

  // Some AnyConnect builds failed on TLS 1.3; ocserv's cisco-client-compat turns it off (§2.17).
  if (!o.versions.tls12) {
    checks.push({id: 'tls.versions', step: 'tls', status: 'warn', affects: ['cisco'], detail: 'TLS 1.2 refused: older AnyConnect clients need it'})
  } else {
    const list = ['TLS 1.2', ...(o.versions.tls13 ? ['TLS 1.3'] : [])].join(' and ')
    checks.push({id: 'tls.versions', step: 'tls', status: 'pass', detail: `${list} accepted`})
  }

  checks.push(gradeExpiry(o.chain, o.now))

  checks.push(
    o.hostnameMatches
      ? {id: 'tls.hostname', step: 'tls', status: 'pass', detail: 'certificate names the host'}
      : {id: 'tls.hostname', step: 'tls', status: o.expectedPin ? 'warn' : 'fail', detail: 'certificate does not name the host: clients warn or refuse'},
  )

  if (o.expectedPin) {
    const ok = o.expectedPin === o.pin
    checks.push({id: 'tls.trust', step: 'tls', status: ok ? 'pass' : 'fail', detail: ok ? 'pin matches' : `pin mismatch: gateway has ${o.pin}`})
  } else {
    checks.push(
      o.isTrusted
        ? {id: 'tls.trust', step: 'tls', status: 'pass', detail: 'chain trusted'}
        : {id: 'tls.trust', step: 'tls', status: 'warn', detail: `chain not trusted (${o.trustError ?? 'unknown issuer'}): users must accept it or pin ${o.pin}`},
    )
  }

  return checks
}

const DAY_MS = 86_400_000
/** A certificate this close to its end warns: time to renew before clients refuse it. */
const EXPIRY_WARN_DAYS = 30

/**
 * One grade for the whole chain, as a client checks every certificate of it: fail when one is
 * expired or not yet valid, warn when one ends within 30 days. The detail names the worst.
 */
export function gradeExpiry(chain: CertValidity[], now: Date): Check {
  const grade = (status: CheckStatus, detail: string): Check => ({id: 'tls.expiry', step: 'tls', status, detail})
  const more = (n: number) => (n > 1 ? ` (and ${n - 1} more)` : '')
  const expired = chain.filter((c) => c.validTo.getTime() < now.getTime())
  if (expired.length > 0) {
    return grade('fail', `${expired[0].name} expired on ${day(expired[0].validTo)}${more(expired.length)}`)
  }

  const early = chain.filter((c) => c.validFrom.getTime() > now.getTime())
  if (early.length > 0) {
    return grade('fail', `${early[0].name} not valid until ${day(early[0].validFrom)}${more(early.length)}`)
  }

  const first = chain.reduce<CertValidity | undefined>((a, c) => (a && a.validTo <= c.validTo ? a : c), undefined)
  if (!first) return grade('skip', 'no certificate seen')
  const days = (first.validTo.getTime() - now.getTime()) / DAY_MS
  if (days < EXPIRY_WARN_DAYS) return grade('warn', `${first.name} expires in ${Math.floor(days)} days`)
  if (chain.length === 1) return grade('pass', `valid until ${day(first.validTo)}`)
  return grade('pass', `all ${chain.length} valid; ${first.name} ends first, on ${day(first.validTo)}`)
}

const day = (d: Date) => d.toISOString().slice(0, 10)

export interface AuthObservation {
  initStatus: number
  isXml: boolean
  hasTranscend: boolean
  aggregateAuthVersion?: string
  formFields: string[]
  groups: string[]
  legacyGetWorks: boolean
}

export function gradeAuth(o: AuthObservation): Check[] {
  const checks: Check[] = []
  // openconnect falls back to the legacy form by itself when the XML POST fails (§2.13).
  const legacy: Check = o.legacyGetWorks
    ? {id: 'auth.legacy', step: 'auth', status: 'pass', detail: 'GET / serves the form (legacy clients)'}
    : {id: 'auth.legacy', step: 'auth', status: 'warn', affects: ['openconnect'], detail: 'GET / gives no form: openconnect --no-xmlpost and old clients cannot log in'}
  if (o.initStatus !== 200 || !o.isXml) {
    const why = o.initStatus === 404 ? '404: the gateway may want a group URL path' : `status ${o.initStatus}${o.isXml ? '' : ', not aggregate-auth XML'}`
    checks.push({id: 'auth.init', step: 'auth', status: 'fail', detail: `init refused: ${why}`}, legacy)
    return checks
  }

  checks.push({id: 'auth.init', step: 'auth', status: 'pass', detail: `auth-request with fields ${o.formFields.join(', ') || '(none)'}`})
  checks.push(
    o.hasTranscend
      ? {id: 'auth.transcend', step: 'auth', status: 'pass', detail: 'X-Transcend-Version: 1 sent'}
      : {id: 'auth.transcend', step: 'auth', status: 'warn', affects: ['cisco'], detail: 'no X-Transcend-Version header (Cisco gateways always send it)'},
  )
  checks.push({
    id: 'auth.version',
    step: 'auth',
    status: 'pass',
    detail: o.aggregateAuthVersion ? `aggregate-auth-version ${o.aggregateAuthVersion}` : 'no aggregate-auth-version attribute (as ocserv)',
  })
  const hasUser = o.formFields.includes('username')
  checks.push(
    hasUser
      ? {id: 'auth.form', step: 'auth', status: 'pass', detail: o.formFields.includes('password') ? 'username and password in one form' : 'username first, password in a later form'}
      : {id: 'auth.form', step: 'auth', status: 'warn', detail: 'no username field: not a password login'},
  )
  if (o.groups.length > 0) checks.push({id: 'auth.groups', step: 'auth', status: 'pass', detail: `groups offered: ${o.groups.join(', ')}`})
  checks.push(legacy)
  return checks
}

export interface LegacyLoginObservation {
  /** Why the login was not tried, when it was not. */
  skipped?: string
  isComplete: boolean
  /** The gateway's error, or what went wrong, when not complete. */
  error?: string
  hasCookie: boolean
  /** The status line of the CONNECT made with the cookie. */
  connectStatusLine?: string
  connectError?: string
  /**
   * No XML login ran, so openconnect would take this path by itself (it falls back to the
   * form when the XML POST fails, §2.13): a failure here is then a failure to connect at all.
   */
  isOnlyPath: boolean
}

/**
 * The legacy form login (auth-and-cstp.md §2.13). It matters to openconnect only: with
 * `--no-xmlpost`, in versions before the XML login, and as its fallback; Cisco Secure Client
 * always posts XML. With a working XML login beside it, a broken form warns like a missing one.
 */
export function gradeLegacyLogin(o: LegacyLoginObservation): Check {
  const base = {id: 'auth.legacy-login', step: 'auth' as const, affects: ['openconnect'] as Family[]}
  if (o.skipped) return {...base, status: 'skip', detail: `form login not tried: ${o.skipped}`}
  const bad = o.isOnlyPath ? 'fail' : 'warn'
  const who = o.isOnlyPath ? 'openconnect cannot log in' : 'openconnect --no-xmlpost cannot log in'
  if (!o.isComplete) return {...base, status: bad, detail: `form login refused${o.error ? ` (${o.error})` : ''}: ${who}`}
  if (!o.hasCookie) return {...base, status: bad, detail: `form login complete but no webvpn cookie: ${who}`}
  if (!o.connectStatusLine?.startsWith('HTTP/1.1 200 ')) {
    const answer = o.connectStatusLine ? `answered ${o.connectStatusLine}` : `failed (${o.connectError ?? 'no answer'})`
    return {...base, status: bad, detail: `CONNECT with the form login's cookie ${answer}: ${who}`}
  }

  return {...base, status: 'pass', detail: 'form login gave a cookie; CONNECT accepted it'}
}

export interface LoginObservation {
  isComplete: boolean
  error?: string
  cookieFromHeader: boolean
  cookieFromToken: boolean
  cookieFlags: string
}

export function gradeLogin(o: LoginObservation): Check[] {
  if (!o.isComplete) return [{id: 'login.result', step: 'login', status: 'fail', detail: `login refused${o.error ? `: ${o.error}` : ''}`}]
  const checks: Check[] = [{id: 'login.result', step: 'login', status: 'pass', detail: 'complete'}]
  const hasCookie = o.cookieFromHeader || o.cookieFromToken
  const where = [o.cookieFromHeader && 'Set-Cookie webvpn', o.cookieFromToken && '<session-token>'].filter(Boolean).join(' and ')
  checks.push(
    hasCookie
      ? {id: 'login.cookie', step: 'login', status: 'pass', detail: `session cookie in ${where}`}
      : {id: 'login.cookie', step: 'login', status: 'fail', detail: 'no webvpn cookie and no session-token'},
  )
  if (o.cookieFromHeader) {
    const secure = /secure/i.test(o.cookieFlags) && /httponly/i.test(o.cookieFlags)
    checks.push({id: 'login.cookie-flags', step: 'login', status: secure ? 'pass' : 'warn', detail: secure ? 'Secure; HttpOnly' : `cookie flags: ${o.cookieFlags || 'none'}`})
  }

  return checks
}

export interface TunnelObservation {
  statusLine: string
  /** Response headers as sent. */
  headers: [string, string][]
  dpdRttMs?: number
  dpdError?: string
}

/** Grades the CONNECT answer (auth-and-cstp.md §3.3, §3.8, §9). */
export function gradeTunnel(o: TunnelObservation): Check[] {
  const checks: Check[] = []
  const ok = o.statusLine.startsWith('HTTP/1.1 200 ')
  if (!ok) {
    checks.push({id: 'tunnel.connect', step: 'tunnel', status: 'fail', detail: `CONNECT answered ${o.statusLine}`})
    return checks
  }

  checks.push({id: 'tunnel.connect', step: 'tunnel', status: 'pass', detail: o.statusLine})
  const exact = (n: string) => o.headers.filter(([k]) => k === n).map(([, v]) => v)
  const loose = o.headers.filter(([k]) => /^x-(cstp|dtls)/i.test(k) && !/^X-(CSTP|DTLS|DTLS12)-/.test(k))
  if (loose.length > 0) {
    checks.push({id: 'tunnel.header-case', step: 'tunnel', status: 'fail', affects: ['openconnect'], detail: `openconnect ignores ${loose.map(([k]) => k).join(', ')} (names are matched case-sensitively)`})
  }

  checks.push(gradeMtu(exact('X-CSTP-MTU')[0], exact('X-DTLS-MTU')[0], exact('X-CSTP-Base-MTU')[0]))
  const addr = exact('X-CSTP-Address')[0]
  const v6 = exact('X-CSTP-Address-IP6')[0]
  checks.push(
    addr || v6
      ? {id: 'tunnel.address', step: 'tunnel', status: 'pass', detail: [addr && `${addr}/${exact('X-CSTP-Netmask')[0] ?? '?'}`, v6].filter(Boolean).join(', ')}
      : {id: 'tunnel.address', step: 'tunnel', status: 'fail', detail: 'no address assigned'},
  )

  // Secure Client 5.1 is reported to reject rekey method none (§3.3).
  const rekey = exact('X-CSTP-Rekey-Method')[0]
  checks.push(
    rekey === 'none' || rekey === undefined
      ? {id: 'tunnel.rekey', step: 'tunnel', status: 'warn', affects: ['cisco'], detail: `rekey method ${rekey ?? 'missing'}: Cisco Secure Client 5.1 is reported to refuse it`}
      : {id: 'tunnel.rekey', step: 'tunnel', status: 'pass', detail: `rekey ${rekey} after ${exact('X-CSTP-Rekey-Time')[0] ?? '?'} s`},
  )
  // Lease-Duration was dropped by ocserv after reports that it broke newer AnyConnect (§3.3).
  const lease = exact('X-CSTP-Lease-Duration')[0]
  if (lease === 'none') checks.push({id: 'tunnel.lease', step: 'tunnel', status: 'warn', affects: ['cisco'], detail: 'X-CSTP-Lease-Duration: none broke newer AnyConnect clients'})

  const dpd = exact('X-CSTP-DPD')[0]
  const ka = exact('X-CSTP-Keepalive')[0]
  checks.push({id: 'tunnel.timers', step: 'tunnel', status: dpd ? 'pass' : 'warn', detail: `DPD ${dpd ?? 'none'}, keepalive ${ka ?? 'none'}, idle ${exact('X-CSTP-Idle-Timeout')[0] ?? 'none'}, session ${exact('X-CSTP-Session-Timeout')[0] ?? 'none'}`})

  checks.push(...gradeDtlsOffer(exact))
  if (o.dpdRttMs !== undefined) checks.push({id: 'tunnel.dpd', step: 'tunnel', status: 'pass', detail: `CSTP DPD answered in ${o.dpdRttMs.toFixed(1)} ms`})
  else checks.push({id: 'tunnel.dpd', step: 'tunnel', status: 'fail', detail: `CSTP DPD not answered${o.dpdError ? `: ${o.dpdError}` : ''}`})
  return checks
}

/**
 * openconnect takes the larger of X-CSTP-MTU and X-DTLS-MTU and aborts without either; the
 * difference to the base MTU is what the gateway reserves for headers (auth-and-cstp.md §3.5).
 */
function gradeMtu(cstp?: string, dtls?: string, base?: string): Check {
  if (!cstp && !dtls) return {id: 'tunnel.mtu', step: 'tunnel', status: 'fail', detail: 'no X-CSTP-MTU: openconnect aborts ("No MTU received")'}
  const mtu = Math.max(Number(cstp ?? 0), Number(dtls ?? 0))
  const overhead = base ? `, base ${base} less ${Number(base) - mtu} bytes of headers` : ''
  const parts = [cstp && `CSTP ${cstp}`, dtls && `DTLS ${dtls}`].filter(Boolean).join(', ')
  if (mtu < 1280) return {id: 'tunnel.mtu', step: 'tunnel', status: 'warn', detail: `MTU ${mtu} (${parts}${overhead}): below 1280, no IPv6 in the tunnel`}
  return {id: 'tunnel.mtu', step: 'tunnel', status: 'pass', detail: `MTU ${mtu} (${parts}${overhead})`}
}

function gradeDtlsOffer(exact: (n: string) => string[]): Check[] {
  const port = exact('X-DTLS-Port')[0]
  if (!port) return [{id: 'tunnel.dtls-offer', step: 'tunnel', status: 'warn', detail: 'no DTLS offered: all traffic runs TCP inside TCP'}]
  const sessionId = exact('X-DTLS-Session-ID')[0]
  const appId = exact('X-DTLS-App-ID')[0]
  const suite = exact('X-DTLS12-CipherSuite')[0] ?? exact('X-DTLS-CipherSuite')[0]
  if (sessionId !== undefined && !/^[0-9a-fA-F]{64}$/.test(sessionId)) {
    return [{id: 'tunnel.dtls-offer', step: 'tunnel', status: 'fail', affects: ['openconnect'], detail: 'X-DTLS-Session-ID is not 64 hex digits: openconnect refuses it'}]
  }

  const mode = appId ? 'with an App-ID' : sessionId ? 'by resumption of the Session-ID' : 'with no session id'
  return [{id: 'tunnel.dtls-offer', step: 'tunnel', status: suite ? 'pass' : 'warn', detail: `DTLS on UDP ${port}: ${suite ?? 'no cipher'} ${mode}`}]
}

export interface DtlsObservation {
  established: boolean
  cipher?: string
  handshakeMs?: number
  dpdRttMs?: number
  error?: string
}

/**
 * The DTLS channel the gateway offered: up, and DPD answered over it (dtls-and-datapath.md §9).
 * `family`: the client family whose CONNECT got this offer; the check then matters to it alone.
 */
export function gradeDtls(o: DtlsObservation, as: {family?: Family; affects?: Family[]; id?: string} = {}): Check {
  const id = as.id ?? 'tunnel.dtls'
  const base = {id, step: 'tunnel' as const, ...(as.affects ? {affects: as.affects} : {})}
  const who = as.family ? `as ${FAMILY_NAMES[as.family]}: ` : ''
  if (!o.established) {
    return {...base, status: 'fail', detail: `${who}DTLS offered but not established: ${o.error ?? 'unknown error'}`}
  }

  const up = `${who}${o.cipher} up in ${(o.handshakeMs ?? 0).toFixed(0)} ms`
  if (o.dpdRttMs === undefined) {
    return {...base, status: 'warn', detail: `${up}, but DPD over DTLS not answered: ${o.error ?? ''}`}
  }

  return {...base, status: 'pass', detail: `${up}, DPD answered in ${o.dpdRttMs.toFixed(1)} ms`}
}
