/**
 * The CONNECT exchange (auth-and-cstp.md §3): what the client asks for, the MTU arithmetic,
 * and the `HTTP/1.1 200 CONNECTED` header block. openconnect matches header names
 * case-sensitively and needs `X-CSTP-MTU` (§3.3), so names are spelled exactly as below.
 */
import {CSTP_HEADER_LEN} from './constants.js'
import {type Cidr, bigIntToAddress, cstpRoute, dottedMask, isDefaultRoute} from '../config/ip.js'

export const CISCO_COPYRIGHT = 'Copyright (c) 2004 Cisco Systems, Inc.'

/** What the client's CONNECT headers ask for. */
export interface TunnelRequest {
  userAgent: string
  hostname?: string
  baseMtu?: number
  clientMtu?: number
  wantsIpv4: boolean
  wantsIpv6: boolean
  fullIpv6: boolean
  isAnyConnect: boolean
}

type Headers = Record<string, string | string[] | undefined>

const one = (h: Headers, name: string): string | undefined => {
  const v = h[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

const int = (v: string | undefined): number | undefined => {
  if (!v || !/^\d{1,5}$/.test(v.trim())) return undefined
  return Number(v)
}

/** Reads the client's CONNECT headers (Node lower-cases names). Bad values are ignored. */
export function parseTunnelRequest(h: Headers): TunnelRequest {
  const ua = one(h, 'User-Agent') ?? ''
  const types = (one(h, 'X-CSTP-Address-Type') ?? 'IPv6,IPv4').toLowerCase()
  const hostname = one(h, 'X-CSTP-Hostname')
  return {
    userAgent: ua,
    hostname: hostname && /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(hostname) ? hostname : undefined,
    baseMtu: int(one(h, 'X-CSTP-Base-MTU')),
    clientMtu: int(one(h, 'X-CSTP-MTU')),
    wantsIpv4: types.includes('ipv4'),
    wantsIpv6: types.includes('ipv6'),
    fullIpv6: one(h, 'X-CSTP-Full-IPv6-Capability') === 'true',
    isAnyConnect: isCiscoClient(ua),
  }
}

/**
 * Cisco's own clients, by User-Agent (auth-and-cstp.md §2.3). openconnect 9.20+ says
 * "AnyConnect-compatible OpenConnect…", which must be checked before the bare "AnyConnect".
 */
export function isCiscoClient(ua: string): boolean {
  const s = ua.toLowerCase()
  if (s.startsWith('anyconnect-compatible openconnect') || s.startsWith('open anyconnect')) {
    return false
  }

  return s.startsWith('cisco anyconnect') || s.startsWith('anyconnect') || s.startsWith('cisco secure client')
}

/** Bytes the TLS channel adds around one CSTP frame in one record. */
export interface TlsOverhead {
  /** Record header + explicit nonce + tag (+ inner content type on TLS 1.3). */
  recordBytes: number
}

const IPV4_HEADER = 20
const IPV6_HEADER = 40
const TCP_HEADER = 20
const MIN_MTU = 576

/** TLS record overhead for the negotiated protocol and cipher (RFC 5246 §6.2, RFC 8446 §5.2). */
export function tlsRecordOverhead(protocol: string | null, cipher: string): number {
  const TLS_RECORD_HEADER = 5
  const AEAD_TAG = 16
  if (protocol === 'TLSv1.3') return TLS_RECORD_HEADER + 1 + AEAD_TAG
  if (/GCM|CCM/i.test(cipher)) return TLS_RECORD_HEADER + 8 + AEAD_TAG
  if (/CHACHA20/i.test(cipher)) return TLS_RECORD_HEADER + AEAD_TAG
  // CBC: explicit IV 16 + MAC up to 48 + padding up to 16
  return TLS_RECORD_HEADER + 16 + 48 + 16
}

/**
 * The link MTU we settle on and the tunnel MTU. Base = min(our MTU, the client's Base-MTU);
 * ocserv falls back to X-CSTP-MTU + overhead for old clients that send only that (§3.5).
 * The tunnel MTU leaves room for one inner packet, its CSTP header and its TLS record to fit
 * one TCP segment of the client's address family.
 *
 * Not yet: the kernel's TCP path MTU (TCP_INFO) is not read, as ocserv does; a lower path MTU
 * than the client reports only costs TCP segmentation, not loss.
 */
export function computeMtu(opts: {
  ourMtu: number
  req: TunnelRequest
  remoteIsIpv6: boolean
  tlsOverhead: number
}): {baseMtu: number; mtu: number} {
  const ipHeader = opts.remoteIsIpv6 ? IPV6_HEADER : IPV4_HEADER
  const overhead = ipHeader + TCP_HEADER + opts.tlsOverhead + CSTP_HEADER_LEN
  let base = opts.ourMtu
  if (opts.req.baseMtu) base = Math.min(base, opts.req.baseMtu)
  else if (opts.req.clientMtu) base = Math.min(base, opts.req.clientMtu + overhead)
  base = Math.max(base, MIN_MTU + overhead)
  return {baseMtu: base, mtu: base - overhead}
}

export interface TunnelGrant {
  serverName: string
  hostname?: string
  ipv4?: {address: string; pool: Cidr}
  ipv6?: {address: string; pool: Cidr}
  dns: string[]
  routes: Cidr[]
  noRoutes: Cidr[]
  defaultDomain?: string
  banner?: string
  dpd: number
  keepalive: number
  idleTimeout: number
  sessionTimeout: number
  sessionRemaining: number
  disconnectedTimeout: number
  rekeyTime: number
  baseMtu: number
  mtu: number
  /** The X-DTLS-* headers of an agreed DTLS channel (dtls/negotiate.ts), sent before the MTUs. */
  dtlsHeaders?: [string, string | number][]
}

/** The full `HTTP/1.1 200 CONNECTED` response head, ending in the empty line. */
export function buildConnectResponse(req: TunnelRequest, g: TunnelGrant): string {
  const h: [string, string | number][] = [
    ['X-CSTP-Version', 1],
    ['X-CSTP-Server-Name', g.serverName],
    ['X-CSTP-Protocol', CISCO_COPYRIGHT],
  ]
  if (g.hostname) h.push(['X-CSTP-Hostname', g.hostname])
  h.push(['X-CSTP-DPD', g.dpd])
  if (g.defaultDomain) h.push(['X-CSTP-Default-Domain', g.defaultDomain])

  // Addresses (§3.6)
  if (g.ipv4) {
    h.push(['X-CSTP-Address', g.ipv4.address], ['X-CSTP-Netmask', dottedMask(g.ipv4.pool.prefix)])
  }

  const v6 = g.ipv6 && req.fullIpv6 ? g.ipv6 : undefined
  if (v6) h.push(['X-CSTP-Address-IP6', `${v6.address}/${v6.pool.prefix}`])
  if (g.ipv6 && !req.fullIpv6) {
    // The network, not the host, before the prefix: what ocserv sends a client without full
    // IPv6 capability (auth-and-cstp.md §3.6), proven with Cisco clients; openconnect always
    // claims the capability and takes X-CSTP-Address-IP6 instead.
    const net6 = bigIntToAddress(g.ipv6.pool.network, 6)
    h.push(['X-CSTP-Address', g.ipv6.address], ['X-CSTP-Netmask', `${net6}/${g.ipv6.pool.prefix}`])
  }

  // DNS: Cisco clients take IPv6 servers only in X-CSTP-DNS-IP6 (§3.4)
  for (const d of g.dns) {
    const isV6 = d.includes(':')
    if (isV6 && !v6) continue
    h.push([isV6 && req.isAnyConnect ? 'X-CSTP-DNS-IP6' : 'X-CSTP-DNS', d])
  }

  // Routes: none, or a default route, means all traffic (§3.3 behaviour notes)
  const isFullTunnel = g.routes.length === 0 || g.routes.some(isDefaultRoute)
  if (!isFullTunnel) {
    for (const r of g.routes) {
      if (r.family === 4 && g.ipv4) h.push(['X-CSTP-Split-Include', cstpRoute(r)])
      if (r.family === 6 && v6) h.push(['X-CSTP-Split-Include-IP6', cstpRoute(r)])
    }
  }

  for (const r of g.noRoutes) {
    if (r.family === 4) h.push(['X-CSTP-Split-Exclude', cstpRoute(r)])
    if (r.family === 6 && v6) h.push(['X-CSTP-Split-Exclude-IP6', cstpRoute(r)])
  }

  const none = (n: number) => (n > 0 ? n : 'none')
  h.push(
    ['X-CSTP-Tunnel-All-DNS', String(isFullTunnel)],
    ['X-CSTP-Client-Bypass-Protocol', String(!g.ipv6)],
    ['X-CSTP-Keepalive', g.keepalive],
    ['X-CSTP-Idle-Timeout', none(g.idleTimeout)],
    ['X-CSTP-Smartcard-Removal-Disconnect', 'true'],
    // new-tunnel: the client reconnects with its cookie; never `none`, which Secure Client
    // 5.1 is reported to reject (auth-and-cstp.md §3.3, UNCONFIRMED there).
    ['X-CSTP-Rekey-Time', g.rekeyTime],
    ['X-CSTP-Rekey-Method', 'new-tunnel'],
    ['X-CSTP-Session-Timeout', none(g.sessionTimeout)],
    ['X-CSTP-Session-Timeout-Remaining', none(g.sessionRemaining)],
    // UNCONFIRMED meaning (§3.3); we send how long the session outlives a dropped tunnel.
    ['X-CSTP-Disconnected-Timeout', g.disconnectedTimeout],
    ['X-CSTP-Keep', 'true'],
    ['X-CSTP-TCP-Keepalive', 'true'],
    ['X-CSTP-License', 'accept'],
  )
  if (g.banner) h.push(['X-CSTP-Banner', g.banner.replace(/[\r\n]+/g, ' ')])
  if (g.dtlsHeaders) h.push(...g.dtlsHeaders)
  h.push(['X-CSTP-Base-MTU', g.baseMtu], ['X-CSTP-MTU', g.mtu])

  const lines = h.map(([k, v]) => `${k}: ${v}`)
  return ['HTTP/1.1 200 CONNECTED', ...lines, '', ''].join('\r\n')
}
