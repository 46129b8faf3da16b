/**
 * `serve --record` from the inside: a real Gateway over TLS on 127.0.0.1 with the in-memory
 * TUN and a GatewayRecorder writing into a temp dir. Logins, CONNECTs granted and refused, and
 * the first tunnel frames both ways, as they land in the written transcript.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {after, before, describe, it} from 'node:test'

import {resolveConfig} from '../../../src/lib/config/schema.js'
import {CstpType} from '../../../src/lib/cstp/constants.js'
import {encodeCstpFrame, encodeDisconnect} from '../../../src/lib/cstp/encoder.js'
import {Gateway} from '../../../src/lib/gateway/server.js'
import type {VerifyResult} from '../../../src/lib/http-auth/login.js'
import {noopLogger} from '../../../src/lib/log/logger.js'
import {ensureServerCert} from '../../../src/lib/pki/server-cert.js'
import type {ConnectStep, Transcript} from '../../../src/lib/replay/format.js'
import {GatewayRecorder, type RecordSelection} from '../../../src/lib/replay/gateway-recorder.js'
import {readTranscript} from '../../../src/lib/replay/reader.js'
import {RECORDED_FRAMES} from '../../../src/lib/replay/recorder.js'
import {type MemoryTun, memoryTunFactory} from '../../../src/lib/tun/memory.js'

const PASSWORD = 'rec0rd secret'
const users = {
  async verify(user: string, password: string): Promise<VerifyResult> {
    return password === PASSWORD ? {ok: true, groups: []} : {ok: false, reason: 'bad-password'}
  },
}

let dir: string
let cert: {certPem: string; keyPem: string}
const running: Gateway[] = []

interface Rig {
  gateway: Gateway
  recorder: GatewayRecorder
  port: number
  out: string
  tuns: MemoryTun[]
}

async function rig(sel: Partial<RecordSelection> = {}): Promise<Rig> {
  const out = fs.mkdtempSync(path.join(dir, 'rec-'))
  const recorder = new GatewayRecorder({dir: out, users: [], addresses: [], ...sel}, noopLogger)
  const tuns: MemoryTun[] = []
  const gateway = new Gateway({
    config: resolveConfig({}, {listen: '127.0.0.1:0', 'ipv4-pool': '198.19.9.0/24'}),
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    users,
    log: noopLogger,
    version: '0.0.0-test',
    tun: memoryTunFactory(tuns),
    recorder,
  })
  running.push(gateway)
  const {port} = await gateway.listen()
  return {gateway, recorder, port, out, tuns}
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-rec-'))
  cert = await ensureServerCert(dir, noopLogger)
})

after(async () => {
  await Promise.all(running.map((g) => g.stop(500)))
  fs.rmSync(dir, {recursive: true, force: true})
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, probe: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = probe()
    if (v !== undefined) return v
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

class Client {
  readonly socket: tls.TLSSocket
  data = Buffer.alloc(0)
  readonly closed: Promise<void>

  constructor(port: number) {
    this.socket = tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false})
    this.socket.on('data', (c: Buffer) => {
      this.data = Buffer.concat([this.data, c])
    })
    this.socket.on('error', () => {})
    this.closed = new Promise((r) => this.socket.on('close', () => r()))
  }

  async request(method: string, url: string, body = '', headers: Record<string, string> = {}): Promise<string> {
    this.data = Buffer.alloc(0)
    const h = Object.entries({...headers, 'User-Agent': 'Open AnyConnect VPN Agent test', 'Content-Length': String(Buffer.byteLength(body))})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')
    this.socket.write(`${method} ${url} HTTP/1.1\r\nHost: gw\r\n${h}\r\n${body}`)
    const done = method === 'CONNECT' ? /\r\n\r\n/ : /<\/config-auth>\n?$/
    return until(`an answer to ${method} ${url}`, () => (done.test(this.data.toString('latin1')) ? this.data.toString('latin1') : undefined))
  }

  send(type: number, payload?: Buffer) {
    this.socket.write(encodeCstpFrame(type, payload))
  }
}

const loginBody = (user: string) =>
  `<?xml version="1.0"?><config-auth client="vpn" type="auth-reply"><auth><username>${user}</username><password>${PASSWORD}</password></auth></config-auth>`

async function login(port: number, user = 'alice'): Promise<string> {
  const c = new Client(port)
  const text = await c.request('POST', '/', loginBody(user))
  c.socket.destroy()
  const m = /Set-Cookie: webvpn=([^;]+);/.exec(text)
  assert.ok(m, `no webvpn cookie in ${text.slice(0, 200)}`)
  return m[1]
}

async function connect(port: number, cookie: string) {
  const c = new Client(port)
  const head = await c.request('CONNECT', '/CSCOSSLC/tunnel', '', {Cookie: `webvpn=${cookie}`, 'X-CSTP-Base-MTU': '1500'})
  c.data = Buffer.alloc(0)
  return {c, head}
}

/** An IPv4 packet of 32 bytes whose payload is `n` repeated. */
const ipv4 = (n: number) => Buffer.concat([Buffer.from('450000200000400040110000c6130902c6130901', 'hex'), Buffer.alloc(12, n)])

