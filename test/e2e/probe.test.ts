/**
 * `anygate probe` against real ocserv and against `anygate serve`, with and without
 * credentials, with DTLS on and off: the report's facts match what each gateway was given.
 */
import assert from 'node:assert/strict'
import {dirname} from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import {type GatewayHandle, startOcserv} from './harness/ocserv.js'
import {skipUnlessReady, waitFor} from './harness/wait.js'

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const skip = skipUnlessReady(['ip', 'ocserv', 'ocpasswd', 'openssl'])

interface Report {
  tls: {certificate: {pin: string}}
  auth: {fields: string[]; groups: string[]}
  login?: {ok: boolean}
  tunnel?: {ipv4?: string; netmask?: string; mtu?: number; routes: string[]; dns: string[]; dtls: {offered: boolean; cipher?: string; established: boolean}; dtlsModes?: {as: string; mode?: string; cipher?: string; established: boolean}[]}
  checks: {id: string; status: string; detail: string}[]
  verdict: {cisco: string; openconnect: string}
}

async function probe(net: TestNet, gw: GatewayHandle, args: string[], password?: string) {
  const r = await net.exec(net.client, process.execPath, [RUN, 'probe', gw.url, '--servercert', gw.servercert, '--json', '--timeout', '5', ...args], {
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

    it('fails with exit 1 on a wrong password', async () => {
      const {code, report} = await probe(net, plain, ['--user', 'alice', '--password-stdin'], 'wrong')
      assert.equal(code, 1)
      assert.equal(status(report!, 'login.result'), 'fail')
    })

    it('exits 2 when nothing listens', async () => {
      const r = await net.exec(net.client, process.execPath, [RUN, 'probe', `https://${net.server.address}:4999/`], {allowFailure: true})
      assert.equal(r.code, 2)
      assert.match(r.stderr, /cannot reach .*connection refused/)
      assert.equal(r.stderr.trim().split('\n').length, 1)
    })
  })
}
