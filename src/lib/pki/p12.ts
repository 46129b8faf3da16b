/**
 * PKCS#12 bundles for client certificates, made by `openssl pkcs12 -export`: the pure-JS options
 * fail on EC keys (node-forge) or write BER that GnuTLS, and so openconnect, rejects (pkijs);
 * see ../shared/dependencies.md §6. The password goes to openssl through a pipe, never the command
 * line. The key goes through a 0600 file staged beside the outputs (openssl opens -inkey by name,
 * which a Node pipe cannot serve) and removed as soon as openssl exits.
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type {Writable} from 'node:stream'

import {openExclusive} from '../config/safe-write.js'
import {configError, isErrnoException} from '../errors.js'

const PASSWORD_FD = 3
/** 3DES with a SHA-1 MAC: what macOS Keychain and Windows before 10 1709 can import. */
const LEGACY_ARGS = ['-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']

export interface Pkcs12Options {
  certPem: string
  keyPem: string
  /** CA certificates to include after the leaf. */
  chainPem?: string
  /** The friendly name shown by certificate stores. */
  name: string
  password: string
  /** 3DES + SHA-1 MAC instead of openssl's default AES-256 + SHA-256. */
  legacy?: boolean
  /** Where the key is staged for openssl: the directory the key itself goes to. */
  workDir: string
}

/** Returns the DER bytes of a password-protected .p12 holding key, certificate and chain. */
export async function exportPkcs12(opts: Pkcs12Options): Promise<Buffer> {
  const keyPath = path.join(opts.workDir, `.p12-key.${randomBytes(6).toString('hex')}.tmp`)
  const fd = openExclusive(keyPath, 0o600)
  try {
    try {
      fs.writeFileSync(fd, opts.keyPem)
    } finally {
      fs.closeSync(fd)
    }

    return await runOpenssl(opts, keyPath)
  } finally {
    fs.rmSync(keyPath, {force: true})
  }
}

function runOpenssl(opts: Pkcs12Options, keyPath: string): Promise<Buffer> {
  const args = ['pkcs12', '-export', '-name', opts.name, '-inkey', keyPath]
  args.push('-passout', `fd:${PASSWORD_FD}`, ...(opts.legacy ? LEGACY_ARGS : []))

  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, {stdio: ['pipe', 'pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout!.on('data', (b: Buffer) => out.push(b))
    child.stderr!.on('data', (b: Buffer) => err.push(b))

    child.on('error', (e) => {
      const missing = isErrnoException(e) && e.code === 'ENOENT'
      const why = missing ? 'openssl is not installed (it writes the .p12 file)' : e.message
      reject(configError('CERT_P12_FAILED', `cannot make the .p12: ${why}`))
    })

    child.on('close', (code) => {
      if (code === 0 && out.length > 0) return resolve(Buffer.concat(out))
      const detail = Buffer.concat(err).toString().trim().split('\n')[0] || `exit code ${code}`
      reject(configError('CERT_P12_FAILED', `openssl pkcs12 failed: ${detail}`))
    })

    const feed: [number, string][] = [
      [PASSWORD_FD, `${opts.password}\n`],
      [0, opts.certPem + (opts.chainPem ?? '')],
    ]
    for (const [fd, data] of feed) {
      const pipe = child.stdio[fd] as Writable
      pipe.on('error', () => {}) // an early openssl exit is reported by 'close'
      pipe.end(data)
    }
  })
}
