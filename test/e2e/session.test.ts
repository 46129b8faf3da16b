/**
 * Issue "session": two real openconnect clients on `anygate serve` in network namespaces, seen
 * and ended through the control socket with `anygate session …` and `anygate status`; SIGHUP
 * reloads without dropping anyone; SIGTERM leaves no interface behind.
 */
import assert from 'node:assert/strict'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {SessionInfo, StatusInfo} from '../../src/lib/control/protocol.js'
import {ensureBuilt, runCli} from '../commands/cli.js'
import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import type {GatewayHandle} from './harness/ocserv.js'
import {type OpenconnectHandle, type TunnelInfo, authenticateOnly, pinSha256, startOpenconnect} from './harness/openconnect.js'
import {skipUnlessReady, waitFor} from './harness/wait.js'

const skip = skipUnlessReady(['ip', 'openconnect', 'ocpasswd', 'ping'])


describe('anygate session and status against a running serve', {skip}, () => {
  let net: TestNet
  let gw: GatewayHandle
  let socket: string
  let configFile: string
  const clients: OpenconnectHandle[] = []
  let alice: {oc: OpenconnectHandle; tunnel: TunnelInfo; cookie: string}
  let bob: {oc: OpenconnectHandle; tunnel: TunnelInfo}
  let reconnectWithAliceCookie: (c: string) => Promise<OpenconnectHandle>

  /** `anygate ARGS… --control-socket <serve's>`, parsed when `--json` is among ARGS. */
  const cli = (...args: string[]) => runCli([...args, '--control-socket', socket])
  async function json<T>(...args: string[]): Promise<T> {
    const r = await cli(...args, '--json')
    assert.equal(r.code, 0, `anygate ${args.join(' ')} failed:\n${r.stderr}`)
    return JSON.parse(r.stdout) as T
  }

  const serverTuns = async () => (await net.listLinks(net.server)).filter((l) => /^vpns\d+$/.test(l))
  const ping = (tun: string, count = 1) =>
    net.exec(net.client, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', '-I', tun, gw.tunnelAddress], {allowFailure: true})
  const bySession = (list: SessionInfo[], user: string) => list.find((s) => s.user === user && s.state === 'connected')

  before(async () => {
    ensureBuilt()
    net = await createTestNet()
    configFile = join(net.dir, 'anygate.conf')
    writeFileSync(configFile, 'banner = first banner\ncookie-timeout = 300\n')
    gw = await startAnygate(net, {
      users: [
        {name: 'alice', password: 'alice pw'},
        {name: 'bob', password: 'bob pw'},
      ],
      extraArgs: ['--config', configFile],
    })
    socket = join(net.dir, 'anygate', 'state', 'control.sock')

    // alice logs in first and connects with her cookie, so the test can try it again later.
    const auth = await authenticateOnly(net, {url: gw.url, user: 'alice', password: 'alice pw', servercert: gw.servercert})
    assert.equal(auth.code, 0, auth.output)
    const cookie = /COOKIE='([^']+)'/.exec(auth.output)?.[1]
    assert.ok(cookie, 'no cookie from openconnect --authenticate')
    const withCookie = (c: string) =>
      startOpenconnect(net, {url: gw.url, user: 'alice', password: '', servercert: gw.servercert, dtls: false, extraArgs: ['--cookie', c]})
    const a = await withCookie(cookie)
    const b = await startOpenconnect(net, {url: gw.url, user: 'bob', password: 'bob pw', servercert: gw.servercert, dtls: false})
    clients.push(a, b)
    alice = {oc: a, tunnel: await a.waitForConnected(15_000), cookie}
    bob = {oc: b, tunnel: await b.waitForConnected(15_000)}
    reconnectWithAliceCookie = withCookie
  })

  after(async () => {
    await Promise.all(clients.map((c) => c.stop()))
    await net?.destroy()
  })

  it('creates the control socket with mode 0600', async () => {
    const {statSync} = await import('node:fs')
    const st = statSync(socket)
    assert.ok(st.isSocket())
    assert.equal(st.mode & 0o777, 0o600)
  })

  it('lists both clients with the right addresses, devices and client details', async () => {
    const list = await json<SessionInfo[]>('session', 'list')
    const a = bySession(list, 'alice')
    const b = bySession(list, 'bob')
    assert.ok(a && b, JSON.stringify(list))
    assert.equal(a.ipv4, alice.tunnel.address)
    assert.equal(b.ipv4, bob.tunnel.address)
    assert.notEqual(a.ipv4, b.ipv4)

    const tuns = await serverTuns()
    for (const s of [a, b]) {
      assert.equal(s.remoteAddress.replace(/^::ffff:/, ''), net.client.address)
      assert.match(s.userAgent, /AnyConnect/)
      assert.ok(s.device && tuns.includes(s.device), `${s.device} not among ${tuns.join(',')}`)
      assert.equal(s.dtls, false)
      assert.equal(new Date(s.connectedAt).toISOString(), s.connectedAt)
      assert.ok(Date.now() - Date.parse(s.connectedAt) < 120_000)
      assert.equal(s.ipv6, null)
    }

    assert.equal(a.mtu, alice.tunnel.mtu)
    assert.notEqual(a.device, b.device)

    const table = await cli('session', 'list')
    assert.equal(table.code, 0, table.stderr)
    const lines = table.stdout.trimEnd().split('\n')
    assert.match(lines[0], /^ID\s+USER\s+VPN-IP/)
    assert.ok(lines.some((l) => l.includes(a.id) && l.includes('alice') && l.includes(alice.tunnel.address)), table.stdout)
    assert.ok(lines.some((l) => l.includes(b.id) && l.includes('bob') && l.includes(bob.tunnel.address)), table.stdout)
    for (const l of lines) assert.ok(l.length <= 80, `wider than 80 columns: ${l}`)
  })

  it('counts bytes and packets on the data path: they grow after a ping', async () => {
    const before = bySession(await json<SessionInfo[]>('session', 'list'), 'alice')
    assert.ok(before)
    const r = await ping(alice.tunnel.tunDev, 5)
    assert.match(r.stdout, /5 received/)

    const now = await json<SessionInfo>('session', 'show', before.id)
    assert.ok(now.packetsIn >= before.packetsIn + 5, `packetsIn ${before.packetsIn} → ${now.packetsIn}`)
    assert.ok(now.packetsOut >= before.packetsOut + 5, `packetsOut ${before.packetsOut} → ${now.packetsOut}`)
    // An ICMP echo with the default 56-byte payload is 84 bytes of IPv4.
    assert.ok(now.bytesIn >= before.bytesIn + 5 * 84, `bytesIn ${before.bytesIn} → ${now.bytesIn}`)
    assert.ok(now.bytesOut >= before.bytesOut + 5 * 84, `bytesOut ${before.bytesOut} → ${now.bytesOut}`)

    const human = await cli('session', 'show', before.id)
    assert.match(human.stdout, new RegExp(`ipv4\\s+${now.ipv4?.replace(/\./g, '\\.')}`))
  })

  it('reports status: version, listener, sessions and pool use', async () => {
    const st = await json<StatusInfo>('status')
    assert.match(st.version, /^\d+\.\d+\.\d+/)
    assert.equal(st.protocol, 1)
    assert.deepEqual(st.listen, [{transport: 'tcp', host: net.server.address, port: 443}])
    assert.equal(st.sessions.connected, 2)
    assert.equal(st.pools.ipv4.cidr, net.pool.cidr)
    assert.equal(st.pools.ipv4.used, 2)
    assert.equal(st.pools.ipv4.size, 253)
    assert.ok(st.uptimeSeconds >= 0 && st.uptimeSeconds < 600)

    const human = await cli('status')
    assert.match(human.stdout, /sessions\s+\d+ \(2 with a tunnel up\)/)
  })

  it('reloads on SIGHUP without dropping a session, naming what needs a restart', async () => {
    const ids = (await json<SessionInfo[]>('session', 'list')).map((s) => s.id).sort()
    writeFileSync(configFile, 'banner = second banner\ncookie-timeout = 600\n')
    const usersReloads = () => (gw.log().match(/users file reloaded/g) ?? []).length
    const reloadsBefore = usersReloads()
    process.kill(gw.pid, 'SIGHUP')

    await waitFor('config reloaded', () => /config reloaded changed=banner/.test(gw.log()))
    assert.match(gw.log(), /WARN  setting needs a restart setting=cookie-timeout/)
    await waitFor('users file reloaded', () => usersReloads() > reloadsBefore)
    assert.deepEqual((await json<SessionInfo[]>('session', 'list')).map((s) => s.id).sort(), ids)
    assert.match((await ping(alice.tunnel.tunDev)).stdout, /1 received/)
    assert.match((await ping(bob.tunnel.tunDev)).stdout, /1 received/)
    assert.equal(alice.oc.process.hasExited || bob.oc.process.hasExited, false)
  })

  it('disconnects a user: that client exits, its cookie dies, its interface and address go', async () => {
    const list = await json<SessionInfo[]>('session', 'list')
    const a = bySession(list, 'alice')
    assert.ok(a?.device)

    const r = await json<{disconnected: SessionInfo[]}>('session', 'disconnect', '--user', 'alice')
    assert.deepEqual(
      r.disconnected.map((s) => s.id),
      list.filter((s) => s.user === 'alice').map((s) => s.id),
    )

    await Promise.race([alice.oc.exited, sleep(10_000).then(() => assert.fail('alice did not exit'))])
    assert.match(alice.oc.log(), /Received server disconnect|Server request/)
    await waitFor('alice interface removed', async () => !(await serverTuns()).includes(a.device ?? ''))

    const after = await json<SessionInfo[]>('session', 'list')
    assert.deepEqual(after.map((s) => s.user), ['bob'])
    assert.equal((await json<StatusInfo>('status')).pools.ipv4.used, 1)
    assert.match(gw.log(), /tunnel down .*user=alice .*reason="admin disconnect"/)

    // bob is untouched.
    assert.match((await ping(bob.tunnel.tunDev, 3)).stdout, /3 received/)

    // The cookie alice connected with is refused now.
    const again = await reconnectWithAliceCookie(alice.cookie)
    clients.push(again)
    const ended = await Promise.race([again.exited, sleep(20_000).then(() => undefined)])
    assert.ok(ended, 'openconnect with a dead cookie kept running')
    assert.notEqual(ended.code, 0)
    assert.match(gw.log(), /tunnel refused .*reason="cookie not acceptable"/)

    const gone = await cli('session', 'show', a.id)
    assert.notEqual(gone.code, 0)
    assert.match(gone.stderr, /no session/)
  })

  it('serves a renewed certificate after SIGHUP to new logins, keeping the tunnel up', async () => {
    // serve's own pair removed: on SIGHUP serve issues a new one from its CA, as when it renews
    const stateDir = join(net.dir, 'anygate', 'state')
    rmSync(join(stateDir, 'server.pem'))
    rmSync(join(stateDir, 'server.key'))
    const oldPin = gw.servercert
    process.kill(gw.pid, 'SIGHUP')
    await waitFor('certificate reloaded', () => /certificate reloaded/.test(gw.log()))
    const newPin = pinSha256(readFileSync(join(stateDir, 'server.pem'), 'utf8'))
    assert.notEqual(newPin, oldPin)
    const reloaded = gw.log().split('\n').find((l) => l.includes('certificate reloaded'))
    assert.ok(reloaded?.includes(`pin="${newPin}"`), reloaded)

    const withNew = await authenticateOnly(net, {url: gw.url, user: 'bob', password: 'bob pw', servercert: newPin})
    assert.equal(withNew.code, 0, withNew.output)
    const withOld = await authenticateOnly(net, {url: gw.url, user: 'bob', password: 'bob pw', servercert: oldPin})
    assert.notEqual(withOld.code, 0, withOld.output)
    assert.match((await ping(bob.tunnel.tunDev)).stdout, /1 received/)

    // The login above left a session that never connected; end it so later tests see two
    const extra = (await json<SessionInfo[]>('session', 'list')).filter((x) => x.state !== 'connected')
    assert.equal(extra.length, 1, JSON.stringify(extra))
    assert.equal((await cli('session', 'disconnect', extra[0].id)).code, 0)
  })

  it('on SIGTERM disconnects every client, removes every interface and its socket', async () => {
    assert.ok((await serverTuns()).length >= 1)
    await gw.stop(10_000)
    assert.deepEqual(await serverTuns(), [])
    const eb = await Promise.race([bob.oc.exited, sleep(10_000).then(() => undefined)])
    assert.ok(eb, 'bob did not exit')
    // Told by a CSTP DISCONNECT, not left to find a dead connection
    assert.match(bob.oc.log(), /Received server disconnect/)
    assert.equal(existsSync(socket), false, 'control socket left behind')

    const r = await cli('status')
    assert.notEqual(r.code, 0)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, /not running/)
  })
})
