/**
 * The certificate `serve` uses when it is given none: a CA and a server certificate in the state
 * directory, made on first start by the same code as `cert issue`, and reused afterwards.
 */
import {createPrivateKey, type KeyObject, X509Certificate} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {ensureStateDir} from '../config/state-dir.js'
import {errText} from '../config/safe-write.js'
import {configError, isErrnoException} from '../errors.js'
import type {Logger} from '../log/logger.js'
import {CERT_MODE, KEY_MODE, writeOutputs} from './files.js'
import {classifyHost, issueCa, issueServer, loadCa} from './issue.js'
import {pinSha256} from './pin.js'

/** A certificate this close to expiry is reissued at start. */
const RENEW_BEFORE_MS = 30 * 86_400_000

export interface ServerCert {
  certPem: string
  keyPem: string
  certPath: string
  keyPath: string
  /** `pin-sha256:…` of the server key, for openconnect's --servercert. */
  pin: string
}

/**
 * The hosts a default server certificate names: this host (when its name is a valid DNS name),
 * localhost, 127.0.0.1, and `extra`.
 */
export function defaultServerHosts(extra: string[] = []): string[] {
  const own = os.hostname()
  const hosts = isHost(own) ? [own.toLowerCase()] : []
  return [...new Set([...hosts, 'localhost', '127.0.0.1', ...extra])]
}

function isHost(name: string): boolean {
  try {
    classifyHost(name)
    return true
  } catch {
    return false
  }
}

function names(cert: X509Certificate, host: string): boolean {
  const san = classifyHost(host)
  return san.type === 'ip'
    ? cert.checkIP(san.value) !== undefined
    : cert.checkHost(san.value) !== undefined
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch (err) {
    if (isErrnoException(err) && err.code === 'ENOENT') return undefined
    throw configError('CERT_UNREADABLE', `cannot read ${file}: ${errText(err)}`)
  }
}

function parseExisting(certPem: string, keyPem: string, certPath: string, keyPath: string) {
  const hint = ['move it away to let serve make a new one']
  let cert: X509Certificate
  let key: KeyObject
  try {
    cert = new X509Certificate(certPem)
  } catch (err) {
    throw configError(
      'CERT_UNREADABLE',
      `${certPath} is not a certificate: ${(err as Error).message}`,
      hint,
    )
  }

  try {
    key = createPrivateKey(keyPem)
  } catch {
    throw configError('CERT_UNREADABLE', `${keyPath} is not a private key`, hint)
  }

  if (!cert.checkPrivateKey(key)) {
    throw configError('CERT_KEY_MISMATCH', `${keyPath} is not the key of ${certPath}`, hint)
  }

  return cert
}

/** Why an existing server certificate should be replaced, or undefined if it serves. */
function staleReason(cert: X509Certificate, hosts: string[]): string | undefined {
  if (new Date(cert.validTo).getTime() - Date.now() < RENEW_BEFORE_MS) {
    return 'expires within 30 days'
  }

  const missing = hosts.find((h) => !names(cert, h))
  return missing ? `does not name ${missing}` : undefined
}

/** True when the state directory's own CA signed `cert`: only such a certificate is replaced. */
function isIssuedByStateCa(dir: string, cert: X509Certificate): boolean {
  const caPem = readIfExists(path.join(dir, 'ca.pem'))
  if (caPem === undefined) return false
  try {
    const ca = new X509Certificate(caPem)
    return cert.checkIssued(ca) && cert.verify(ca.publicKey)
  } catch {
    return false
  }
}

/**
 * Returns the state directory's server certificate, making what is missing first: the CA
 * (`ca.pem`, `ca.key`) if absent, then `server.pem`/`server.key` signed by it. An existing server
 * certificate is reused unless it expires within 30 days or misses one of the hosts (this host
 * name, localhost, 127.0.0.1, plus `hosts`); then it is reissued from the same CA, but only if
 * that CA issued it: a certificate put there by the administrator is kept, with a warning. Files
 * that cannot be parsed, a key that does not match, or half a pair are a ConfigError, and are
 * never overwritten.
 */
export async function ensureServerCert(
  stateDir: string,
  log: Logger,
  hosts: string[] = [],
): Promise<ServerCert> {
  const dir = ensureStateDir(stateDir)
  const certPath = path.join(dir, 'server.pem')
  const keyPath = path.join(dir, 'server.key')
  const wanted = defaultServerHosts(hosts)

  const certPem = readIfExists(certPath)
  const keyPem = readIfExists(keyPath)
  if ((certPem === undefined) !== (keyPem === undefined)) {
    const [missing, present] = certPem === undefined ? [certPath, keyPath] : [keyPath, certPath]
    throw configError('CERT_BAD_PAIR', `${missing} is missing while ${present} exists`, [
      'restore it, or move the other file away to let serve make a new pair',
    ])
  }

  if (certPem !== undefined && keyPem !== undefined) {
    const cert = parseExisting(certPem, keyPem, certPath, keyPath)
    const reason = staleReason(cert, wanted)
    const existing = {certPem, keyPem, certPath, keyPath, pin: pinSha256(cert)}
    if (!reason) return existing
    if (!isIssuedByStateCa(dir, cert)) {
      log.warn('server certificate kept', {
        path: certPath,
        reason,
        why: 'not issued by the state CA',
      })
      return existing
    }

    log.info('server certificate reissued', {path: certPath, reason})
  }

  const ca = await ensureCa(dir, log)
  const issued = await issueServer(ca, {hosts: wanted})
  writeOutputs(
    [
      {path: certPath, data: issued.certPem, mode: CERT_MODE},
      {path: keyPath, data: issued.keyPem, mode: KEY_MODE},
    ],
    true,
  )
  log.info('server certificate created', {path: certPath, hosts: wanted, pin: issued.pin})
  return {certPem: issued.certPem, keyPem: issued.keyPem, certPath, keyPath, pin: issued.pin}
}

async function ensureCa(dir: string, log: Logger) {
  const certPath = path.join(dir, 'ca.pem')
  const keyPath = path.join(dir, 'ca.key')
  const certPem = readIfExists(certPath)
  const keyPem = readIfExists(keyPath)

  if (certPem !== undefined && keyPem !== undefined) return loadCa(certPem, keyPem, dir)
  if (certPem !== undefined || keyPem !== undefined) {
    const missing = certPem === undefined ? certPath : keyPath
    throw configError('CERT_BAD_CA', `${missing} is missing while its pair exists`, [
      'restore it, or move both ca.pem and ca.key away to make a new CA',
    ])
  }

  const issued = await issueCa({cn: `anygate CA ${os.hostname()}`.slice(0, 64)})
  writeOutputs(
    [
      {path: certPath, data: issued.certPem, mode: CERT_MODE},
      {path: keyPath, data: issued.keyPem, mode: KEY_MODE},
    ],
    false,
  )
  log.info('ca created', {path: certPath, pin: issued.pin})
  return loadCa(issued.certPem, issued.keyPem, dir)
}
