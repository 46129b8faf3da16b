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

export interface TlsObservation {
  protocol: string | null
  cipher: string
  versions: {tls12: boolean; tls13: boolean}
  validTo: Date
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
  const days = (o.validTo.getTime() - o.now.getTime()) / 86_400_000
  checks.push({id: 'tls.protocol', step: 'tls', status: 'pass', detail: `${o.protocol} with ${o.cipher}`})

  // Some AnyConnect builds failed on TLS 1.3; ocserv's cisco-client-compat turns it off (§2.17).
  if (!o.versions.tls12) {
    checks.push({id: 'tls.versions', step: 'tls', status: 'warn', affects: ['cisco'], detail: 'TLS 1.2 refused: older AnyConnect clients need it'})
  } else {
    const list = ['TLS 1.2', ...(o.versions.tls13 ? ['TLS 1.3'] : [])].join(' and ')
    checks.push({id: 'tls.versions', step: 'tls', status: 'pass', detail: `${list} accepted`})
  }

  if (days < 0) checks.push({id: 'tls.expiry', step: 'tls', status: 'fail', detail: `certificate expired on ${o.validTo.toISOString()}`})
  else if (days < 30) checks.push({id: 'tls.expiry', step: 'tls', status: 'warn', detail: `certificate expires in ${Math.floor(days)} days`})
  else checks.push({id: 'tls.expiry', step: 'tls', status: 'pass', detail: `valid until ${o.validTo.toISOString().slice(0, 10)}`})

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
  if (o.initStatus !== 200 || !o.isXml) {
    const why = o.initStatus === 404 ? '404: the gateway may want a group URL path' : `status ${o.initStatus}${o.isXml ? '' : ', not aggregate-auth XML'}`
    checks.push({id: 'auth.init', step: 'auth', status: 'fail', detail: `init refused: ${why}`})
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
  checks.push(
    o.legacyGetWorks
      ? {id: 'auth.legacy', step: 'auth', status: 'pass', detail: 'GET / serves the form (legacy clients)'}
      : {id: 'auth.legacy', step: 'auth', status: 'warn', affects: ['openconnect'], detail: 'GET / gives no form: openconnect --no-xmlpost and old clients cannot log in'},
  )
  return checks
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
