/**
 * The probe's certificate chain over real TLS: a Node server presents root → intermediate →
 * leaf certificates made here with `@peculiar/x509` (through `src/lib/pki`), and `probeGateway`
 * must list them leaf first, tell what the server sent from what `--cafile` added, and grade
 * the expiry of each.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import https from 'node:https'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {algorithmFor, generateKeyPair, privateKeyPem} from '../../../src/lib/pki/keys.js'
import {pinSha256} from '../../../src/lib/pki/pin.js'
import {x509} from '../../../src/lib/pki/x509.js'
import {type ProbeReport, probeGateway} from '../../../src/lib/probe/run.js'

const DAY_MS = 86_400_000

interface Issued {
  name: string
  pem: string
  keyPem: string
  keys: CryptoKeyPair
}

/** A certificate valid from `fromDays` to `toDays` from now, signed by `issuer` (or itself). */
async function issue(name: string, o: {issuer?: Issued; isCa: boolean; fromDays?: number; toDays: number}): Promise<Issued> {
  const keys = await generateKeyPair({type: 'ec'})
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(o.isCa, undefined, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ]
  if (o.isCa) extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true))
  else extensions.push(new x509.SubjectAlternativeNameExtension([{type: 'ip', value: '127.0.0.1'}]))

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(8).toString('hex')}`,
    subject: `CN=${name}`,
    issuer: `CN=${o.issuer?.name ?? name}`,
    notBefore: new Date(Date.now() + (o.fromDays ?? -1) * DAY_MS),
    notAfter: new Date(Date.now() + o.toDays * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: (o.issuer?.keys ?? keys).privateKey,
    signingAlgorithm: algorithmFor({type: 'ec'}),
    extensions,
  })
  return {name, pem: `${cert.toString('pem')}\n`, keyPem: await privateKeyPem(keys.privateKey), keys}
}

/** An HTTPS server presenting `chain` that answers every request 404, so the probe stops after TLS. */
async function serve(chain: Issued[], key: Issued): Promise<{url: string; close: () => void}> {
  const server = https.createServer({cert: chain.map((c) => c.pem).join(''), key: key.keyPem}, (_req, res) => {
    res.writeHead(404, {'Content-Length': '0'}).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close()}
}

async function probeChain(chain: Issued[], cafile?: string): Promise<ProbeReport> {
  const server = await serve(chain, chain[0])
  try {
    return await probeGateway({url: server.url, as: 'cisco', timeoutMs: 5000, cafile})
  } finally {
    server.close()
  }
}

const expiry = (r: ProbeReport) => r.checks.find((c) => c.id === 'tls.expiry')

describe('probe certificate chain over real TLS', () => {
  let dir: string
  let root: Issued
  let intermediate: Issued
  let leaf: Issued
  let rootFile: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'anygate-chain-'))
    root = await issue('Chain Test Root', {isCa: true, toDays: 3650})
    intermediate = await issue('Chain Test Intermediate', {issuer: root, isCa: true, toDays: 400})
    leaf = await issue('127.0.0.1', {issuer: intermediate, isCa: false, toDays: 90})
    rootFile = join(dir, 'root.pem')
    writeFileSync(rootFile, root.pem)
  })

  after(() => {
    rmSync(dir, {recursive: true, force: true})
  })

  it('lists leaf, intermediate and the root --cafile added, in order, and tells them apart', async () => {
    const r = await probeChain([leaf, intermediate], rootFile)
    const chain = r.tls!.chain
    assert.deepEqual(chain.map((c) => c.subject), ['CN=127.0.0.1', 'CN=Chain Test Intermediate', 'CN=Chain Test Root'])
    assert.deepEqual(chain.map((c) => c.issuer), ['CN=Chain Test Intermediate', 'CN=Chain Test Root', 'CN=Chain Test Root'])
    assert.deepEqual(chain.map((c) => c.pin), [leaf, intermediate, root].map((c) => pinSha256(c.pem)))
    assert.deepEqual(chain.map((c) => c.sentByGateway), [true, true, false])
    assert.deepEqual(chain.map((c) => c.isCa), [false, true, true])
    assert.deepEqual(chain.map((c) => c.isSelfSigned), [false, false, true])
    assert.equal(chain[0].pin, r.tls!.certificate.pin)
    assert.match(chain[0].validTo, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.equal(r.checks.find((c) => c.id === 'tls.trust')?.status, 'pass')
    assert.equal(expiry(r)?.status, 'pass')
    assert.match(expiry(r)!.detail, /^all 3 valid; leaf "127.0.0.1" ends first/)
  })

  it('marks a root the server sent itself as sent, and lists only what it sent without --cafile', async () => {
    const withRoot = await probeChain([leaf, intermediate, root])
    assert.deepEqual(withRoot.tls!.chain.map((c) => [c.subject, c.sentByGateway]), [
      ['CN=127.0.0.1', true],
      ['CN=Chain Test Intermediate', true],
      ['CN=Chain Test Root', true],
    ])
    const withoutRoot = await probeChain([leaf, intermediate])
    assert.equal(withoutRoot.tls!.chain.length, 2)
    assert.equal(withoutRoot.checks.find((c) => c.id === 'tls.trust')?.status, 'warn')
  })

  it('warns about an intermediate that ends within 30 days, and names it', async () => {
    const shortLived = await issue('Short Intermediate', {issuer: root, isCa: true, toDays: 10})
    const leaf2 = await issue('127.0.0.1', {issuer: shortLived, isCa: false, toDays: 90})
    const r = await probeChain([leaf2, shortLived], rootFile)
    assert.equal(expiry(r)?.status, 'warn')
    assert.match(expiry(r)!.detail, /^intermediate "Short Intermediate" expires in 9 days/)
  })

  it('fails an expired intermediate and one not yet valid', async () => {
    const old = await issue('Old Intermediate', {issuer: root, isCa: true, fromDays: -30, toDays: -2})
    const r = await probeChain([await issue('127.0.0.1', {issuer: old, isCa: false, toDays: 90}), old], rootFile)
    assert.equal(expiry(r)?.status, 'fail')
    assert.match(expiry(r)!.detail, /^intermediate "Old Intermediate" expired on /)

    const future = await issue('Future Intermediate', {issuer: root, isCa: true, fromDays: 5, toDays: 400})
    const r2 = await probeChain([await issue('127.0.0.1', {issuer: future, isCa: false, toDays: 90}), future], rootFile)
    assert.equal(expiry(r2)?.status, 'fail')
    assert.match(expiry(r2)!.detail, /^intermediate "Future Intermediate" not valid until /)
  })
})
