/**
 * `anygate probe` against real ocserv and against `anygate serve`, with and without
 * credentials, with DTLS on and off: the report's facts match what each gateway was given,
 * the legacy form login leaves no session behind, and a chain root → intermediate → leaf is
 * listed certificate by certificate.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import {type GatewayHandle, makeCertChain, startOcserv} from './harness/ocserv.js'
import {pinSha256} from './harness/openconnect.js'
import {skipUnlessReady, waitFor} from './harness/wait.js'

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const skip = skipUnlessReady(['ip', 'ocserv', 'ocpasswd', 'openssl'])

interface Report {
  tls: {certificate: {pin: string}; chain: {subject: string; issuer: string; validTo: string; pin: string; isSelfSigned: boolean; isCa: boolean; sentByGateway?: boolean}[]}
  auth: {
    fields: string[]
    groups: string[]
    legacy: {formServed: boolean; login?: {skipped?: string; rounds: string[][]; complete: boolean; cookieFrom?: string; connect?: string; disconnected: boolean; error?: string}}
  }
  login?: {ok: boolean}
  tunnel?: {ipv4?: string; netmask?: string; mtu?: number; routes: string[]; dns: string[]; dtls: {offered: boolean; cipher?: string; established: boolean}; dtlsModes?: {as: string; mode?: string; cipher?: string; established: boolean}[]}
  checks: {id: string; status: string; detail: string}[]
  verdict: {cisco: string; openconnect: string}
}

/** Runs the probe with --json (and --servercert, unless `args` names a --cafile). */
async function probe(net: TestNet, gw: GatewayHandle, args: string[], password?: string) {
  const trust = args.includes('--cafile') ? [] : ['--servercert', gw.servercert]
  const r = await net.exec(net.client, process.execPath, [RUN, 'probe', gw.url, ...trust, '--json', '--timeout', '5', ...args], {
    input: password === undefined ? undefined : `${password}\n`,
    allowFailure: true,
    timeoutMs: 60_000,
  })
  let report: Report | undefined
  try {
    report = JSON.parse(r.stdout) as Report
  } catch {
    report = undefined
  }

  return {code: r.code, report, stderr: r.stderr}
}

const status = (r: Report, id: string) => r.checks.find((c) => c.id === id)?.status

/** The logged-in sessions a gateway still holds: anygate's `session list`, ocserv's occtl. */
async function sessionsLeft(net: TestNet, gw: GatewayHandle): Promise<unknown[]> {
  if (gw.kind === 'anygate') {
    const list = await net.exec(net.server, process.execPath, [RUN, 'session', 'list', '--json', '--state-dir', dirname(gw.certFile)])
    return JSON.parse(list.stdout) as unknown[]
  }

  const r = await net.exec(net.server, 'occtl', ['-s', gw.occtlSocket!, '--json', 'show', 'sessions', 'all'])
  // ocserv 1.1.6 puts a comma after each entry's last field (auth-and-cstp.md §6.3)
  const all = JSON.parse(r.stdout.replace(/,(\s*[}\]])/g, '$1')) as {State: string; Username: string}[]
  return all.filter((e) => e.State === 'authenticated')
}

