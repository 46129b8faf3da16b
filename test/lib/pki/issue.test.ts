import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {createHash, generateKeyPairSync, X509Certificate} from 'node:crypto'
import fs from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {CERT_MODE, KEY_MODE, readCaDir, writeOutputs} from '../../../src/lib/pki/files.js'
import {describeCertificate, parseCertificates} from '../../../src/lib/pki/inspect.js'
import {
  type CaMaterial,
  classifyHost,
  issueCa,
  issueClient,
  issueServer,
  type IssuedCert,
  loadCa,
} from '../../../src/lib/pki/issue.js'
import {exportPkcs12} from '../../../src/lib/pki/p12.js'
import {pinSha256} from '../../../src/lib/pki/pin.js'

let dir: string
let ecCa: IssuedCert
let ecCaMaterial: CaMaterial

before(async () => {
  dir = fs.mkdtempSync(join(tmpdir(), 'anygate-pki-'))
  ecCa = await issueCa({cn: 'Test CA'})
  ecCaMaterial = await loadCa(ecCa.certPem, ecCa.keyPem, dir)
  fs.writeFileSync(join(dir, 'ca.pem'), ecCa.certPem)
})
after(() => fs.rmSync(dir, {recursive: true, force: true}))

function save(name: string, text: string): string {
  const file = join(dir, name)
  fs.writeFileSync(file, text)
  return file
}

/** `openssl verify` against the CA with a purpose; returns openssl's output, throws on failure. */
function opensslVerify(caPem: string, certPem: string, purpose: 'sslserver' | 'sslclient'): string {
  const ca = save(`ca-${Math.random()}.pem`, caPem)
  const cert = save(`leaf-${Math.random()}.pem`, certPem)
  const args = ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', ca, cert]
  return execFileSync('openssl', args, {stdio: 'pipe'}).toString()
}

function opensslText(certPem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], {input: certPem}).toString()
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as {code?: string}).code
  }
  return undefined
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: {code?: string}) => err.code === code)
}

describe('issueCa', () => {
  it('makes an ECDSA P-256 CA limited to signing end certificates', () => {
    const text = opensslText(ecCa.certPem)
    assert.match(text, /Subject: CN = Test CA/)
    assert.match(text, /Issuer: CN = Test CA/)
    assert.match(text, /ASN1 OID: prime256v1/)
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/)
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/)
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/)
    assert.match(ecCa.keyPem, /^-----BEGIN PRIVATE KEY-----/)
  })

  it('makes an RSA CA when asked', async () => {
    const ca = await issueCa({cn: 'RSA CA', key: {type: 'rsa', bits: 2048}})
    assert.match(opensslText(ca.certPem), /Public-Key: \(2048 bit\)[\s\S]*sha256WithRSAEncryption/)
  })

  it('refuses RSA sizes it does not issue', async () => {
    await rejectsWith(issueCa({cn: 'x', key: {type: 'rsa', bits: 1024}}), 'CERT_BAD_KEY_SPEC')
  })
})

describe('issueServer', () => {
  it('names every host in the SAN, with serverAuth, and openssl verifies the chain', async () => {
    const srv = await issueServer(ecCaMaterial, {
      hosts: ['vpn.example.com', '198.18.0.1', '::1', 'vpn.example.com'],
    })
    assert.match(opensslVerify(ecCa.certPem, srv.certPem, 'sslserver'), /: OK/)
    const text = opensslText(srv.certPem)
    assert.match(text, /Subject: CN = vpn.example.com/)
    assert.match(text, /DNS:vpn.example.com, IP Address:198.18.0.1, IP Address:0:0:0:0:0:0:0:1\n/)
    assert.match(text, /Extended Key Usage: \n\s+TLS Web Server Authentication\n/)
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/)
    assert.match(text, /Authority Key Identifier/)
    assert.throws(() => opensslVerify(ecCa.certPem, srv.certPem, 'sslclient'))
  })

  it('signs an RSA server key with an EC CA, and an EC key with an RSA CA', async () => {
    const rsaLeaf = await issueServer(ecCaMaterial, {
      hosts: ['a.example'],
      key: {type: 'rsa', bits: 2048},
    })
    assert.match(opensslVerify(ecCa.certPem, rsaLeaf.certPem, 'sslserver'), /OK/)
    assert.match(opensslText(rsaLeaf.certPem), /Digital Signature, Key Encipherment/)

    const rsaCa = await issueCa({cn: 'RSA CA', key: {type: 'rsa', bits: 2048}})
    const ca = await loadCa(rsaCa.certPem, rsaCa.keyPem, dir)
    const ecLeaf = await issueServer(ca, {hosts: ['b.example']})
    assert.match(opensslVerify(rsaCa.certPem, ecLeaf.certPem, 'sslserver'), /OK/)
  })

  it('signs with a CA made by openssl in PKCS#1 and SEC1 key formats', async () => {
    for (const keyArgs of [
      ['-newkey', 'rsa:2048'],
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    ]) {
      const keyFile = join(dir, 'ext-ca.key')
      const certFile = join(dir, 'ext-ca.pem')
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          ...keyArgs,
          '-nodes',
          '-keyout',
          keyFile,
          '-out',
          certFile,
          '-days',
          '30',
          '-subj',
          '/CN=External CA',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        {stdio: 'ignore'},
      )
      const traditional = execFileSync('openssl', [
        'pkey',
        '-in',
        keyFile,
        '-traditional',
      ]).toString()
      const certPem = fs.readFileSync(certFile, 'utf8')
      const ca = await loadCa(certPem, traditional, dir)
      const leaf = await issueServer(ca, {hosts: ['c.example']})
      assert.match(opensslVerify(certPem, leaf.certPem, 'sslserver'), /OK/)
    }
  })

  it("caps the validity at the CA's own expiry", async () => {
    const shortCa = await issueCa({cn: 'Short CA', days: 10})
    const ca = await loadCa(shortCa.certPem, shortCa.keyPem, dir)
    const leaf = await issueServer(ca, {hosts: ['d.example'], days: 825})
    assert.equal(leaf.clampedToCa, true)
    assert.equal(
      new X509Certificate(leaf.certPem).validTo,
      new X509Certificate(shortCa.certPem).validTo,
    )
  })

  it('refuses a host that is neither a DNS name nor an IP address', async () => {
    for (const bad of ['bad host', 'under_score.example', '-lead.example', 'a..b', '']) {
      await rejectsWith(issueServer(ecCaMaterial, {hosts: [bad]}), 'CERT_BAD_HOST')
    }
    await rejectsWith(issueServer(ecCaMaterial, {hosts: []}), 'CERT_BAD_HOST')
  })
})

