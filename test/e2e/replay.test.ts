/**
 * `anygate replay` end to end: transcripts made three ways (openconnect ↔ ocserv through
 * `replay import`, `probe --record` against ocserv, `serve --record`), replayed against ocserv
 * and against `anygate serve`. Against its own kind a transcript must match; against the other
 * gateway every difference reported must be one docs/compatibility.md explains.
 */
import assert from 'node:assert/strict'
import {existsSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import {type GatewayHandle, startOcserv} from './harness/ocserv.js'
import {startOpenconnect} from './harness/openconnect.js'
import {skipUnlessReady} from './harness/wait.js'

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const COMPAT = readFileSync(fileURLToPath(new URL('../../docs/compatibility.md', import.meta.url)), 'utf8')
const skip = skipUnlessReady(['ip', 'ocserv', 'ocpasswd', 'openssl', 'openconnect'])

const PASSWORD = 'r3play pass'
const users = [{name: 'alice', password: PASSWORD}]
const routes = ['198.18.5.0/24']

interface Report {
  isSame: boolean
  differences: number
  steps: {index: number; title: string; status: string; differences: {where: string; name: string; expected?: string; actual?: string}[]}[]
}

describe('replay', {skip}, () => {
  let net: TestNet
  let ocserv: GatewayHandle
  let anygate: GatewayHandle
  let recordDir: string
  const files: Record<string, string> = {}

  async function cli(args: string[], input?: string) {
    return net.exec(net.client, process.execPath, [RUN, ...args], {input, allowFailure: true, timeoutMs: 60_000})
  }

  async function replay(file: string, gw: GatewayHandle, extra: string[] = [], password = PASSWORD) {
    const r = await cli(['replay', file, '--target', gw.url, '--servercert', gw.servercert, '--user', 'alice', '--password-stdin', '--json', ...extra], `${password}\n`)
    let report: Report | undefined
    try {
      report = JSON.parse(r.stdout) as Report
    } catch {
      report = undefined
    }

    return {code: r.code, report, stderr: r.stderr}
  }

  const listDiffs = (r: Report) => r.steps.flatMap((s) => s.differences.map((d) => `${s.index + 1}. ${s.title}: ${d.where} ${d.name}: ${d.expected} -> ${d.actual}`))

  before(async () => {
    net = await createTestNet()
    recordDir = join(net.dir, 'recorded')
    ocserv = await startOcserv(net, {tcpPort: 443, users, routes, extraConfig: ['dns = 198.19.0.53']})
    anygate = await startAnygate(net, {port: 4443, users, extraArgs: ['--route', routes[0], '--dns', '198.19.0.53', '--record', recordDir, '--record-user', 'alice']})
  })

  after(async () => {
    await net?.destroy()
  })

  it('imports an openconnect ↔ ocserv log without its secrets', async () => {
    const oc = await startOpenconnect(net, {url: ocserv.url, user: 'alice', password: PASSWORD, servercert: ocserv.servercert, dtls: false, extraArgs: ['--dump-http-traffic', '-vv']})
    await oc.waitForConnected(20_000)
    await new Promise((r) => setTimeout(r, 300))
    await oc.stop()
    const log = oc.log()
    const cookie = /Cookie: webvpn=([^\s;]+)/.exec(log)?.[1]
    assert.ok(log.includes(PASSWORD) && cookie, 'openconnect printed neither the password nor the cookie: nothing to redact')

    const logFile = join(net.dir, 'openconnect.log')
    files.imported = join(net.dir, 'imported.json')
    writeFileSync(logFile, log)
    const r = await cli(['replay', 'import', logFile, '--output', files.imported])
    assert.equal(r.code, 0, r.stderr)
    const text = readFileSync(files.imported, 'utf8')
    assert.ok(!text.includes(PASSWORD), 'the password is in the transcript')
    assert.ok(!text.includes(cookie), 'the webvpn cookie is in the transcript')
    const t = JSON.parse(text) as {steps: {kind: string; request: {method: string}; frames?: unknown[]}[]}
    assert.deepEqual(t.steps.map((s) => s.request.method), ['POST', 'POST', 'POST', 'CONNECT'])
    assert.ok((t.steps[3].frames?.length ?? 0) > 0, 'no tunnel frames imported')
  })

  it('records probe ↔ ocserv', async () => {
    files.probe = join(net.dir, 'probe.json')
    const r = await cli(['probe', ocserv.url, '--servercert', ocserv.servercert, '--user', 'alice', '--password-stdin', '--json', '--record', files.probe], `${PASSWORD}\n`)
    assert.equal(r.code, 0, r.stderr)
    const text = readFileSync(files.probe, 'utf8')
    assert.ok(!text.includes(PASSWORD))
    assert.match(text, /"kind": "connect"/)
  })

  for (const which of ['imported', 'probe']) {
    it(`replays the ${which} transcript against ocserv with no differences`, async () => {
      const {code, report, stderr} = await replay(files[which], ocserv)
      assert.ok(report, stderr)
      assert.equal(code, 0, listDiffs(report).join('\n'))
      assert.equal(report.isSame, true)
    })

    it(`reports the ${which} transcript's differences against anygate, each explained`, async () => {
      const {code, report, stderr} = await replay(files[which], anygate)
      assert.ok(report, stderr)
      assert.equal(code, 1)
      const diffs = listDiffs(report)
      console.log(diffs.join('\n'))
      assert.ok(diffs.length > 0)
      const connect = report.steps.find((s) => s.title.startsWith('CONNECT'))
      assert.notEqual(connect?.status, 'failed', 'the CONNECT did not get through')
      for (const s of report.steps) {
        for (const d of s.differences) {
          assert.ok(COMPAT.includes(`\`${d.where} ${d.name}\``), `not explained in docs/compatibility.md: ${d.where} ${d.name}`)
        }
      }
    })
  }

  it('finds the wrong password', async () => {
    const {code, report} = await replay(files.imported, ocserv, [], 'not the password')
    assert.equal(code, 1)
    assert.ok(report && !report.isSame)
  })

  it('records a login in serve --record and replays it against serve', async () => {
    const before = existsSync(recordDir) ? readdirSync(recordDir).length : 0
    const r = await cli(['probe', anygate.url, '--servercert', anygate.servercert, '--user', 'alice', '--password-stdin', '--json'], `${PASSWORD}\n`)
    assert.equal(r.code, 0, r.stderr)
    let names: string[] = []
    for (let i = 0; i < 50 && names.length <= before; i++) {
      names = existsSync(recordDir) ? readdirSync(recordDir).filter((n) => n.endsWith('.json')) : []
      await new Promise((res) => setTimeout(res, 100))
    }

    assert.ok(names.length > before, 'serve wrote no transcript')
    const file = join(recordDir, names.sort().at(-1)!)
    const text = readFileSync(file, 'utf8')
    assert.ok(!text.includes(PASSWORD))
    const {code, report, stderr} = await replay(file, anygate)
    assert.ok(report, stderr)
    assert.equal(code, 0, listDiffs(report).join('\n'))
  })

  it('exits 2 when the target cannot be reached', async () => {
    const r = await cli(['replay', files.imported, '--target', `https://${net.server.address}:4999/`, '--user', 'alice', '--password-stdin'], `${PASSWORD}\n`)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /cannot reach .*connection refused/)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  })
})
