/**
 * Issuing the certificates an AnyConnect deployment needs: a CA, server certificates (SAN for
 * every host, serverAuth) and client certificates (CN = user, clientAuth), each with a fresh key.
 *
 * Leaves follow what Cisco Secure Client on Apple platforms enforces for TLS server certificates:
 * SHA-256 signatures, names in the SAN (not only the CN), serverAuth EKU, RSA of 2048+ bits and at
 * most 825 days of validity.
 */
import {randomBytes, X509Certificate} from 'node:crypto'
import net from 'node:net'

import {configError} from '../errors.js'
import {
  algorithmFor,
  generateKeyPair,
  importSigningKey,
  type KeySpec,
  privateKeyPem,
  type SigningAlgorithm,
} from './keys.js'
import {pinSha256} from './pin.js'
import {x509} from './x509.js'

export const CA_DAYS = 3650
export const LEAF_DAYS = 825
export const MAX_DAYS = 36_500
const DAY_MS = 86_400_000
/** notBefore is set this far back, so a client whose clock is a little behind accepts it. */
const BACKDATE_MS = 5 * 60_000
const SERIAL_BYTES = 16
/** RFC 5280 ub-common-name. */
const MAX_CN_LEN = 64
const MAX_DNS_NAME_LEN = 253

export interface IssuedCert {
  certPem: string
  keyPem: string
  /** `pin-sha256:…` of the new key. */
  pin: string
  /** Set when notAfter was cut to the CA's own expiry. */
  clampedToCa?: boolean
}

/** A CA loaded for signing. */
export interface CaMaterial {
  certPem: string
  cert: x509.X509Certificate
  signingKey: CryptoKey
  algorithm: SigningAlgorithm
}

export type SanEntry = {type: 'dns' | 'ip'; value: string}

/** Sorts a host into a DNS or IP SAN; throws `CERT_BAD_HOST` for anything else. */
export function classifyHost(host: string): SanEntry {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (net.isIP(bare)) return {type: 'ip', value: bare}

  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/
  const labels = host.replace(/\.$/, '').split('.')
  const wildcardOk = labels[0] === '*' && labels.length > 2
  const valid =
    host.length <= MAX_DNS_NAME_LEN &&
    labels.every((l, i) => label.test(l) || (i === 0 && wildcardOk))
  if (!valid)
    throw configError(
      'CERT_BAD_HOST',
      `host ${JSON.stringify(host)} is neither a DNS name nor an IP address`,
    )
  return {type: 'dns', value: host.replace(/\.$/, '').toLowerCase()}
}

/** Checks a client certificate name, which is also its file name; throws `CERT_BAD_NAME`. */
export function validateClientName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@+-]*$/.test(name) || name.length > MAX_CN_LEN) {
    throw configError(
      'CERT_BAD_NAME',
      `client name ${JSON.stringify(name)} must be 1-${MAX_CN_LEN} letters, digits or . _ @ + - and start with a letter or digit`,
    )
  }
}

export function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw configError('CERT_BAD_DAYS', `validity of ${days} days is outside 1-${MAX_DAYS}`)
  }
}

function randomSerial(): string {
  const bytes = randomBytes(SERIAL_BYTES)
  bytes[0] = (bytes[0] & 0x7f) | 0x01 // positive and never a leading zero byte
  return bytes.toString('hex')
}

function validity(
  days: number,
  notAfterLimit?: Date,
): {notBefore: Date; notAfter: Date; clamped: boolean} {
  checkDays(days)
  const now = Date.now()
  const notAfter = new Date(now + days * DAY_MS)
  const clamped = notAfterLimit !== undefined && notAfter > notAfterLimit
  return {
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: clamped ? notAfterLimit : notAfter,
    clamped,
  }
}

function leafKeyUsage(spec: KeySpec): x509.KeyUsagesExtension {
  const flags =
    spec.type === 'rsa'
      ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : x509.KeyUsageFlags.digitalSignature
  return new x509.KeyUsagesExtension(flags, true)
}

