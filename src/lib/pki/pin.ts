/**
 * Certificate pins in the form openconnect's `--servercert` takes: `pin-sha256:` followed by the
 * base64 SHA-256 of the certificate's SubjectPublicKeyInfo (DER). The pin names the key, so a
 * certificate reissued for the same key keeps it.
 */
import {createHash, X509Certificate} from 'node:crypto'

export const PIN_PREFIX = 'pin-sha256:'

/** `pin-sha256:<base64>` of a PEM or DER certificate's public key. */
export function pinSha256(cert: string | Buffer | X509Certificate): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert)
  const spki = x.publicKey.export({type: 'spki', format: 'der'})
  return PIN_PREFIX + createHash('sha256').update(spki).digest('base64')
}
