/**
 * The gateway over real TLS on 127.0.0.1 with the in-memory TUN: login, CONNECT, frames both
 * ways, cookies, and hostile input that must end only its own connection.
 */
import assert from 'node:assert/strict'
import {X509Certificate} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import {after, before, describe, it} from 'node:test'

import {CstpType} from '../../../src/lib/cstp/constants.js'
import {CstpDecoder} from '../../../src/lib/cstp/decoder.js'
import {encodeCstpFrame, encodeDisconnect} from '../../../src/lib/cstp/encoder.js'
import {resolveConfig} from '../../../src/lib/config/schema.js'
import {Gateway, type GatewayOptions} from '../../../src/lib/gateway/server.js'
import type {VerifyResult} from '../../../src/lib/http-auth/login.js'
import {noopLogger} from '../../../src/lib/log/logger.js'
import {ensureServerCert} from '../../../src/lib/pki/server-cert.js'
import {type MemoryTun, createMemoryTun, memoryTunFactory} from '../../../src/lib/tun/memory.js'

const tuns: MemoryTun[] = []
let gateway: Gateway
let port: number
let dir: string
let gatewayOptions: GatewayOptions
const baseFlags = {listen: '127.0.0.1:0', 'ipv4-pool': '198.19.9.0/24', 'max-body-bytes': 4096, 'max-header-bytes': 4096}

const users = {
  async verify(user: string, password: string): Promise<VerifyResult> {
    return user === 'alice' && password === 'secret' ? {ok: true, groups: []} : {ok: false, reason: 'bad-password'}
  },
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-gw-'))
  const cert = await ensureServerCert(dir, noopLogger)
  gatewayOptions = {
    config: resolveConfig({}, baseFlags),
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    users,
    log: noopLogger,
    version: '0.0.0-test',
    tun: memoryTunFactory(tuns),
  }
  gateway = new Gateway(gatewayOptions)
  port = (await gateway.listen()).port
})

after(async () => {
  await gateway?.stop(500)
  fs.rmSync(dir, {recursive: true, force: true})
})

/** A raw TLS client: send bytes, read what comes back until the server closes or a pattern. */
class Client {
  readonly socket: tls.TLSSocket
  data = Buffer.alloc(0)
  closed: Promise<void>

  constructor(toPort = port) {
    this.socket = tls.connect({port: toPort, host: '127.0.0.1', rejectUnauthorized: false})
    this.socket.on('data', (c: Buffer) => {
      this.data = Buffer.concat([this.data, c])
    })
    this.socket.on('error', () => {})
    this.closed = new Promise((r) => this.socket.on('close', () => r()))
  }

  async request(method: string, url: string, body = '', headers: Record<string, string> = {}) {
    this.data = Buffer.alloc(0)
    const h = Object.entries({...headers, 'Content-Length': String(Buffer.byteLength(body))})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')
    this.socket.write(`${method} ${url} HTTP/1.1\r\nHost: gw\r\n${h}\r\n${body}`)
    return this.waitFor(method === 'CONNECT' ? /\r\n\r\n/ : /\r\n\r\n[\s\S]*<\/config-auth>\n?$|Content-Length: 0\r\n\r\n$/)
  }

  async waitFor(re: RegExp, ms = 3000): Promise<string> {
    const end = Date.now() + ms
    while (!re.test(this.data.toString('latin1'))) {
      if (Date.now() > end || this.socket.destroyed) break
      await new Promise((r) => setTimeout(r, 10))
    }

    return this.data.toString('latin1')
  }
}

const loginBody = (pw: string) =>
  `<?xml version="1.0"?><config-auth client="vpn" type="auth-reply"><auth><username>alice</username><password>${pw}</password></auth></config-auth>`

async function login(): Promise<string> {
  const c = new Client()
  const text = await c.request('POST', '/', loginBody('secret'))
  c.socket.destroy()
  const m = /Set-Cookie: webvpn=([^;]+);/.exec(text)
  assert.ok(m, 'no webvpn cookie in ' + text.slice(0, 300))
  return m[1]
}

async function connect(cookie: string) {
  const c = new Client()
  const head = await c.request('CONNECT', '/CSCOSSLC/tunnel', '', {Cookie: `webvpn=${cookie}`, 'X-CSTP-Base-MTU': '1500'})
  return {c, head}
}