describe('classifyHost', () => {
  it('sorts names and addresses', () => {
    assert.deepEqual(classifyHost('VPN.Example.com.'), {type: 'dns', value: 'vpn.example.com'})
    assert.deepEqual(classifyHost('*.example.com'), {type: 'dns', value: '*.example.com'})
    assert.deepEqual(classifyHost('[2001:db8::1]'), {type: 'ip', value: '2001:db8::1'})
    assert.deepEqual(classifyHost('198.18.0.1'), {type: 'ip', value: '198.18.0.1'})
    assert.equal(
      codeOf(() => classifyHost('*.com')),
      'CERT_BAD_HOST',
    )
  })
})

describe('issueClient', () => {
  it('makes CN = name with clientAuth, which openssl verifies for client use only', async () => {
    const cli = await issueClient(ecCaMaterial, {name: 'alice'})
    assert.match(opensslVerify(ecCa.certPem, cli.certPem, 'sslclient'), /OK/)
    assert.throws(() => opensslVerify(ecCa.certPem, cli.certPem, 'sslserver'))
    const text = opensslText(cli.certPem)
    assert.match(text, /Subject: CN = alice\n/)
    assert.match(text, /TLS Web Client Authentication/)
  })

  it('refuses names that are not safe as a CN and a file name', async () => {
    for (const bad of ['../x', '', 'a b', '.hidden', 'x'.repeat(65)]) {
      await rejectsWith(issueClient(ecCaMaterial, {name: bad}), 'CERT_BAD_NAME')
    }
  })
})

describe('loadCa', () => {
  it("refuses a key that is not the CA's, a leaf as CA, and an encrypted key", async () => {
    const other = await issueCa({cn: 'Other'})
    await rejectsWith(loadCa(ecCa.certPem, other.keyPem, dir), 'CERT_BAD_CA')

    const leaf = await issueServer(ecCaMaterial, {hosts: ['e.example']})
    await rejectsWith(loadCa(leaf.certPem, leaf.keyPem, dir), 'CERT_BAD_CA')

    const {privateKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
    const encrypted = privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'x',
    })
    await rejectsWith(loadCa(ecCa.certPem, encrypted as string, dir), 'CERT_BAD_KEY')
    await rejectsWith(loadCa('not a cert', ecCa.keyPem, dir), 'CERT_BAD_CA')
  })

  it('reads a CA directory, and names what is missing', async () => {
    const caDir = fs.mkdtempSync(join(dir, 'cadir-'))
    await assert.rejects(readCaDir(caDir), /cannot read .*ca\.pem: no such file/)
    await rejectsWith(readCaDir(join(dir, 'nope')), 'CERT_DIR_MISSING')
    fs.writeFileSync(join(caDir, 'ca.pem'), ecCa.certPem)
    fs.writeFileSync(join(caDir, 'ca.key'), ecCa.keyPem)
    const ca = await readCaDir(caDir)
    assert.equal(ca.cert.subject, 'CN=Test CA')
  })
})

describe('pinSha256', () => {
  it("is openconnect's pin-sha256 of the SPKI, as openssl computes it", async () => {
    const srv = await issueServer(ecCaMaterial, {hosts: ['f.example']})
    const spki = execFileSync(
      'sh',
      ['-c', 'openssl x509 -pubkey -noout | openssl pkey -pubin -outform der'],
      {
        input: srv.certPem,
      },
    )
    const expected = `pin-sha256:${createHash('sha256').update(spki).digest('base64')}`
    assert.equal(srv.pin, expected)
    assert.equal(pinSha256(srv.certPem), expected)
    assert.equal(pinSha256(new X509Certificate(srv.certPem).raw), expected)
  })
})

