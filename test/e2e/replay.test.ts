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
import {authenticateOnly, startOpenconnect} from './harness/openconnect.js'
import {skipUnlessReady, waitFor} from './harness/wait.js'

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const COMPAT = readFileSync(fileURLToPath(new URL('../../docs/compatibility.md', import.meta.url)), 'utf8')
const skip = skipUnlessReady(['ip', 'ocserv', 'ocpasswd', 'openssl', 'openconnect', 'ping'])

const PASSWORD = 'r3play pass'
const users = [{name: 'alice', password: PASSWORD}]
const routes = ['198.18.5.0/24']

interface Transcript {
  client?: string
  steps: {
    kind: string
    request: {method: string; headers: [string, string][]}
    response: {status: number; statusText: string; headers: [string, string][]}
    frames?: {from: string; type: string; length: number; at?: number}[]
  }[]
}

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

  const transcripts = () => (existsSync(recordDir) ? readdirSync(recordDir).filter((n) => n.endsWith('.json')) : [])

  /**
   * The one transcript serve wrote after `before` was listed that `is` picks. Others may land
   * meanwhile: each replay against serve is itself a login that serve records.
   */
  async function newTranscript(before: string[], is: (t: Transcript) => boolean): Promise<string> {
    const fresh = () => transcripts().filter((n) => !before.includes(n) && is(JSON.parse(readFileSync(join(recordDir, n), 'utf8')) as Transcript))
    await waitFor('a new transcript', () => fresh().length > 0, 20_000)
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(fresh().length, 1, fresh().join(', '))
    return join(recordDir, fresh()[0])
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

  it('records an openconnect tunnel in serve --record: its first frames, and a replay finds them alike', async () => {
    const before = transcripts()
    // A DPD every idle second: the client's requests come after the first second, as a real
    // client's would after minutes, and the replay must still expect the answers.
    const oc = await startOpenconnect(net, {url: anygate.url, user: 'alice', password: PASSWORD, servercert: anygate.servercert, dtls: false, extraArgs: ['--force-dpd', '1']})
    const tunnel = await oc.waitForConnected(20_000)
    const ping = await net.exec(net.client, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '-I', tunnel.tunDev, anygate.tunnelAddress], {allowFailure: true})
    assert.match(ping.stdout, /3 received/)
    await new Promise((r) => setTimeout(r, 2500))
    await oc.stop()

    const file = await newTranscript(before, (t) => t.client?.startsWith('Open AnyConnect') === true && t.steps.at(-1)?.kind === 'connect')
    const text = readFileSync(file, 'utf8')
    assert.ok(!text.includes(PASSWORD))
    const t = JSON.parse(text) as Transcript
    const connect = t.steps.at(-1)!
    assert.equal(`${connect.kind} ${connect.response.status}`, 'connect 200')
    assert.deepEqual(connect.request.headers.find(([k]) => k.toLowerCase() === 'cookie'), ['Cookie', 'webvpn={{cookie:webvpn}}'])
    const frames = connect.frames ?? []
    console.log(frames.map((f) => `${f.at} ms ${f.from} ${f.type} ${f.length}`).join('\n'))
    // The pings: 20 bytes of IP, 8 of ICMP and ping's 56 of data, each way, then openconnect's BYE
    const count = (from: string, type: string, length?: number) => frames.filter((f) => f.from === from && f.type === type && (length === undefined || f.length === length)).length
    assert.ok(count('client', 'Data', 84) >= 3 && count('gateway', 'Data', 84) >= 3, 'the pings are not among the frames')
    const dpd = frames.findIndex((f) => f.from === 'client' && f.type === 'DpdRequest')
    assert.ok(dpd >= 0 && frames[dpd].at! >= 1000, 'no DPD request from openconnect after the first second')
    assert.equal(`${frames[dpd + 1]?.from} ${frames[dpd + 1]?.type} ${frames[dpd + 1]?.length}`, `gateway DpdResponse ${frames[dpd].length}`)
    assert.ok(frames.length <= 16)
    if (frames.length < 16) assert.equal(`${frames.at(-1)?.from} ${frames.at(-1)?.type}`, 'client Disconnect')
    assert.ok(frames.every((f) => Number.isInteger(f.at)), 'a frame without its time')

    const same = await replay(file, anygate)
    assert.ok(same.report, same.stderr)
    assert.equal(same.code, 0, listDiffs(same.report).join('\n'))

    // Against ocserv, which asks the password in a second form: the replay answers that extra
    // round from the recorded reply, reports it, and the recorded CONNECT still gets through.
    const other = await replay(file, ocserv)
    assert.ok(other.report, other.stderr)
    const diffs = listDiffs(other.report)
    console.log(diffs.join('\n'))
    const extra = other.report.steps.filter((st) => / extra round /.test(st.title))
    assert.equal(extra.length, 1, diffs.join('\n'))
    assert.equal(extra[0].status, 'differs')
    assert.match(extra[0].differences[0].actual ?? '', /auth-request, one more form \(password\)/)
    const tunnelStep = other.report.steps.at(-1)!
    assert.ok(tunnelStep.title.startsWith('CONNECT') && !tunnelStep.differences.some((d) => d.where === 'status'), diffs.join('\n'))
    for (const st of other.report.steps) {
      for (const d of st.differences) assert.ok(COMPAT.includes(`\`${d.where} ${d.name}\``), `not explained in docs/compatibility.md: ${d.where} ${d.name}`)
    }
    assert.deepEqual(diffs.filter((d) => / frames /.test(d)), [])
    for (const d of tunnelStep.differences) assert.ok(COMPAT.includes(`\`${d.where} ${d.name}\``), `not explained in docs/compatibility.md: ${d.where} ${d.name}`)
  })

  it('records a CONNECT refused for a dead cookie on the login that got the cookie', async () => {
    const before = transcripts()
    const auth = await authenticateOnly(net, {url: anygate.url, user: 'alice', password: PASSWORD, servercert: anygate.servercert})
    assert.equal(auth.code, 0, auth.output)
    const cookie = /COOKIE='([^']+)'/.exec(auth.output)?.[1]
    assert.ok(cookie, 'no cookie from openconnect --authenticate')
    const socket = join(net.dir, 'anygate', 'state', 'control.sock')
    const ended = await cli(['session', 'disconnect', '--user', 'alice', '--control-socket', socket])
    assert.equal(ended.code, 0, ended.stderr)

    const oc = await startOpenconnect(net, {url: anygate.url, user: 'alice', password: '', servercert: anygate.servercert, dtls: false, extraArgs: ['--cookie', cookie]})
    const exit = await Promise.race([oc.exited, new Promise<undefined>((r) => setTimeout(r, 20_000, undefined))])
    assert.ok(exit, 'openconnect with a dead cookie kept running')
    assert.notEqual(exit.code, 0)

    const file = await newTranscript(before, (t) => t.steps.at(-1)?.response.status === 401)
    assert.match(file, /-alice-[0-9a-f]{6}\.json$/)
    const text = readFileSync(file, 'utf8')
    assert.ok(!text.includes(cookie) && !text.includes(PASSWORD))
    const t = JSON.parse(text) as Transcript
    const last = t.steps.at(-1)!
    assert.equal(`${last.kind} ${last.request.method} ${last.response.status} ${last.response.statusText}`, 'connect CONNECT 401 Cookie is not acceptable')
    assert.deepEqual(last.frames, [])
    // The login that made the cookie comes first, in the same transcript.
    assert.ok(t.steps.some((s) => s.kind === 'http' && s.response.headers.some(([k, v]) => k.toLowerCase() === 'set-cookie' && v.startsWith('webvpn={{cookie:webvpn}}'))))
  })

  it('writes a transcript still open when serve stops (SIGTERM)', async () => {
    const before = transcripts()
    const auth = await authenticateOnly(net, {url: anygate.url, user: 'alice', password: PASSWORD, servercert: anygate.servercert})
    assert.equal(auth.code, 0, auth.output)
    // A cookie no CONNECT has used yet: serve waits for one before it writes.
    await new Promise((r) => setTimeout(r, 500))
    assert.deepEqual(transcripts().filter((n) => !before.includes(n)), [])

    const exit = await anygate.stop(10_000)
    assert.equal(exit.code, 0, anygate.log())
    const file = await newTranscript(before, () => true)
    const t = JSON.parse(readFileSync(file, 'utf8')) as Transcript
    assert.ok(t.steps.length > 0 && t.steps.every((s) => s.kind === 'http'))
    assert.ok(t.steps.at(-1)!.response.headers.some(([k, v]) => k.toLowerCase() === 'set-cookie' && v.startsWith('webvpn={{cookie:webvpn}}')))
  })

  it('exits 2 when the target cannot be reached', async () => {
    const r = await cli(['replay', files.imported, '--target', `https://${net.server.address}:4999/`, '--user', 'alice', '--password-stdin'], `${PASSWORD}\n`)
    assert.equal(r.code, 2)
    assert.match(r.stderr, /cannot reach .*connection refused/)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  })
})
