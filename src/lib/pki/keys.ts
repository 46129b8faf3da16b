/**
 * Key pairs for issued certificates and the signing key of a CA read from disk.
 *
 * New keys are ECDSA P-256 unless RSA is asked for. A CA key on disk may be PKCS#8, PKCS#1 or
 * SEC1 PEM (ocserv's certtool writes the last two); EC P-256/384/521 and RSA sign.
 */
import {createPrivateKey, KeyObject} from 'node:crypto'

import {configError} from '../errors.js'
import {subtle} from './x509.js'

export type KeySpec = {type: 'ec'} | {type: 'rsa'; bits: number}

export const RSA_BITS = [2048, 3072, 4096] as const
const RSA_PUBLIC_EXPONENT = new Uint8Array([1, 0, 1])

const EC_CURVES: Record<string, {namedCurve: string; hash: string}> = {
  prime256v1: {namedCurve: 'P-256', hash: 'SHA-256'},
  secp384r1: {namedCurve: 'P-384', hash: 'SHA-384'},
  secp521r1: {namedCurve: 'P-521', hash: 'SHA-512'},
}

/** A WebCrypto algorithm for signing, with the hash it signs with. */
export type SigningAlgorithm = (EcKeyImportParams | RsaHashedImportParams) & {hash: string}

/** Throws `CERT_BAD_KEY_SPEC` for an RSA size we do not issue. */
export function checkKeySpec(spec: KeySpec): void {
  if (spec.type === 'rsa' && !(RSA_BITS as readonly number[]).includes(spec.bits)) {
    throw configError(
      'CERT_BAD_KEY_SPEC',
      `RSA key size ${spec.bits} is not one of ${RSA_BITS.join(', ')}`,
    )
  }
}

export function algorithmFor(spec: KeySpec): SigningAlgorithm {
  if (spec.type === 'ec') return {name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256'}
  return {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256'}
}

export async function generateKeyPair(spec: KeySpec): Promise<CryptoKeyPair> {
  checkKeySpec(spec)
  const algorithm =
    spec.type === 'ec'
      ? algorithmFor(spec)
      : {...algorithmFor(spec), modulusLength: spec.bits, publicExponent: RSA_PUBLIC_EXPONENT}
  return (await subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair
}

/** The private key as unencrypted PKCS#8 PEM, which openssl, GnuTLS and ocserv all read. */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return toPem('PRIVATE KEY', Buffer.from(await subtle.exportKey('pkcs8', key)))
}

export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}

/** Imports a PEM private key for signing; throws `CERT_BAD_KEY` for what cannot sign here. */
export async function importSigningKey(
  pem: string,
  source: string,
): Promise<{key: CryptoKey; algorithm: SigningAlgorithm; keyObject: KeyObject}> {
  let keyObject: KeyObject
  try {
    keyObject = createPrivateKey(pem)
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(pem)
    // Not yet: encrypted CA keys (a passphrase prompt), so such a key must be decrypted first.
    const why = encrypted
      ? 'is encrypted, which is not supported'
      : `is not a private key (${(err as Error).message})`
    throw configError('CERT_BAD_KEY', `${source} ${why}`)
  }

  const algorithm = signingAlgorithmOf(keyObject, source)
  const der = keyObject.export({type: 'pkcs8', format: 'der'})
  const key = await subtle.importKey('pkcs8', der, algorithm, false, ['sign'])
  return {key, algorithm, keyObject}
}

function signingAlgorithmOf(keyObject: KeyObject, source: string): SigningAlgorithm {
  if (keyObject.asymmetricKeyType === 'rsa') return {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256'}

  const curve = EC_CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? '']
  if (keyObject.asymmetricKeyType === 'ec' && curve) return {name: 'ECDSA', ...curve}

  const what = keyObject.asymmetricKeyDetails?.namedCurve ?? keyObject.asymmetricKeyType
  throw configError(
    'CERT_BAD_KEY',
    `${source} is a ${what} key; a CA key must be RSA or EC P-256/384/521`,
  )
}