const files = (out: string) => fs.readdirSync(out).filter((n) => n.endsWith('.json'))

async function transcript(out: string, count = 1): Promise<{t: Transcript; text: string}> {
  const names = await until(`${count} transcript(s) in ${out}`, () => (files(out).length >= count ? files(out).sort() : undefined))
  const file = path.join(out, names[count - 1])
  return {t: readTranscript(file), text: fs.readFileSync(file, 'utf8')}
}

function connectStep(t: Transcript): ConnectStep {
  const s = t.steps.find((x) => x.kind === 'connect')
  assert.ok(s?.kind === 'connect', 'no CONNECT step')
  return s
}

const plain = (s: ConnectStep) => s.frames.map((f) => `${f.from} ${f.type} ${f.length}`)

describe('GatewayRecorder', () => {
  it('records the login, the CONNECT and its first frames both ways, and writes at the tunnel end', async () => {
    const r = await rig()
    const cookie = await login(r.port)
    const {c} = await connect(r.port, cookie)
    const tun = r.tuns.at(-1)!

    // client DATA, gateway DATA, a DPD round trip, then the client's goodbye
    c.send(CstpType.Data, ipv4(1))
    await until('the packet on the TUN', () => tun.written[0])
    tun.inject(ipv4(2))
    await until('the DATA frame at the client', () => (c.data.length >= 40 ? true : undefined))
    c.send(CstpType.DpdRequest, Buffer.alloc(16, 7))
    await until('the DPD answer', () => (c.data.length >= 40 + 24 ? true : undefined))
    assert.equal(files(r.out).length, 0, 'written before the tunnel ended')
    c.socket.write(encodeDisconnect(0xb0, 'bye'))
    await c.closed

    const {t, text} = await transcript(r.out)
    assert.equal(t.source, 'serve')
    assert.deepEqual(t.steps.map((s) => `${s.kind} ${s.response.status}`), ['http 200', 'connect 200'])
    const step = connectStep(t)
    assert.deepEqual(plain(step), ['client Data 32', 'gateway Data 32', 'client DpdRequest 16', 'gateway DpdResponse 16', 'client Disconnect 4'])
    for (const f of step.frames) assert.ok(Number.isInteger(f.at) && f.at! >= 0, `no time on ${JSON.stringify(f)}`)
    assert.ok(step.frames.every((f, i) => i === 0 || f.at! >= step.frames[i - 1].at!), 'times go backwards')

    // Types and lengths only: no payload byte, no secret
    assert.ok(!text.includes(PASSWORD) && !text.includes(cookie))
    assert.ok(!text.includes(ipv4(2).toString('hex')) && !text.includes(ipv4(2).toString('base64')))
    assert.deepEqual(Object.keys(step.frames[0]).sort(), ['at', 'from', 'length', 'type'])
  })

  it(`writes after ${RECORDED_FRAMES} frames with the tunnel still up, and takes no more`, async () => {
    const r = await rig()
    const cookie = await login(r.port)
    const {c} = await connect(r.port, cookie)
    const tun = r.tuns.at(-1)!
    for (let i = 0; i < RECORDED_FRAMES + 4; i++) c.send(CstpType.Data, ipv4(i))
    await until('every packet on the TUN', () => (tun.written.length === RECORDED_FRAMES + 4 ? true : undefined))

    const {t} = await transcript(r.out)
    assert.equal(connectStep(t).frames.length, RECORDED_FRAMES)
    assert.equal(c.socket.destroyed, false)
    c.send(CstpType.DpdRequest, Buffer.alloc(8))
    await until('the DPD answer', () => (c.data.length >= 16 ? true : undefined))
    c.socket.destroy()
    await sleep(50)
    assert.equal(files(r.out).length, 1)
    assert.equal(connectStep(readTranscript(path.join(r.out, files(r.out)[0]))).frames.length, RECORDED_FRAMES)
  })

  it('leaves out a DPD request that has no room left for its answer', async () => {
    const r = await rig()
    const cookie = await login(r.port)
    const {c} = await connect(r.port, cookie)
    for (let i = 0; i < RECORDED_FRAMES - 1; i++) c.send(CstpType.Data, ipv4(i))
    c.send(CstpType.DpdRequest, Buffer.alloc(8))
    const {t} = await transcript(r.out)
    const step = connectStep(t)
    assert.equal(step.frames.length, RECORDED_FRAMES - 1)
    assert.ok(step.frames.every((f) => f.type === 'Data'))
    c.socket.destroy()
  })

  it('writes when the frame window ends, with what came in it', async () => {
    const r = await rig({frameWindowMs: 300})
    const cookie = await login(r.port)
    const {c} = await connect(r.port, cookie)
    c.send(CstpType.Keepalive)
    const {t} = await transcript(r.out)
    assert.deepEqual(plain(connectStep(t)), ['client Keepalive 0'])
    assert.equal(c.socket.destroyed, false, 'the window ended the tunnel')
    c.socket.destroy()
  })

  it("records the gateway's DISCONNECT when it ends the tunnel", async () => {
    const r = await rig()
    const cookie = await login(r.port)
    const {c} = await connect(r.port, cookie)
    await until('the tunnel', () => r.gateway.sessions.all().find((s) => s.tunnel))
    r.gateway.disconnect(r.gateway.sessions.all().find((s) => s.tunnel)!)
    await c.closed
    const {t} = await transcript(r.out)
    assert.deepEqual(plain(connectStep(t)), ['gateway Disconnect 0'])
  })

  it('records a refused CONNECT with its status, on the login whose cookie it used', async () => {
    const r = await rig()
    const cookie = await login(r.port)
    r.gateway.sessions.invalidate(r.gateway.sessions.findByCookie(cookie)!)
    const {c, head} = await connect(r.port, cookie)
    assert.match(head, /^HTTP\/1.1 401 /)
    await c.closed

    const {t, text} = await transcript(r.out)
    assert.deepEqual(t.steps.map((s) => `${s.request.method} ${s.response.status} ${s.response.statusText}`), ['POST 200 OK', 'CONNECT 401 Cookie is not acceptable'])
    assert.match(path.basename(fs.readdirSync(r.out)[0]), /-alice-/)
    const step = connectStep(t)
    assert.deepEqual(step.frames, [])
    assert.deepEqual(step.request.headers.find(([k]) => k === 'Cookie'), ['Cookie', 'webvpn={{cookie:webvpn}}'])
    assert.ok(!text.includes(cookie))
  })

  it('records a CONNECT without a cookie as a transcript of its own', async () => {
    const r = await rig()
    const c = new Client(r.port)
    const head = await c.request('CONNECT', '/CSCOSSLC/tunnel')
    assert.match(head, /^HTTP\/1.1 503 /)
    const {t} = await transcript(r.out)
    assert.deepEqual(t.steps.map((s) => `${s.kind} ${s.response.status}`), ['connect 503'])
    assert.ok(t.steps[0].response.headers.some(([k, v]) => k === 'X-Reason' && v === 'No session cookie'))
  })

  it('taps no tunnel of a user it does not record, and writes nothing for them', async () => {
    const r = await rig({users: ['bob']})
    const taps: unknown[] = []
    const take = r.recorder.connect.bind(r.recorder)
    r.recorder.connect = (...args) => {
      const tap = take(...args)
      taps.push(tap)
      return tap
    }

    const cookie = await login(r.port, 'alice')
    const {c} = await connect(r.port, cookie)
    const tun = r.tuns.at(-1)!
    c.send(CstpType.Data, ipv4(1))
    await until('the packet on the TUN', () => tun.written[0])
    c.socket.destroy()
    await c.closed
    r.recorder.flush()
    assert.deepEqual(files(r.out), [])
    assert.deepEqual(taps, [undefined])

    const bobs = await login(r.port, 'bob')
    const bob = await connect(r.port, bobs)
    bob.c.socket.destroy()
    const {t} = await transcript(r.out)
    assert.match(t.steps[0].request.body, /<username>\{\{user\}\}<\/username>/)
    assert.equal(taps.length, 2)
    assert.ok(taps[1])
  })

  it('writes a login whose cookie no CONNECT used once the linger has passed', async () => {
    const r = await rig({lingerMs: 200})
    await login(r.port)
    await sleep(50)
    assert.deepEqual(files(r.out), [], 'written before the linger passed')
    const {t} = await transcript(r.out)
    assert.deepEqual(t.steps.map((s) => s.kind), ['http'])
  })

  it('writes what is still open at flush, as when serve stops', async () => {
    const r = await rig()
    const c = new Client(r.port)
    await c.request('POST', '/', loginBody('alice'))
    const cookie = await login(r.port)
    const tunnel = await connect(r.port, cookie)
    await sleep(50)
    assert.deepEqual(files(r.out), [])
    r.recorder.flush()
    assert.equal(files(r.out).length, 2)
    const kinds = files(r.out).map((n) => readTranscript(path.join(r.out, n)).steps.map((s) => s.kind).join(','))
    assert.deepEqual(kinds.sort(), ['http', 'http,connect'])
    c.socket.destroy()
    tunnel.c.socket.destroy()
  })
})
