import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import fs from 'node:fs'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {createLogger} from '../../../src/lib/log/logger.js'
import {defaultServerHosts, ensureServerCert} from '../../../src/lib/pki/server-cert.js'

let root: string
before(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'anygate-servercert-'))
})
after(() => fs.rmSync(root, {recursive: true, force: true}))

function capture() {
  const lines: {msg: string; [k: string]: unknown}[] = []
  return {lines, log: createLogger({format: 'json', sink: (l) => lines.push(JSON.parse(l))})}
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777
}

describe('ensureServerCert', () => {
  it('makes a CA and a server certificate on first start, then reuses them', async () => {
    const state = join(root, 'first', 'state')
    const {log, lines} = capture()
    const made = await ensureServerCert(state, log)

    assert.deepEqual(fs.readdirSync(state).sort(), ['ca.key', 'ca.pem', 'server.key', 'server.pem'])
    assert.equal(mode(state), 0o700)
    assert.equal(mode(join(state, 'ca.key')), 0o600)
    assert.equal(mode(join(state, 'server.key')), 0o600)
    assert.equal(made.certPath, join(state, 'server.pem'))
    assert.equal(made.certPem, fs.readFileSync(made.certPath, 'utf8'))
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['ca created', 'server certificate created'],
    )

    const out = execFileSync('openssl', [
      'verify',
      '-purpose',
      'sslserver',
      '-CAfile',
      join(state, 'ca.pem'),
      made.certPath,
    ])
    assert.match(out.toString(), /OK/)
    const cert = new X509Certificate(made.certPem)
    for (const h of ['localhost', hostname().toLowerCase()]) assert.ok(cert.checkHost(h), h)
    assert.ok(cert.checkIP('127.0.0.1'))

    const again = capture()
    const reused = await ensureServerCert(state, again.log)
    assert.equal(reused.pin, made.pin)
    assert.equal(reused.certPem, made.certPem)
    assert.deepEqual(again.lines, [])
  })

  it('reissues from the same CA when a requested host is missing', async () => {
    const state = join(root, 'hosts')
    const first = await ensureServerCert(state, capture().log)
    const caBefore = fs.readFileSync(join(state, 'ca.pem'), 'utf8')

    const {log, lines} = capture()
    const second = await ensureServerCert(state, log, ['vpn.example.com', '198.18.7.1'])
    assert.notEqual(second.pin, first.pin)
    assert.equal(fs.readFileSync(join(state, 'ca.pem'), 'utf8'), caBefore)
    assert.match(String(lines[0].reason), /does not name vpn.example.com/)
    const cert = new X509Certificate(second.certPem)
    assert.ok(cert.checkHost('vpn.example.com'))
    assert.ok(cert.checkIP('198.18.7.1'))

    const third = await ensureServerCert(state, capture().log, ['198.18.7.1'])
    assert.equal(third.pin, second.pin, 'a subset of the named hosts reuses the certificate')
  })

  it('refuses to overwrite a damaged server.pem or a CA missing its key', async () => {
    const state = join(root, 'damaged')
    await ensureServerCert(state, capture().log)
    fs.writeFileSync(join(state, 'server.pem'), 'not a certificate\n')
    await assert.rejects(
      ensureServerCert(state, capture().log),
      (e: {code?: string}) => e.code === 'CERT_UNREADABLE',
    )
    assert.equal(fs.readFileSync(join(state, 'server.pem'), 'utf8'), 'not a certificate\n')

    fs.rmSync(join(state, 'server.pem'))
    fs.rmSync(join(state, 'server.key'))
    fs.rmSync(join(state, 'ca.key'))
    await assert.rejects(
      ensureServerCert(state, capture().log),
      /ca\.key is missing while its pair exists/,
    )
  })

  it('keeps a certificate the administrator put there, warning about what it lacks', async () => {
    const state = join(root, 'foreign')
    fs.mkdirSync(state)
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(state, 'server.key'),
        '-out',
        join(state, 'server.pem'),
        '-days',
        '30',
        '-subj',
        '/CN=vpn.example.com',
        '-addext',
        'subjectAltName=DNS:vpn.example.com',
      ],
      {stdio: 'ignore'},
    )
    const before = fs.readFileSync(join(state, 'server.pem'), 'utf8')

    const {log, lines} = capture()
    const kept = await ensureServerCert(state, log)
    assert.equal(kept.certPem, before)
    assert.equal(fs.readFileSync(join(state, 'server.pem'), 'utf8'), before)
    assert.deepEqual(fs.readdirSync(state).sort(), ['server.key', 'server.pem'])
    assert.equal(lines[0].msg, 'server certificate kept')
    assert.match(String(lines[0].reason), /expires within 30 days|does not name/)
  })

  it('refuses half a pair or a key that does not match, touching nothing', async () => {
    const state = join(root, 'pairs')
    const made = await ensureServerCert(state, capture().log)
    const other = await ensureServerCert(join(root, 'pairs-other'), capture().log)
    fs.writeFileSync(join(state, 'server.key'), other.keyPem)
    await assert.rejects(
      ensureServerCert(state, capture().log),
      /server\.key is not the key of .*server\.pem/,
    )

    fs.rmSync(join(state, 'server.key'))
    await assert.rejects(
      ensureServerCert(state, capture().log),
      /server\.key is missing while .*server\.pem exists/,
    )
    assert.equal(fs.readFileSync(join(state, 'server.pem'), 'utf8'), made.certPem)
  })

  it('names this host only when its name is a valid DNS name', () => {
    const hosts = defaultServerHosts(['198.18.0.1'])
    assert.deepEqual(hosts.slice(-3), ['localhost', '127.0.0.1', '198.18.0.1'])
  })
})
