/**
 * The DTLS half of the CONNECT exchange (dtls-and-datapath.md §2): read the client's X-DTLS*
 * headers, choose a mode and suite within what the config allows, and write the response
 * headers. The choice follows the client's order: PSK-NEGOTIATE when offered, else the first
 * allowed name of X-DTLS12-CipherSuite, else of X-DTLS-CipherSuite (§2.3).
 */
import {DtlsVersion} from './constants.js'
import type {DtlsAgreement} from './server.js'
import {DTLS12_NAMES, DTLS_NAMES, PSK_NEGOTIATE, PSK_SUITE_IDS, SUITES, type CipherSuite, recordOverhead} from './suites.js'

type Headers = Record<string, string | string[] | undefined>

const one = (h: Headers, name: string): string | undefined => {
  const v = h[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

const names = (v: string | undefined) => (v ?? '').split(':').map((s) => s.trim()).filter(Boolean)

export interface DtlsOfferOptions {
  /** Names the config allows (suites.ts ALL_DTLS_CIPHER_NAMES). */
  allowed: ReadonlySet<string>
  /** 32 fresh random bytes: the App-ID or Session-ID of this CONNECT. */
  id: Buffer
  /** The PSK exported from the CSTP TLS session (§3.1); called only for PSK mode. */
  exportPsk: () => Buffer
  /** The CSTP TLS cipher name (Node's), to estimate the PSK overhead as ocserv (§9.5). */
  cstpCipher: string
  port: number
  dpd: number
  keepalive: number
  rekeyTime: number
  baseMtu: number
  remoteIsIpv6: boolean
}

export interface DtlsOffer {
  agreement: DtlsAgreement
  /** Response headers, in order, without the MTU ones. */
  headers: [string, string | number][]
  /** Largest IP packet that fits one record in one datagram (X-DTLS-MTU). */
  mtu: number
  /** What the client asked for, e.g. `PSK-NEGOTIATE` or `X-DTLS12-CipherSuite: AES256-SHA`. */
  choice: string
  /** Set for resumption; PSK negotiates the suite in the handshake. */
  suite?: CipherSuite
  /** What `mtu` was computed from, to compute it again for the suite a PSK handshake picks. */
  link: {baseMtu: number; remoteIsIpv6: boolean}
}

const UDP_HEADER = 8

/** Data MTU for a suite (§9.5): link − IP − UDP − record overhead − the type byte. */
export function dtlsDataMtu(baseMtu: number, remoteIsIpv6: boolean, suite: CipherSuite): number {
  return baseMtu - (remoteIsIpv6 ? 40 : 20) - UDP_HEADER - recordOverhead(suite) - 1
}

/**
 * The PSK suite the CONNECT answer's MTU assumes, before the handshake picks one: the CSTP
 * cipher's family, as ocserv estimates (§9.5). The handshake follows the client's order, so the
 * link recomputes its MTU once it knows (DtlsLink.promote), and openconnect lowers its own.
 */
function pskEstimateSuite(cstpCipher: string): CipherSuite {
  if (/CHACHA20/i.test(cstpCipher)) return SUITES[0xccab]
  if (/GCM/i.test(cstpCipher)) return SUITES[0x00a9]
  return SUITES[0x008d]
}

/** The offer for this CONNECT, or undefined when the client asked for nothing we allow. */
export function negotiateDtls(h: Headers, o: DtlsOfferOptions): DtlsOffer | undefined {
  const dtlsList = names(one(h, 'X-DTLS-CipherSuite'))
  const dtls12List = names(one(h, 'X-DTLS12-CipherSuite'))
  const common: [string, string | number][] = [
    ['X-DTLS-DPD', o.dpd],
    ['X-DTLS-Port', o.port],
    // Rekey by new tunnel: CSTP reconnects and the new CONNECT brings a new id (§9.7 option a)
    ['X-DTLS-Rekey-Time', o.rekeyTime],
    ['X-DTLS-Rekey-Method', 'new-tunnel'],
    ['X-DTLS-Keepalive', o.keepalive],
  ]

  // Mode A
  const hasPsk = dtlsList.includes(PSK_NEGOTIATE) || dtls12List.includes(PSK_NEGOTIATE)
  if (hasPsk && o.allowed.has(PSK_NEGOTIATE)) {
    return {
      agreement: {mode: 'psk', id: o.id, psk: o.exportPsk(), suites: PSK_SUITE_IDS},
      headers: [...common, ['X-DTLS-App-ID', o.id.toString('hex')], ['X-DTLS-CipherSuite', PSK_NEGOTIATE]],
      mtu: dtlsDataMtu(o.baseMtu, o.remoteIsIpv6, pskEstimateSuite(o.cstpCipher)),
      choice: PSK_NEGOTIATE,
      link: {baseMtu: o.baseMtu, remoteIsIpv6: o.remoteIsIpv6},
    }
  }

  // Mode B/C: the master secret is the client's, 48 bytes as 96 hex digits (§2.1)
  const secretHex = one(h, 'X-DTLS-Master-Secret')?.trim() ?? ''
  if (!/^[0-9a-fA-F]{96}/.test(secretHex)) return undefined
  const masterSecret = Buffer.from(secretHex.slice(0, 96), 'hex')

  const pick = (): {header: string; name: string; suite: number; version: DtlsVersion} | undefined => {
    for (const name of dtls12List) {
      if (o.allowed.has(name) && name in DTLS12_NAMES) {
        return {header: 'X-DTLS12-CipherSuite', name, suite: DTLS12_NAMES[name], version: DtlsVersion.Dtls12}
      }
    }

    for (const name of dtlsList) {
      const entry = DTLS_NAMES[name]
      if (o.allowed.has(name) && entry) return {header: 'X-DTLS-CipherSuite', name, ...entry}
    }

    return undefined
  }

  const chosen = pick()
  if (!chosen) return undefined
  const suite = SUITES[chosen.suite]
  const mtu = dtlsDataMtu(o.baseMtu, o.remoteIsIpv6, suite)
  return {
    agreement: {mode: 'resume', id: o.id, masterSecret, suite: chosen.suite, version: chosen.version},
    headers: [
      ...common,
      ['X-DTLS-Session-ID', o.id.toString('hex')],
      [chosen.header, chosen.name],
      ['X-DTLS-MTU', mtu],
    ],
    mtu,
    choice: `${chosen.header}: ${chosen.name}`,
    suite,
    link: {baseMtu: o.baseMtu, remoteIsIpv6: o.remoteIsIpv6},
  }
}
