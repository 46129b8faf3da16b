/**
 * The control socket between a real Gateway (TLS on 127.0.0.1, in-memory TUN) and
 * `ControlClient`: listing, counters, disconnect, the versioned paths, and the socket file's
 * life (mode, a serve already running, one left by a serve that died).
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import dgram from 'node:dgram'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {after, before, describe, it} from 'node:test'

import {ControlClient} from '../../../src/lib/control/client.js'
import {ControlServer} from '../../../src/lib/control/server.js'
import {CstpType} from '../../../src/lib/cstp/constants.js'
import {CstpDecoder} from '../../../src/lib/cstp/decoder.js'
import {encodeCstpFrame} from '../../../src/lib/cstp/encoder.js'
import {resolveConfig} from '../../../src/lib/config/schema.js'
import {AnygateError} from '../../../src/lib/errors.js'
import {Gateway} from '../../../src/lib/gateway/server.js'
import {noopLogger} from '../../../src/lib/log/logger.js'
import {ensureServerCert} from '../../../src/lib/pki/server-cert.js'
import {type MemoryTun, memoryTunFactory} from '../../../src/lib/tun/memory.js'

let dir: string
let gateway: Gateway
let port: number
let control: ControlServer
let client: ControlClient
const tuns: MemoryTun[] = []

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-ctl-'))
  const cert = await ensureServerCert(dir, noopLogger)
  gateway = new Gateway({
    config: resolveConfig({}, {listen: '127.0.0.1:0', 'ipv4-pool': '198.19.10.0/24'}),
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    users: {verify: async (u: string, p: string) => (p === 'pw' ? {ok: true, groups: []} : {ok: false, reason: 'bad-password'})},
    log: noopLogger,
    version: '9.9.9-test',
    tun: memoryTunFactory(tuns),
  })
  port = (await gateway.listen()).port
  const socket = path.join(dir, 'control.sock')
  control = new ControlServer({path: socket, gateway, version: '9.9.9-test', listen: [{transport: 'tcp', host: '127.0.0.1', port}], log: noopLogger})
  await control.start()
  client = new ControlClient(socket)
})

after(async () => {
  await control?.stop()
  await gateway?.stop(500)
  fs.rmSync(dir, {recursive: true, force: true})
})

/** Logs `user` in and opens a tunnel; resolves with the TLS socket and the frames it receives. */
async function tunnelFor(user: string) {
  const s = tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false})
  s.on('error', () => {})
  let text = ''
  const frames: number[] = []
  let decoder: CstpDecoder | undefined
  s.on('data', (c: Buffer) => {
    if (decoder) return decoder.push(c)
    text += c.toString('latin1')
  })
  const until = async (re: RegExp) => {
    const end = Date.now() + 3000
    while (!re.test(text) && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    assert.match(text, re)
  }

  const body = `<?xml version="1.0"?><config-auth client="vpn" type="auth-reply"><auth><username>${user}</username><password>pw</password></auth></config-auth>`
  s.write(`POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await until(/<\/config-auth>/)
  const cookie = /webvpn=([^;]+);/.exec(text)![1]
  text = ''
  s.write(`CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nHost: gw\r\nCookie: webvpn=${cookie}\r\nX-CSTP-Base-MTU: 1500\r\n\r\n`)
  await until(/\r\n\r\n/)
  assert.match(text, /^HTTP\/1.1 200 CONNECTED/)
  decoder = new CstpDecoder(2000, (type) => frames.push(type))
  const closed = new Promise<void>((r) => s.on('close', () => r()))
  return {socket: s, frames, cookie, closed, address: /X-CSTP-Address: (\S+)/.exec(text)![1]}
}

const packet = Buffer.concat([Buffer.from('450000200000400040110000c6130a02c6130a01', 'hex'), Buffer.alloc(12)])

async function rejection(p: Promise<unknown>): Promise<AnygateError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof AnygateError, String(err))
    return err
  }

  return assert.fail('expected a rejection')
}

function rawGet(method: string, urlPath: string): Promise<{status: number; body: {error?: {code: string}}}> {
  return new Promise((resolve, reject) => {
    const req = http.request({socketPath: control.path, method, path: urlPath}, (res) => {
      let b = ''
      res.on('data', (c) => (b += c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: JSON.parse(b)}))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('ControlServer and ControlClient', () => {
  it('makes the socket 0600', () => {
    assert.equal(fs.statSync(control.path).mode & 0o777, 0o600)
  })

  it('reports status with pool use and listeners', async () => {
    const st = await client.status()
    assert.equal(st.version, '9.9.9-test')
    assert.equal(st.pid, process.pid)
    assert.deepEqual(st.listen, [{transport: 'tcp', host: '127.0.0.1', port}])
    assert.deepEqual(st.pools.ipv4, {cidr: '198.19.10.0/24', used: 0, size: 253})
    assert.equal(st.pools.ipv6, null)
    assert.deepEqual(st.dtls, {drops: {}, sendDropped: 0})
  })

  it('counts datagrams the DTLS port dropped, by code', async () => {
    const udp = dgram.createSocket('udp4')
    try {
      const junk = Buffer.from('17fefd000100000000000100', 'hex') // a record header cut short
      await new Promise<void>((r) => udp.send(junk, gateway.udp!.port, '127.0.0.1', () => r()))
      const end = Date.now() + 2000
      while (!(await client.status()).dtls?.drops.DTLS_RECORD_TOO_SHORT && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
      assert.equal((await client.status()).dtls?.drops.DTLS_RECORD_TOO_SHORT, 1)
    } finally {
      udp.close()
    }
  })

  it('lists a tunnel with its address and counts its packets both ways', async () => {
    const t = await tunnelFor('carol')
    const [s] = (await client.sessions()).filter((x) => x.user === 'carol')
    assert.equal(s.ipv4, t.address)
    assert.equal(s.state, 'connected')
    assert.equal(s.device, tuns.at(-1)!.name)
    assert.ok(!('cookieDigest' in s), 'the cookie digest must not leave the server')
    assert.equal(JSON.stringify(await client.sessions()).includes(t.cookie), false)

    t.socket.write(encodeCstpFrame(CstpType.Data, packet))
    t.socket.write(encodeCstpFrame(CstpType.Data, packet))
    tuns.at(-1)!.inject(packet)
    const end = Date.now() + 2000
    let now = await client.session(s.id)
    while ((now.packetsIn < 2 || now.packetsOut < 1) && Date.now() < end) now = await client.session(s.id)
    assert.equal(now.packetsIn, 2)
    assert.equal(now.bytesIn, 2 * packet.length)
    assert.equal(now.packetsOut, 1)
    assert.equal(now.bytesOut, packet.length)
    t.socket.destroy()
  })

  it('disconnects by id: DISCONNECT sent, cookie dead, address freed', async () => {
    const t = await tunnelFor('dave')
    const s = (await client.sessions()).find((x) => x.user === 'dave')!
    const used = (await client.status()).pools.ipv4.used

    const r = await client.disconnectSession(s.id)
    assert.deepEqual(r.disconnected.map((x) => x.id), [s.id])
    await t.closed
    assert.ok(t.frames.includes(CstpType.Disconnect), `frames ${t.frames}`)
    assert.equal((await client.status()).pools.ipv4.used, used - 1)
    assert.equal(gateway.sessions.findByCookie(t.cookie), undefined)
    assert.equal((await rejection(client.session(s.id))).code, 'CONTROL_NO_SESSION')
  })

  it('disconnects every session of a user and only theirs', async () => {
    const [a, b, other] = [await tunnelFor('erin'), await tunnelFor('erin'), await tunnelFor('frank')]
    const r = await client.disconnectUser('erin')
    assert.equal(r.disconnected.length, 2)
    await Promise.all([a.closed, b.closed])
    const left = (await client.sessions()).map((x) => x.user)
    assert.ok(left.includes('frank') && !left.includes('erin'), left.join(','))
    assert.equal(other.socket.destroyed, false)
    assert.equal((await rejection(client.disconnectUser('nobody'))).code, 'CONTROL_NO_SESSION')
    other.socket.destroy()
  })

  it('lists failed-login scores and lifts a ban', async () => {
    // Two wrong passwords from 127.0.0.1 score 20 of the default 80: listed, not banned
    for (let i = 0; i < 2; i++) {
      const s = tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false})
      s.on('error', () => {})
      const body = '<?xml version="1.0"?><config-auth client="vpn" type="auth-reply"><auth><username>eve</username><password>no</password></auth></config-auth>'
      s.write(`POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      await new Promise<void>((resolve) => s.once('data', () => resolve()))
      s.destroy()
    }

    const [entry] = await client.bans()
    assert.deepEqual([entry.address, entry.score, entry.banned], ['127.0.0.1', 20, false])
    assert.deepEqual((await client.status()).bans, {scored: 1, banned: 0})
    assert.deepEqual(await client.removeBan('127.0.0.1'), {removed: '127.0.0.1'})
    assert.deepEqual(await client.bans(), [])
    assert.equal((await rejection(client.removeBan('127.0.0.1'))).code, 'CONTROL_NO_BAN')
    assert.equal((await rejection(client.removeBan('not-an-address'))).code, 'CONTROL_BAD_ADDRESS')
  })

  it('answers another version, an unknown path and a wrong method with coded errors', async () => {
    assert.deepEqual(await rawGet('GET', '/v2/status').then((r) => [r.status, r.body.error?.code]), [404, 'CONTROL_BAD_VERSION'])
    assert.deepEqual(await rawGet('GET', '/v1/nope').then((r) => [r.status, r.body.error?.code]), [404, 'CONTROL_NOT_FOUND'])
    assert.deepEqual(await rawGet('POST', '/v1/status').then((r) => [r.status, r.body.error?.code]), [405, 'CONTROL_BAD_METHOD'])
    assert.deepEqual(await rawGet('GET', '/v1/sessions/%E0%A4%A').then((r) => [r.status, r.body.error?.code]), [400, 'CONTROL_BAD_PATH'])
    assert.equal((await client.status()).protocol, 1)
  })

  it('refuses to start where another serve answers', async () => {
    const second = new ControlServer({path: control.path, gateway, version: 'x', listen: [], log: noopLogger})
    await assert.rejects(second.start(), {code: 'CONTROL_SOCKET_BUSY'})
    assert.equal((await client.status()).version, '9.9.9-test')
  })

  it('replaces a socket left by a serve that died, and the client says nothing runs there', async () => {
    const file = path.join(dir, 'stale.sock')
    // A process that binds and is killed never removes its socket file.
    const script = `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`
    spawnSync(process.execPath, ['-e', script])
    assert.ok(fs.lstatSync(file).isSocket())

    const e = await rejection(new ControlClient(file).status())
    assert.equal(e.code, 'CONTROL_NOT_RUNNING')
    assert.match(e.message, /not running: nothing answers/)

    const fresh = new ControlServer({path: file, gateway, version: 'fresh', listen: [], log: noopLogger})
    await fresh.start()
    assert.equal((await new ControlClient(file).status()).version, 'fresh')
    await fresh.stop()
    assert.equal(fs.existsSync(file), false)
  })

  it('will not remove a file that is not a socket, nor use a path too long', async () => {
    const file = path.join(dir, 'plain')
    fs.writeFileSync(file, 'keep me')
    await assert.rejects(new ControlServer({path: file, gateway, version: 'x', listen: [], log: noopLogger}).start(), {code: 'CONTROL_SOCKET_PATH'})
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me')

    const long = path.join(dir, 'x'.repeat(120))
    await assert.rejects(new ControlServer({path: long, gateway, version: 'x', listen: [], log: noopLogger}).start(), {code: 'CONTROL_SOCKET_PATH'})
  })

  it('says serve is not running when there is no socket', async () => {
    const e = await rejection(new ControlClient(path.join(dir, 'absent.sock')).sessions())
    assert.equal(e.code, 'CONTROL_NOT_RUNNING')
  })
})
