import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {pinSha256} from '../../src/lib/pki/pin.js'
import {assertCleanFailure, ensureBuilt, runCli} from './cli.js'

let root: string
let pki: string
before(async () => {
  ensureBuilt()
  root = fs.mkdtempSync(join(tmpdir(), 'anygate-certcmd-'))
  pki = join(root, 'pki')
  fs.mkdirSync(pki)
  const r = await runCli(['cert', 'issue', 'ca', '--out', pki, '--cn', 'Command Test CA'])
  assert.equal(r.code, 0, r.stderr)
})
after(() => fs.rmSync(root, {recursive: true, force: true}))

const mode = (file: string) => fs.statSync(file).mode & 0o777
const pinLine = (stdout: string) => stdout.match(/^pin\s+(pin-sha256:\S+)$/m)?.[1]

function verify(purpose: string, cert: string): string {
  return execFileSync(
    'openssl',
    ['verify', '-purpose', purpose, '-CAfile', join(pki, 'ca.pem'), cert],
    {stdio: 'pipe'},
  ).toString()
}

describe('anygate cert issue ca', () => {
  it('writes ca.pem and ca.key (0600) and prints the pin', async () => {
    const out = fs.mkdtempSync(join(root, 'ca-'))
    const r = await runCli(['cert', 'issue', 'ca', '--out', out, '--days', '30', '--rsa', '2048'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(mode(join(out, 'ca.key')), 0o600)
    assert.equal(pinLine(r.stdout), pinSha256(fs.readFileSync(join(out, 'ca.pem'), 'utf8')))
    const text = execFileSync('openssl', [
      'x509',
      '-in',
      join(out, 'ca.pem'),
      '-noout',
      '-text',
    ]).toString()
    assert.match(text, /CA:TRUE/)
    assert.match(text, /Public-Key: \(2048 bit\)/)
  })

  it('never replaces existing files without --force', async () => {
    const before = fs.readFileSync(join(pki, 'ca.key'), 'utf8')
    const r = await runCli(['cert', 'issue', 'ca', '--out', pki])
    assertCleanFailure(r, /^Error: .*ca\.pem, .*ca\.key already exist\n\s+pass --force/)
    assert.equal(fs.readFileSync(join(pki, 'ca.key'), 'utf8'), before)

    const copy = fs.mkdtempSync(join(root, 'force-'))
    fs.copyFileSync(join(pki, 'ca.pem'), join(copy, 'ca.pem'))
    const forced = await runCli(['cert', 'issue', 'ca', '--out', copy, '--force'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.notEqual(
      fs.readFileSync(join(copy, 'ca.pem'), 'utf8'),
      fs.readFileSync(join(pki, 'ca.pem'), 'utf8'),
    )
  })

  it('fails clearly for a missing --out directory or bad numbers', async () => {
    assertCleanFailure(
      await runCli(['cert', 'issue', 'ca', '--out', join(root, 'nope')]),
      /--out directory .*nope does not exist/,
    )
    assertCleanFailure(
      await runCli(['cert', 'issue', 'ca', '--out', root, '--rsa', '1024']),
      /RSA key size 1024 is not one of 2048, 3072, 4096/,
    )
    assertCleanFailure(
      await runCli(['cert', 'issue', 'ca', '--out', root, '--days', '0']),
      /Expected an integer greater than or equal to 1/,
    )
    assertCleanFailure(await runCli(['cert', 'issue', 'ca']), /Missing required flag out/)
  })
})

describe('anygate cert issue server', () => {
  it('writes a server certificate for every host that openssl verifies, with --json', async () => {
    const r = await runCli([
      'cert',
      'issue',
      'server',
      '--ca-dir',
      pki,
      '--out',
      pki,
      '--host',
      'vpn.example.com,198.18.0.1',
      '--host',
      '2001:db8::1',
      '--json',
    ])
    assert.equal(r.code, 0, r.stderr)
    const data = JSON.parse(r.stdout)
    const cert = join(pki, 'server.pem')
    assert.deepEqual(data.files, [cert, join(pki, 'server.key')])
    assert.equal(data.subject, 'CN=vpn.example.com')
    assert.equal(data.pin, pinSha256(fs.readFileSync(cert, 'utf8')))
    assert.equal(mode(join(pki, 'server.key')), 0o600)
    assert.match(verify('sslserver', cert), /OK/)
    const text = execFileSync('openssl', [
      'x509',
      '-in',
      cert,
      '-noout',
      '-ext',
      'subjectAltName,extendedKeyUsage',
    ]).toString()
    assert.match(
      text,
      /DNS:vpn.example.com, IP Address:198.18.0.1, IP Address:2001:DB8:0:0:0:0:0:1/,
    )
    assert.match(text, /TLS Web Server Authentication/)
  })

  it('fails clearly for a missing CA directory, a bad host, or no host', async () => {
    const out = fs.mkdtempSync(join(root, 'srv-'))
    assertCleanFailure(
      await runCli([
        'cert',
        'issue',
        'server',
        '--ca-dir',
        join(root, 'nope'),
        '--out',
        out,
        '--host',
        'a.example',
      ]),
      /--ca-dir directory .*nope does not exist/,
    )
    assertCleanFailure(
      await runCli([
        'cert',
        'issue',
        'server',
        '--ca-dir',
        out,
        '--out',
        out,
        '--host',
        'a.example',
      ]),
      /cannot read .*ca\.pem: no such file or directory\n\s+make a CA first/,
    )
    assertCleanFailure(
      await runCli([
        'cert',
        'issue',
        'server',
        '--ca-dir',
        pki,
        '--out',
        out,
        '--host',
        'bad host',
      ]),
      /host "bad host" is neither a DNS name nor an IP address/,
    )
    assertCleanFailure(
      await runCli(['cert', 'issue', 'server', '--ca-dir', pki, '--out', out]),
      /Missing required flag host/,
    )
    assert.deepEqual(fs.readdirSync(out), [])
  })
})

describe('anygate cert issue client', () => {
  it('writes NAME.pem, NAME.key and NAME.p12 that openssl reads with the password', async () => {
    const out = fs.mkdtempSync(join(root, 'cli-'))
    const r = await runCli(
      ['cert', 'issue', 'client', 'alice', '--ca-dir', pki, '--out', out, '--p12-password-stdin'],
      {input: 'p12 secret\n'},
    )
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(fs.readdirSync(out).sort(), ['alice.key', 'alice.p12', 'alice.pem'])
    assert.equal(mode(join(out, 'alice.key')), 0o600)
    assert.equal(mode(join(out, 'alice.p12')), 0o600)
    assert.equal(pinLine(r.stdout), pinSha256(fs.readFileSync(join(out, 'alice.pem'), 'utf8')))
    assert.match(verify('sslclient', join(out, 'alice.pem')), /OK/)

    const info = spawnSync(
      'openssl',
      ['pkcs12', '-info', '-in', join(out, 'alice.p12'), '-passin', 'pass:p12 secret', '-nokeys'],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(info.status, 0, info.stderr)
    assert.match(info.stdout, /subject=CN = alice/)
    assert.match(info.stdout, /subject=CN = Command Test CA/)
    const wrong = spawnSync('openssl', [
      'pkcs12',
      '-info',
      '-in',
      join(out, 'alice.p12'),
      '-passin',
      'pass:nope',
      '-noout',
    ])
    assert.notEqual(wrong.status, 0)
  })

  it('writes a legacy (3DES) .p12 when asked', async () => {
    const out = fs.mkdtempSync(join(root, 'legacy-'))
    const r = await runCli(
      [
        'cert',
        'issue',
        'client',
        'bob',
        '--ca-dir',
        pki,
        '--out',
        out,
        '--p12-password-stdin',
        '--legacy-p12',
        '--rsa',
        '2048',
      ],
      {input: 'pw\n'},
    )
    assert.equal(r.code, 0, r.stderr)
    const info = spawnSync(
      'openssl',
      ['pkcs12', '-info', '-in', join(out, 'bob.p12'), '-passin', 'pass:pw', '-noout'],
      {encoding: 'utf8'},
    )
    assert.match(info.stderr, /pbeWithSHA1And3-KeyTripleDES-CBC/)
  })

  it('fails without a terminal or --p12-password-stdin, writing nothing', async () => {
    const out = fs.mkdtempSync(join(root, 'nopw-'))
    const r = await runCli(['cert', 'issue', 'client', 'carol', '--ca-dir', pki, '--out', out], {
      silentPipe: true,
      timeoutMs: 10_000,
    })
    assertCleanFailure(
      r,
      /no terminal to ask for the .p12 password for carol\n\s+pass it on standard input with --p12-password-stdin/,
    )
    assertCleanFailure(
      await runCli(['cert', 'issue', 'client', '../evil', '--ca-dir', pki, '--out', out], {
        input: 'pw\n',
      }),
      /client name "..\/evil" must be/,
    )
    assert.deepEqual(fs.readdirSync(out), [])
  })
})

describe('anygate cert show', () => {
  it('prints subject, issuer, names, validity and pin', async () => {
    const cert = join(pki, 'server.pem')
    const r = await runCli(['cert', 'show', cert])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^subject\s+CN=vpn.example.com$/m)
    assert.match(r.stdout, /^issuer\s+CN=Command Test CA$/m)
    assert.match(r.stdout, /^names\s+DNS:vpn.example.com, IP:198.18.0.1, IP:2001:db8::1$/m)
    assert.match(r.stdout, /^valid\s+\S+ to \S+ \(82[45] days left\)$/m)
    assert.equal(pinLine(r.stdout), pinSha256(fs.readFileSync(cert, 'utf8')))
  })

  it('prints JSON with --json', async () => {
    const r = await runCli(['cert', 'show', join(pki, 'ca.pem'), '--json'])
    assert.equal(r.code, 0, r.stderr)
    const data = JSON.parse(r.stdout)
    assert.equal(data.subject, 'CN=Command Test CA')
    assert.equal(data.isCa, true)
    assert.equal(data.certificatesInFile, 1)
    assert.deepEqual(data.sans, [])
    assert.match(data.pin, /^pin-sha256:[A-Za-z0-9+/]{43}=$/)
  })

  it('fails clearly for a missing file, a key file and a directory', async () => {
    assertCleanFailure(
      await runCli(['cert', 'show', join(root, 'nope.pem')]),
      /cannot read .*nope\.pem: no such file/,
    )
    assertCleanFailure(
      await runCli(['cert', 'show', join(pki, 'ca.key')]),
      /ca\.key holds no certificate/,
    )
    assertCleanFailure(await runCli(['cert', 'show', pki]), /is not a regular file/)
  })
})
