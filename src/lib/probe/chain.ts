/**
 * The certificate chain a gateway presents, as the probe lists it: one entry per certificate,
 * leaf first, each with its validity, pin and whether the gateway itself sent it.
 *
 * Node's `getPeerCertificate(true)` links the certificates the gateway sent that chain up from
 * the leaf (in issuing order, not in the order sent; sent certificates that chain to nothing are
 * left out), then adds issuers from the local trust store (`--cafile` or the system's) until a
 * self-signed one. Which entries came from the gateway is told by a second connection whose
 * trust store is empty, so that nothing can be added: its chain is what the gateway sent.
 */
import {X509Certificate} from 'node:crypto'
import type {DetailedPeerCertificate, TLSSocket} from 'node:tls'

import {pinSha256} from '../pki/pin.js'
import type {CertValidity} from './checks.js'

/** Longer chains are cut here; real ones have 2-4 certificates. */
const MAX_CHAIN = 10

export interface ChainEntry {
  /** One line, RDNs as the certificate orders them: `O=Example, CN=vpn.example.com`. */
  subject: string
  issuer: string
  /** ISO 8601. */
  validFrom: string
  validTo: string
  /** `pin-sha256:…` of the public key, as openconnect's --servercert takes it. */
  pin: string
  /** Issued and signed by its own key: a root. */
  isSelfSigned: boolean
  /** basicConstraints CA:TRUE. */
  isCa: boolean
  /**
   * Sent by the gateway in its handshake, as opposed to added from the local trust store.
   * Absent when it could not be told: no connection with an empty trust store succeeded.
   */
  sentByGateway?: boolean
}

// Not yet: certificates the gateway sent that chain to nothing, and the order it sent them in,
// are not seen (Node gives neither), so a stray or misordered certificate goes unreported.
/** The certificates of `socket`'s peer chain, leaf first, as Node linked them. */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = []
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
  const seen = new Set<string>()
  while (c?.raw && out.length < MAX_CHAIN && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256)
    out.push(new X509Certificate(c.raw))
    // A root's issuerCertificate is itself: the set ends the walk there.
    c = c.issuerCertificate
  }

  return out
}

/** The chain as reported; `sent`: SHA-256 fingerprints of what the gateway sent, if known. */
export function describeChain(chain: X509Certificate[], sent?: Set<string>): ChainEntry[] {
  return chain.map((x) => ({
    subject: oneLine(x.subject),
    issuer: oneLine(x.issuer),
    validFrom: new Date(x.validFrom).toISOString(),
    validTo: new Date(x.validTo).toISOString(),
    pin: pinSha256(x),
    isSelfSigned: isSelfSigned(x),
    isCa: x.ca,
    ...(sent ? {sentByGateway: sent.has(x.fingerprint256)} : {}),
  }))
}

/** What the grading needs: each certificate's validity, named so a detail can point at it. */
export function chainValidity(chain: ChainEntry[]): CertValidity[] {
  return chain.map((c, i) => ({
    name: `${chainRole(c, i)} ${shortName(c.subject)}`,
    validFrom: new Date(c.validFrom),
    validTo: new Date(c.validTo),
  }))
}

/** `leaf`, `intermediate` or `root`, by position and self-signature. */
export function chainRole(c: ChainEntry, index: number): string {
  if (index === 0) return 'leaf'
  return c.isSelfSigned ? 'root' : 'intermediate'
}

/** A distinguished name as one line (Node gives one RDN per line). */
export function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ')
}

/** The CN's value, quoted, when there is one; else the whole name. */
function shortName(dn: string): string {
  const cn = /(?:^|, )CN=([^,]*)/.exec(dn)?.[1]
  return `"${cn ?? dn}"`
}

function isSelfSigned(x: X509Certificate): boolean {
  try {
    return x.checkIssued(x) && x.verify(x.publicKey)
  } catch {
    return false
  }
}