describe('describeCertificate', () => {
  it('reports subject, issuer, SANs, validity, usage and pin', async () => {
    const srv = await issueServer(ecCaMaterial, {hosts: ['g.example', '198.18.1.1'], days: 30})
    const [cert] = parseCertificates(Buffer.from(srv.certPem + ecCa.certPem), 'chain.pem')
    const info = describeCertificate(cert)
    assert.equal(info.subject, 'CN=g.example')
    assert.equal(info.issuer, 'CN=Test CA')
    assert.deepEqual(info.sans, ['DNS:g.example', 'IP:198.18.1.1'])
    assert.deepEqual(info.extendedKeyUsage, ['serverAuth'])
    assert.equal(info.isCa, false)
    assert.equal(info.keyType, 'EC P-256')
    assert.ok(info.daysLeft === 29 || info.daysLeft === 30, String(info.daysLeft))
    assert.equal(info.pin, srv.pin)
  })

  it('reads DER, counts a chain, and refuses what is not a certificate', () => {
    const der = new X509Certificate(ecCa.certPem).raw
    assert.equal(parseCertificates(der, 'ca.der').length, 1)
    assert.equal(
      parseCertificates(Buffer.from(ecCa.certPem + ecCa.keyPem + ecCa.certPem), 'x').length,
      2,
    )
    assert.equal(
      codeOf(() => parseCertificates(Buffer.from(ecCa.keyPem), 'key.pem')),
      'CERT_NOT_A_CERTIFICATE',
    )
    assert.equal(
      codeOf(() => parseCertificates(Buffer.from('hello'), 'x')),
      'CERT_NOT_A_CERTIFICATE',
    )
  })
})

describe('writeOutputs', () => {
  it('writes keys 0600 and certificates 0644, and never replaces without force', async () => {
    const out = fs.mkdtempSync(join(dir, 'out-'))
    const files = [
      {path: join(out, 'x.key'), data: 'KEY', mode: KEY_MODE},
      {path: join(out, 'x.pem'), data: 'CERT', mode: CERT_MODE},
    ]
    const umask = process.umask(0o022)
    try {
      writeOutputs(files, false)
    } finally {
      process.umask(umask)
    }
    assert.equal(fs.statSync(files[0].path).mode & 0o777, 0o600)
    assert.equal(fs.statSync(files[1].path).mode & 0o777, 0o644)

    assert.throws(
      () => writeOutputs([{...files[0], data: 'NEW'}], false),
      (e: {code?: string}) => e.code === 'CERT_FILE_EXISTS',
    )
    assert.equal(fs.readFileSync(files[0].path, 'utf8'), 'KEY')
    writeOutputs([{...files[0], data: 'NEW'}], true)
    assert.equal(fs.readFileSync(files[0].path, 'utf8'), 'NEW')
    assert.equal(fs.statSync(files[0].path).mode & 0o777, 0o600)
    assert.deepEqual(fs.readdirSync(out).sort(), ['x.key', 'x.pem'])
  })
})

describe('exportPkcs12', () => {
  it('makes a .p12 that openssl reads with the password and refuses without it', async () => {
    const cli = await issueClient(ecCaMaterial, {name: 'bob'})
    for (const legacy of [false, true]) {
      const p12 = await exportPkcs12({
        ...cli,
        chainPem: ecCa.certPem,
        name: 'bob',
        password: 'p12 pass',
        legacy,
        workDir: dir,
      })
      const file = save(`bob-${legacy}.p12`, '')
      fs.writeFileSync(file, p12)

      const info = spawnSync(
        'openssl',
        ['pkcs12', '-info', '-in', file, '-passin', 'pass:p12 pass', '-nodes'],
        {encoding: 'utf8'},
      )
      assert.equal(info.status, 0, info.stderr)
      assert.match(info.stderr, legacy ? /pbeWithSHA1And3-KeyTripleDES-CBC/ : /AES-256-CBC/)
      assert.match(info.stdout, /friendlyName: bob/)
      assert.match(info.stdout, /subject=CN = bob/)
      assert.match(info.stdout, /subject=CN = Test CA/)
      assert.match(info.stdout, /BEGIN PRIVATE KEY/)

      const wrong = spawnSync('openssl', [
        'pkcs12',
        '-info',
        '-in',
        file,
        '-passin',
        'pass:wrong',
        '-noout',
      ])
      assert.notEqual(wrong.status, 0)
    }
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.startsWith('.p12-key')),
      [],
      'staged key removed',
    )
  })

  it('reports an openssl failure as one line', async () => {
    await assert.rejects(
      exportPkcs12({
        certPem: 'garbage',
        keyPem: ecCa.keyPem,
        name: 'x',
        password: 'p',
        workDir: dir,
      }),
      (err: {code?: string; message: string}) =>
        err.code === 'CERT_P12_FAILED' && !err.message.includes('\n'),
    )
  })
})
