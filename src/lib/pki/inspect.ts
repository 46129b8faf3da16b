/**
 * Reading certificates back: what `cert show` prints and what `ensureServerCert` checks before
 * reusing a certificate.
 */
import {X509Certificate} from 'node:crypto'
import fs from 'node:fs'

import {ConfigError, configError} from '../errors.js'
import {errText} from '../config/safe-write.js'
import {pinSha256} from './pin.js'
import {x509} from './x509.js'

const DAY_MS = 86_400_000
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g
/** Certificates and chains are small; a larger "certificate" file is a mistake. */
const MAX_CERT_FILE_BYTES = 1024 * 1024

const EKU_NAMES: Record<string, string> = {
  [x509.ExtendedKeyUsage.serverAuth]: 'serverAuth',
  [x509.ExtendedKeyUsage.clientAuth]: 'clientAuth',
  [x509.ExtendedKeyUsage.codeSigning]: 'codeSigning',
  [x509.ExtendedKeyUsage.emailProtection]: 'emailProtection',
  [x509.ExtendedKeyUsage.timeStamping]: 'timeStamping',
  [x509.ExtendedKeyUsage.ocspSigning]: 'ocspSigning',
  '2.5.29.37.0': 'any',
}

export interface CertificateInfo {
  subject: string
  issuer: string
  serialNumber: string
  /** Subject alternative names as `DNS:name` / `IP:address` / `email:…` strings. */
  sans: string[]
  notBefore: string
  notAfter: string
  /** Whole days until notAfter; negative once expired. */
  daysLeft: number
  isCa: boolean
  keyType: string
  extendedKeyUsage: string[]
  /** `pin-sha256:…`, as openconnect's --servercert takes it. */
  pin: string
  sha256Fingerprint: string
}

/** Every certificate in a PEM text, or the one DER certificate; throws `CERT_NOT_A_CERTIFICATE`. */
export function parseCertificates(data: Buffer, source: string): X509Certificate[] {
  const text = data.toString('latin1')
  const blocks = text.match(PEM_CERT)

  try {
    if (blocks) return blocks.map((b) => new X509Certificate(b))
    if (!text.includes('-----BEGIN')) return [new X509Certificate(data)]
  } catch (err) {
    throw configError(
      'CERT_NOT_A_CERTIFICATE',
      `${source} holds a damaged certificate: ${(err as Error).message}`,
    )
  }

  throw configError('CERT_NOT_A_CERTIFICATE', `${source} holds no certificate`)
}

/** Reads a certificate file (PEM, possibly a chain, or DER); throws a ConfigError. */
export function readCertificateFile(file: string): X509Certificate[] {
  let data: Buffer
  try {
    const st = fs.statSync(file)
    if (!st.isFile()) throw configError('CERT_UNREADABLE', `${file} is not a regular file`)
    if (st.size > MAX_CERT_FILE_BYTES)
      throw configError('CERT_UNREADABLE', `${file} is larger than 1 MiB`)
    data = fs.readFileSync(file)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw configError('CERT_UNREADABLE', `cannot read ${file}: ${errText(err)}`)
  }

  return parseCertificates(data, file)
}

export function describeCertificate(cert: X509Certificate, now = new Date()): CertificateInfo {
  const parsed = new x509.X509Certificate(cert.raw)
  const san = parsed.getExtension(x509.SubjectAlternativeNameExtension)
  const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension)
  const notAfter = new Date(cert.validTo)

  return {
    subject: parsed.subject,
    issuer: parsed.issuer,
    serialNumber: parsed.serialNumber,
    sans: san?.names.items.map((n) => `${sanLabel(n.type)}:${n.value}`) ?? [],
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
    isCa: cert.ca,
    keyType: keyTypeOf(cert),
    extendedKeyUsage: Array.from(eku?.usages ?? [], (u) => EKU_NAMES[String(u)] ?? String(u)),
    pin: pinSha256(cert),
    sha256Fingerprint: cert.fingerprint256,
  }
}

function sanLabel(type: string): string {
  const labels: Record<string, string> = {dns: 'DNS', ip: 'IP', email: 'email', url: 'URI'}
  return labels[type] ?? type
}

function keyTypeOf(cert: X509Certificate): string {
  const key = cert.publicKey
  const details = key.asymmetricKeyDetails
  if (key.asymmetricKeyType === 'rsa') return `RSA ${details?.modulusLength ?? '?'}`
  if (key.asymmetricKeyType === 'ec') {
    const names: Record<string, string> = {
      prime256v1: 'P-256',
      secp384r1: 'P-384',
      secp521r1: 'P-521',
    }
    return `EC ${names[details?.namedCurve ?? ''] ?? details?.namedCurve ?? '?'}`
  }

  return key.asymmetricKeyType ?? 'unknown'
}