for (const kind of ['ocserv', 'anygate'] as const) {
  describe(`probe against ${kind}`, {skip}, () => {
    let net: TestNet
    let plain: GatewayHandle
    let withDtls: GatewayHandle
    const users = [{name: 'alice', password: 'pr0be pass'}]
    const routes = ['198.18.5.0/24']

    before(async () => {
      net = await createTestNet()
      plain =
        kind === 'ocserv'
          ? await startOcserv(net, {tcpPort: 443, users, routes, extraConfig: ['dns = 198.19.0.53']})
          : await startAnygate(net, {port: 443, users, extraArgs: ['--route', routes[0], '--dns', '198.19.0.53']})
      withDtls =
        kind === 'ocserv'
          ? await startOcserv(net, {tcpPort: 4443, dtls: true, users, routes})
          : await startAnygate(net, {port: 4443, users, dtls: true})
    })

    after(async () => {
      await net?.destroy()
    })

    it('grades TLS and the login form without credentials', async () => {
      const {code, report} = await probe(net, plain, [])
      assert.ok(report, 'no JSON report')
      assert.equal(code, 0, JSON.stringify(report.checks.filter((c) => c.status === 'fail')))
      assert.equal(report.tls.certificate.pin, plain.servercert)
      assert.equal(status(report, 'tls.trust'), 'pass')
      assert.equal(status(report, 'auth.init'), 'pass')
      assert.ok(report.auth.fields.includes('username'))
      assert.equal(report.tunnel, undefined)
      // GET / as openconnect --no-xmlpost: the form, and without credentials no login through it
      assert.equal(status(report, 'auth.legacy'), 'pass')
      assert.deepEqual(report.auth.legacy, {formServed: true})
      assert.equal(status(report, 'auth.legacy-login'), undefined)
      // One certificate, sent by the gateway: ocserv's is self-signed, anygate's is issued by
      // the CA in its state dir, which it does not send
      assert.deepEqual(report.tls.chain.map((c) => [c.pin, c.isSelfSigned, c.sentByGateway]), [[plain.servercert, kind === 'ocserv', true]])
    })

    it('logs in through the legacy form as openconnect --no-xmlpost, and frees that session', async () => {
      const {code, report, stderr} = await probe(net, plain, ['--user', 'alice', '--password-stdin'], 'pr0be pass')
      assert.ok(report, stderr)
      assert.equal(code, 0, JSON.stringify(report.checks.filter((c) => c.status === 'fail')))
      assert.equal(status(report, 'auth.legacy-login'), 'pass', JSON.stringify(report.auth.legacy))
      // Neither the password nor a cookie value is reported
      const text = JSON.stringify(report)
      assert.ok(!text.includes('pr0be') && !/webvpn(context)?=/.test(text), text)
      const legacy = report.auth.legacy.login!
      // ocserv asks for the username, then the password; anygate for both in one form
      assert.deepEqual(legacy.rounds, kind === 'ocserv' ? [['username'], ['password']] : [['username', 'password']])
      assert.equal(legacy.complete, true)
      assert.equal(legacy.cookieFrom, 'Set-Cookie')
      assert.match(legacy.connect ?? '', /^HTTP\/1\.1 200 /)
      assert.equal(legacy.disconnected, true)
      // The legacy check sits with the other legacy one, in the login form's steps
      const ids = report.checks.map((c) => c.id)
      assert.equal(ids.indexOf('auth.legacy-login'), ids.indexOf('auth.legacy') + 1)

      // Neither the XML login's session nor the legacy one is left on the gateway
      await waitFor(`${kind} to hold no session`, async () => (await sessionsLeft(net, plain)).length === 0, 5000)
    })

    it('keeps the legacy login and the password out of --record', async () => {
      const file = join(net.dir, `probe-${kind}.json`)
      const {code, report} = await probe(net, plain, ['--user', 'alice', '--password-stdin', '--record', file], 'pr0be pass')
      assert.equal(code, 0, JSON.stringify(report?.checks.filter((c) => c.status === 'fail')))
      assert.equal(status(report!, 'auth.legacy-login'), 'pass')
      const text = readFileSync(file, 'utf8')
      assert.ok(!text.includes('pr0be'), 'the password is in the transcript')
      const t = JSON.parse(text) as {steps: {kind: string; request: {method: string; path: string; body: string}}[]}
      // Only the Cisco-like client's XML login and its one CONNECT: no GET /, no form post
      assert.equal(t.steps.filter((st) => st.kind === 'connect').length, 1)
      assert.equal(t.steps.at(-1)?.kind, 'connect')
      for (const st of t.steps.slice(0, -1)) assert.match(st.request.body, /^<\?xml/, `${st.request.method} ${st.request.path}`)
    })

    it('logs in, reads the CONNECT answer and runs DPD over CSTP', async () => {
      const {code, report} = await probe(net, plain, ['--user', 'alice', '--password-stdin'], 'pr0be pass')
      assert.ok(report)
      assert.equal(code, 0, JSON.stringify(report.checks.filter((c) => c.status === 'fail')))
      assert.equal(report.login?.ok, true)
      const t = report.tunnel!
      assert.ok(t.ipv4?.startsWith(net.pool.network.replace(/\.0$/, '.')), `address ${t.ipv4} outside ${net.pool.cidr}`)
      assert.equal(t.netmask, '255.255.255.0')
      assert.deepEqual(t.routes, ['198.18.5.0/255.255.255.0'])
      assert.deepEqual(t.dns, ['198.19.0.53'])
      assert.equal(t.dtls.offered, false)
      assert.equal(status(report, 'tunnel.dpd'), 'pass')
      assert.equal(status(report, 'tunnel.mtu'), 'pass')
    })

    for (const as of ['openconnect', 'cisco'] as const) {
      it(`brings DTLS up as ${as} and gets a DPD answer over it`, async () => {
        const {code, report} = await probe(net, withDtls, ['--user', 'alice', '--password-stdin', '--as', as], 'pr0be pass')
        assert.ok(report)
        assert.equal(code, 0, JSON.stringify(report.checks.filter((c) => c.status === 'fail')))
        const dtls = report.tunnel!.dtls
        assert.equal(dtls.offered, true)
        assert.equal(dtls.established, true)
        // openconnect's offer starts with PSK-NEGOTIATE; the Cisco-like one has none, so a legacy suite
        if (as === 'openconnect') assert.equal(dtls.cipher?.startsWith('PSK-'), true, dtls.cipher)
        else assert.equal(dtls.cipher?.startsWith('PSK-'), false, dtls.cipher)
        assert.equal(status(report, 'tunnel.dtls'), 'pass')

        // Then the other family's mode, on a second CONNECT with the same cookie
        const other = as === 'cisco' ? 'openconnect' : 'cisco'
        const modes = report.tunnel!.dtlsModes ?? []
        assert.deepEqual(modes.map((m) => [m.as, m.mode, m.established]), [
          [as, as === 'openconnect' ? 'psk' : 'resume', true],
          [other, other === 'openconnect' ? 'psk' : 'resume', true],
        ])
        assert.equal(status(report, `tunnel.dtls-as-${other}`), 'pass')
        if (kind === 'anygate') {
          // The closing DISCONNECT on the second connection ended the session: nothing is left
          const stateDir = dirname(withDtls.certFile)
          await waitFor('the probe session to end', async () => {
            const list = await net.exec(net.server, process.execPath, [RUN, 'session', 'list', '--json', '--state-dir', stateDir])
            return (JSON.parse(list.stdout) as unknown[]).length === 0
          })
        }
      })
    }

    it('fails with exit 1 on a wrong password, and does not try it again in the legacy form', async () => {
      const {code, report} = await probe(net, plain, ['--user', 'alice', '--password-stdin'], 'wrong')
      assert.equal(code, 1)
      assert.equal(status(report!, 'login.result'), 'fail')
      assert.equal(status(report!, 'auth.legacy-login'), 'skip')
      assert.deepEqual(report!.auth.legacy.login?.rounds, [])
    })

    it('lists the chain root → intermediate → leaf it is given, in order, and grades each', async () => {
      const chain = await makeCertChain(net, join(net.dir, `chain-${kind}`), net.server.address, {root: 365, intermediate: 20, leaf: 90})
      const cert = {certFile: chain.chainFile, keyFile: chain.keyFile}
      const gw =
        kind === 'ocserv'
          ? await startOcserv(net, {tcpPort: 8443, users, cert})
          : await startAnygate(net, {port: 8443, users, extraArgs: ['--cert', cert.certFile, '--key', cert.keyFile]})
      try {
        const {code, report, stderr} = await probe(net, gw, ['--cafile', chain.rootFile])
        assert.ok(report, stderr)
        assert.equal(code, 0, JSON.stringify(report.checks.filter((c) => c.status === 'fail')))
        const listed = report.tls.chain
        assert.deepEqual(listed.map((c) => c.subject), [`CN=${net.server.address}`, 'CN=anygate test intermediate', 'CN=anygate test root'])
        const pems = [chain.leafFile, chain.intermediateFile, chain.rootFile].map((f) => readFileSync(f, 'utf8'))
        assert.deepEqual(listed.map((c) => c.pin), pems.map((pem) => pinSha256(pem)))
        // The gateway sent the leaf and the intermediate; --cafile added the root
        assert.deepEqual(listed.map((c) => c.sentByGateway), [true, true, false])
        assert.deepEqual(listed.map((c) => [c.isCa, c.isSelfSigned]), [[false, false], [true, false], [true, true]])
        assert.equal(status(report, 'tls.trust'), 'pass')
        assert.equal(status(report, 'tls.hostname'), 'pass')
        // The intermediate ends first, within 30 days: a warning that names it
        const expiry = report.checks.find((c) => c.id === 'tls.expiry')!
        assert.equal(expiry.status, 'warn')
        assert.match(expiry.detail, /^intermediate "anygate test intermediate" expires in 19 days/)

        // The human report lists the three, within 80 columns
        const human = await net.exec(net.client, process.execPath, [RUN, 'probe', gw.url, '--cafile', chain.rootFile, '--timeout', '5'], {allowFailure: true})
        const lines = human.stdout.split('\n')
        const at = lines.findIndex((l) => l.startsWith('Certificate chain'))
        assert.ok(at > 0, human.stdout)
        const block = lines.slice(at, at + 16)
        assert.equal(block.filter((l) => /^ +\d+\. /.test(l)).length, 3, block.join('\n'))
        for (const l of block) assert.ok(l.length <= 80, `wider than 80 columns: ${l}`)
        assert.match(block.join('\n'), /subject +CN=anygate test intermediate/)
      } finally {
        await gw.stop()
      }
    })

    it('exits 2 when nothing listens', async () => {
      const r = await net.exec(net.client, process.execPath, [RUN, 'probe', `https://${net.server.address}:4999/`], {allowFailure: true})
      assert.equal(r.code, 2)
      assert.match(r.stderr, /cannot reach .*connection refused/)
      assert.equal(r.stderr.trim().split('\n').length, 1)
    })
  })
}