const ipv4 = (n: number) => Buffer.concat([Buffer.from('450000200000400040110000c6130902c6130901', 'hex'), Buffer.alloc(12, n)])

describe('Gateway', () => {
  it('serves the login form on GET /', async () => {
    const c = new Client()
    const text = await c.request('GET', '/')
    assert.match(text, /^HTTP\/1.1 200/)
    assert.match(text, /X-Transcend-Version: 1/)
    assert.match(text, /type="auth-request"/)
    c.socket.destroy()
  })

  it('logs in, connects, and moves packets both ways', async () => {
    const cookie = await login()
    const {c, head} = await connect(cookie)
    assert.match(head, /^HTTP\/1.1 200 CONNECTED\r\n/)
    assert.match(head, /X-CSTP-Address: 198\.19\.9\.\d+\r\n/)
    assert.match(head, /X-CSTP-MTU: \d+\r\n/)
    const tun = tuns.at(-1)!

    // client → TUN
    c.socket.write(encodeCstpFrame(CstpType.Data, ipv4(1)))
    const end = Date.now() + 2000
    while (tun.written.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    assert.deepEqual(tun.written[0], ipv4(1))

    // TUN → client, one frame; DPD echoed with its payload
    const frames: [number, string][] = []
    const dec = new CstpDecoder(2000, (t, p) => frames.push([t, p.toString('hex')]))
    c.data = Buffer.alloc(0)
    tun.inject(ipv4(2))
    c.socket.write(encodeCstpFrame(CstpType.DpdRequest, Buffer.from('probe')))
    await c.waitFor(/probe/)
    dec.push(c.data)
    assert.deepEqual(frames, [
      [CstpType.Data, ipv4(2).toString('hex')],
      [CstpType.DpdResponse, Buffer.from('probe').toString('hex')],
    ])
    const session = gateway.sessions.all().find((s) => s.tunnel)!
    assert.ok(session.bytesIn >= 32 && session.bytesOut >= 32)
    c.socket.write(encodeDisconnect(0xb0, 'Aborted by caller'))
    await c.closed
  })

  it('refuses the cookie after a user logout (0xb0)', async () => {
    const cookie = await login()
    const first = await connect(cookie)
    first.c.socket.write(encodeDisconnect(0xb0, 'bye'))
    await first.c.closed
    const again = await connect(cookie)
    assert.match(again.head, /^HTTP\/1.1 401 /)
  })

  it('keeps the cookie and the address after a dropped connection', async () => {
    const cookie = await login()
    const first = await connect(cookie)
    const addr = /X-CSTP-Address: (\S+)/.exec(first.head)![1]
    first.c.socket.destroy()
    await new Promise((r) => setTimeout(r, 100))
    const again = await connect(cookie)
    assert.match(again.head, /^HTTP\/1.1 200 CONNECTED/)
    assert.equal(/X-CSTP-Address: (\S+)/.exec(again.head)![1], addr)
    again.c.socket.destroy()
  })

  it("serves the downloader's pages as ocserv does, and 404 for others on the same connection", async () => {
    const c = new Client()
    const get = async (path: string, until: RegExp) => {
      c.socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\n\r\n`)
      c.data = Buffer.alloc(0)
      return c.waitFor(until)
    }

    assert.match(await get('/1/Windows', /<\/html>\n$/), /^HTTP\/1.1 200 [\s\S]*Content-Type: text\/html/)
    assert.match(await get('/+CSCOT+/', /<\/vpn>\n$/), /^HTTP\/1.1 200 [\s\S]*<vpn rev="1.0">/)
    assert.match(await get('/1/binaries/vpndownloader.sh', /exit 0\n$/), /Content-Type: application\/x-shellscript/)
    const missing = await get('/+CSCOT+/translation-table?type=po&textdomain=AnyConnect&lang=en-us', /\r\n\r\n/)
    assert.match(missing, /^HTTP\/1.1 404 /)
    // Still open: a Cisco client goes on to log in on it
    assert.match(await c.request('POST', '/', loginBody('secret')), /Set-Cookie: webvpn=/)
    c.socket.destroy()
  })

  it('answers 401 for an unknown cookie and 503 for none', async () => {
    const bad = await connect(Buffer.alloc(32).toString('base64'))
    assert.match(bad.head, /^HTTP\/1.1 401 Cookie is not acceptable/)
    const c = new Client()
    const none = await c.request('CONNECT', '/CSCOSSLC/tunnel')
    assert.match(none, /^HTTP\/1.1 503 /)
  })

  it('asks again after a wrong password', async () => {
    const c = new Client()
    const text = await c.request('POST', '/', loginBody('wrong'))
    assert.match(text, /Login failed/)
    assert.doesNotMatch(text, /webvpn=/)
    c.socket.destroy()
  })

  it('ends a silent tunnel by DPD and frees its address after the cookie timeout', async () => {
    const fast = new Gateway({...gatewayOptions, config: resolveConfig({}, {...baseFlags, dpd: 1, 'cookie-timeout': 1})})
    const fastPort = (await fast.listen()).port
    try {
      const c1 = new Client(fastPort)
      const text = await c1.request('POST', '/', loginBody('secret'))
      const cookie = /Set-Cookie: webvpn=([^;]+);/.exec(text)![1]
      const c = new Client(fastPort)
      const head = await c.request('CONNECT', '/CSCOSSLC/tunnel', '', {Cookie: `webvpn=${cookie}`})
      assert.match(head, /200 CONNECTED/)
      assert.equal(fast.pool4.inUse, 1)
      // The client says nothing: DPD requests come, then the tunnel ends after 3×DPD.
      await c.closed
      assert.match(c.data.toString('hex'), /5354460100000300/)
      // Cookie timeout 1 s, swept every second: poll instead of one fixed sleep (CI may be busy)
      const end = Date.now() + 10_000
      while (fast.pool4.inUse > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
      assert.equal(fast.pool4.inUse, 0)
      assert.equal(fast.sessions.size, 0)
    } finally {
      await fast.stop(200)
    }
  })

  it('leases an IPv6 address to a full-IPv6 client when a pool is set', async () => {
    const configured: unknown[] = []
    const v6 = new Gateway({
      ...gatewayOptions,
      config: resolveConfig({}, {...baseFlags, 'ipv6-pool': '2001:2:0:9::/64'}),
      tun: {open: () => createMemoryTun('vpns9', 8), configure: async (_n, cfg) => void configured.push(cfg)},
    })
    const v6Port = (await v6.listen()).port
    try {
      const c1 = new Client(v6Port)
      const cookie = /Set-Cookie: webvpn=([^;]+);/.exec(await c1.request('POST', '/', loginBody('secret')))![1]
      const c = new Client(v6Port)
      const head = await c.request('CONNECT', '/CSCOSSLC/tunnel', '', {
        Cookie: `webvpn=${cookie}`,
        'X-CSTP-Address-Type': 'IPv6,IPv4',
        'X-CSTP-Full-IPv6-Capability': 'true',
      })
      assert.match(head, /X-CSTP-Address-IP6: 2001:2:0:9::2\/64\r\n/)
      assert.match(head, /X-CSTP-Address: 198\.19\.9\.2\r\n/)
      assert.deepEqual(configured[0], {
        localV4: '198.19.9.1',
        peerV4: '198.19.9.2',
        mtu: Number(/X-CSTP-MTU: (\d+)/.exec(head)![1]),
        localV6: '2001:2:0:9::1',
        peerV6: '2001:2:0:9::2',
        prefixV6: 128,
      })
      c.socket.destroy()
    } finally {
      await v6.stop(200)
    }
  })

  describe('hostile input ends only its own connection', () => {
    const stillServes = async () => {
      const c = new Client()
      const text = await c.request('GET', '/')
      c.socket.destroy()
      assert.match(text, /^HTTP\/1.1 200/)
    }

    it('random bytes instead of HTTP', async () => {
      const c = new Client()
      c.socket.write(Buffer.from('9f3a00ffe1c2\r\n\r\n\x00\x01garbage', 'latin1'))
      await c.closed
      await stillServes()
    })

    it('an oversized body', async () => {
      const c = new Client()
      const text = await c.request('POST', '/', 'x'.repeat(10_000))
      assert.match(text, /^HTTP\/1.1 413 /)
      await stillServes()
    })

    it('a header flood', async () => {
      const c = new Client()
      const flood = Object.fromEntries(Array.from({length: 200}, (_, i) => [`X-Flood-${i}`, 'y'.repeat(50)]))
      const text = await c.request('GET', '/', '', flood)
      assert.match(text, /^HTTP\/1.1 431 /)
      await stillServes()
    })

    it('entity expansion in the login XML', async () => {
      const c = new Client()
      const bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><config-auth type="auth-reply"><auth><username>&b;</username></auth></config-auth>'
      const text = await c.request('POST', '/', bomb)
      assert.match(text, /^HTTP\/1.1 400 /)
      await stillServes()
    })

    it('an invalid CSTP frame inside a tunnel', async () => {
      const cookie = await login()
      const {c} = await connect(cookie)
      c.socket.write(Buffer.from('53544601ffff0000', 'hex'))
      await c.closed
      await stillServes()
    })
  })

  describe('a new certificate (SIGHUP)', () => {
    it('is served to new connections and hashed at login; a pair that does not match changes nothing', async () => {
      const gw = new Gateway({...gatewayOptions})
      const gwPort = (await gw.listen()).port
      const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-gw2-'))
      try {
        const served = async () => {
          const c = new Client(gwPort)
          await new Promise((r) => c.socket.once('secureConnect', r))
          const fp = c.socket.getPeerX509Certificate()!.fingerprint
          c.socket.destroy()
          return fp
        }
        const sha1Of = (pem: string) => new X509Certificate(pem).fingerprint.replace(/:/g, '')
        const before = await served()
        assert.equal(before, new X509Certificate(gatewayOptions.certPem).fingerprint)

        const next = await ensureServerCert(otherDir, noopLogger)
        assert.throws(() => gw.setCertificate(next.certPem, gatewayOptions.keyPem), {code: 'CERT_BAD_PAIR'})
        assert.equal(await served(), before)

        assert.equal(gw.setCertificate(next.certPem, next.keyPem), true)
        assert.equal(gw.setCertificate(next.certPem, next.keyPem), false)
        assert.equal(await served(), new X509Certificate(next.certPem).fingerprint)
        const c = new Client(gwPort)
        const text = await c.request('POST', '/', loginBody('secret'))
        assert.ok(text.includes(`<server-cert-hash>${sha1Of(next.certPem)}</server-cert-hash>`), text)
        c.socket.destroy()
      } finally {
        await gw.stop(500)
        fs.rmSync(otherDir, {recursive: true, force: true})
      }
    })
  })

  describe('ban scoring', () => {
    it('bans an address after failed logins, drops its connections, and lets it in once lifted', async () => {
      const config = resolveConfig({}, {...baseFlags, 'max-ban-score': 20, 'ban-points-wrong-password': 10})
      const gw = new Gateway({...gatewayOptions, config})
      const gwPort = (await gw.listen()).port
      try {
        // A second connection, open before the ban, gets no more tries after it
        const early = new Client(gwPort)
        assert.match(await early.request('POST', '/', loginBody('wrong')), /Login failed/)
        const c1 = new Client(gwPort)
        // The second failure reaches the score: 401 and the connection closed
        assert.match(await c1.request('POST', '/', loginBody('wrong')), /^HTTP\/1.1 401 /)
        await c1.closed
        assert.match(await early.request('POST', '/', loginBody('secret')), /^HTTP\/1.1 401 /)
        await early.closed
        assert.deepEqual(gw.bans.list().map((b) => [b.address, b.score, b.banned]), [['127.0.0.1', 20, true]])

        // A new connection from the address ends before any TLS handshake
        const c2 = new Client(gwPort)
        const outcome = await new Promise<string>((resolve) => {
          c2.socket.once('secureConnect', () => resolve('handshake'))
          c2.socket.once('error', () => resolve('refused'))
          c2.socket.once('close', () => resolve('refused'))
        })
        assert.equal(outcome, 'refused')

        assert.equal(gw.bans.remove('127.0.0.1'), true)
        const c3 = new Client(gwPort)
        assert.match(await c3.request('POST', '/', loginBody('secret')), /Set-Cookie: webvpn=/)
        c3.socket.destroy()
      } finally {
        await gw.stop(500)
      }
    })
  })
})