/** Makes a self-signed CA (pathlen 0: it signs leaves only). */
export async function issueCa(opts: {
  cn: string
  days?: number
  key?: KeySpec
}): Promise<IssuedCert> {
  if (opts.cn === '' || opts.cn.length > MAX_CN_LEN) {
    throw configError('CERT_BAD_NAME', `CA name must be 1-${MAX_CN_LEN} characters`)
  }

  const spec = opts.key ?? {type: 'ec'}
  const keys = await generateKeyPair(spec)
  const {notBefore, notAfter} = validity(opts.days ?? CA_DAYS)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{CN: [opts.cn]}],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: algorithmFor(spec),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })

  return finish(cert, keys.privateKey)
}

/**
 * Loads a CA for signing from its PEM certificate and key; throws `CERT_BAD_CA` when the
 * certificate is not a CA or the key is not its key.
 */
export async function loadCa(certPem: string, keyPem: string, source: string): Promise<CaMaterial> {
  let nodeCert: X509Certificate
  try {
    nodeCert = new X509Certificate(certPem)
  } catch (err) {
    throw configError(
      'CERT_BAD_CA',
      `${source}/ca.pem is not a certificate: ${(err as Error).message}`,
    )
  }

  if (!nodeCert.ca) throw configError('CERT_BAD_CA', `${source}/ca.pem is not a CA certificate`)
  const {key, algorithm, keyObject} = await importSigningKey(keyPem, `${source}/ca.key`)
  if (!nodeCert.checkPrivateKey(keyObject)) {
    throw configError('CERT_BAD_CA', `${source}/ca.key is not the key of ${source}/ca.pem`)
  }

  if (new Date(nodeCert.validTo).getTime() <= Date.now()) {
    throw configError(
      'CERT_BAD_CA',
      `${source}/ca.pem expired on ${new Date(nodeCert.validTo).toISOString()}`,
    )
  }

  return {certPem, cert: new x509.X509Certificate(nodeCert.raw), signingKey: key, algorithm}
}

async function issueLeaf(
  ca: CaMaterial,
  opts: {cn: string; days: number; key: KeySpec; extensions: x509.Extension[]},
): Promise<IssuedCert> {
  const keys = await generateKeyPair(opts.key)
  const {notBefore, notAfter, clamped} = validity(opts.days, ca.cert.notAfter)
  const caSki = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey)

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{CN: [opts.cn]}],
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ca.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      leafKeyUsage(opts.key),
      ...opts.extensions,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      aki,
    ],
  })

  return {...(await finish(cert, keys.privateKey)), clampedToCa: clamped || undefined}
}

/** A server certificate: CN = first host, a SAN for every host, serverAuth. */
export async function issueServer(
  ca: CaMaterial,
  opts: {hosts: string[]; days?: number; key?: KeySpec},
): Promise<IssuedCert> {
  if (opts.hosts.length === 0)
    throw configError('CERT_BAD_HOST', 'a server certificate needs at least one host')
  const sans = dedupe(opts.hosts.map(classifyHost))
  if (sans[0].value.length > MAX_CN_LEN) {
    throw configError(
      'CERT_BAD_HOST',
      `first host ${sans[0].value} is longer than ${MAX_CN_LEN} characters`,
    )
  }

  return issueLeaf(ca, {
    cn: sans[0].value,
    days: opts.days ?? LEAF_DAYS,
    key: opts.key ?? {type: 'ec'},
    extensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(sans),
    ],
  })
}

/** A client certificate: CN = name, clientAuth. */
export async function issueClient(
  ca: CaMaterial,
  opts: {name: string; days?: number; key?: KeySpec},
): Promise<IssuedCert> {
  validateClientName(opts.name)
  return issueLeaf(ca, {
    cn: opts.name,
    days: opts.days ?? LEAF_DAYS,
    key: opts.key ?? {type: 'ec'},
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  })
}

function dedupe(sans: SanEntry[]): SanEntry[] {
  const seen = new Set<string>()
  return sans.filter((s) => !seen.has(`${s.type}:${s.value}`) && seen.add(`${s.type}:${s.value}`))
}

async function finish(cert: x509.X509Certificate, privateKey: CryptoKey): Promise<IssuedCert> {
  const certPem = cert.toString('pem') + '\n'
  return {certPem, keyPem: await privateKeyPem(privateKey), pin: pinSha256(certPem)}
}
