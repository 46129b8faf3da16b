/**
 * Proves the e2e harness against the reference pair: real ocserv in one namespace, real
 * openconnect in the other, over TLS only. The steps share one net and run in order; `after`
 * tears everything down even when a step fails.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {createTestNet, listNamespaces, type TestNet} from './harness/netns.js'
import {skipUnlessReady} from './harness/wait.js'
import {startOcserv, type GatewayHandle, type TestUser} from './harness/ocserv.js'
import {
  authenticateOnly,
  pinSha256,
  startOpenconnect,
  type OpenconnectHandle,
  type TunnelInfo,
} from './harness/openconnect.js'

const TOOLS = ['ip', 'ss', 'ping', 'openssl', 'ocserv', 'ocpasswd', 'openconnect', 'iperf3']
const MB = 1024 * 1024
const STEP = {timeout: 60_000}

describe('e2e harness against ocserv (TLS only)', {skip: skipUnlessReady(TOOLS)}, () => {
  let net: TestNet | undefined
  let gateway: GatewayHandle
  let user: TestUser
  let client: OpenconnectHandle
  let tunnel: TunnelInfo
  let serverEnd: string

  before(async () => {
    net = await createTestNet()
    gateway = await startOcserv(net)
    user = gateway.users[0]
  })

  after(async () => {
    await net?.destroy()
  })

  it('pins the server key as openssl computes it', STEP, async () => {
    const spkiDer = execFileSync('sh', [
      '-c',
      'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der',
      'sh',
      gateway.certFile,
    ])
    const expected = `pin-sha256:${createHash('sha256').update(spkiDer).digest('base64')}`

    assert.equal(gateway.servercert, expected)
    assert.equal(pinSha256(readFileSync(gateway.certFile, 'utf8')), expected)
  })

  it('connects openconnect with --no-dtls and configures the TUN', STEP, async () => {
    client = await startOpenconnect(need(net), {
      url: gateway.url,
      user: user.name,
      password: user.password,
      servercert: gateway.servercert,
      dtls: false,
    })
    tunnel = await client.waitForConnected(30_000)

    assert.match(client.log(), /Configured as [\d.]+, with SSL connected and DTLS disabled/)
    assert.equal(tunnel.tunDev, client.interfaceName)
    assert.match(tunnel.address, new RegExp(`^${gateway.pool.network.replace(/0$/, '')}\\d+$`))
    assert.deepEqual(tunnel.routes, [gateway.pool.cidr])
    assert.ok((await need(net).listLinks(need(net).client)).includes(client.interfaceName))
    const routes = await need(net).exec(need(net).client, 'ip', ['-json', 'route', 'show'])
    const viaTun = (JSON.parse(routes.stdout) as Array<{dst: string; dev: string}>)
      .filter((route) => route.dev === tunnel.tunDev)
      .map((route) => route.dst)
    assert.deepEqual(viaTun, [gateway.pool.cidr])
  })

  it('pings the server end of the tunnel through the TUN', STEP, async () => {
    const addresses = await need(net).listAddresses(need(net).server)
    const end = addresses.find((a) => a.peer?.replace(/\/32$/, '') === tunnel.address)
    assert.ok(end, `no server interface peers with ${tunnel.address}`)
    serverEnd = end.local

    const route = await need(net).exec(need(net).client, 'ip', ['-json', 'route', 'get', serverEnd])
    assert.equal((JSON.parse(route.stdout) as Array<{dev: string}>)[0]?.dev, tunnel.tunDev)

    const pingArgs = ['-c', '3', '-i', '0.2', '-W', '2', serverEnd]
    const ping = await need(net).exec(need(net).client, 'ping', pingArgs, {allowFailure: true})
    assert.equal(ping.code, 0, ping.stdout + ping.stderr)
    assert.match(ping.stdout, /3 received, 0% packet loss/)
  })

  it('carries a few MB each way with iperf3', STEP, async () => {
    const testNet = need(net)
    const iperfServer = testNet.spawn(testNet.server, 'iperf3', ['-s', '-B', serverEnd])
    await testNet.waitForPort(testNet.server, 5201, {watched: iperfServer})

    for (const isReverse of [false, true]) {
      const before = await tunBytes(testNet, tunnel.tunDev)
      const args = ['-c', serverEnd, '-t', '2', '-J', ...(isReverse ? ['-R'] : [])]
      const res = await testNet.exec(testNet.client, 'iperf3', args, {timeoutMs: 30_000})
      const report = JSON.parse(res.stdout) as IperfReport
      assert.equal(report.error, undefined)
      const received = report.end.sum_received.bytes
      const afterRun = await tunBytes(testNet, tunnel.tunDev)
      const carried = isReverse ? afterRun.rx - before.rx : afterRun.tx - before.tx

      assert.ok(received >= 2 * MB, `only ${received} bytes received (reverse: ${isReverse})`)
      assert.ok(carried >= received, `TUN carried ${carried} bytes, iperf3 saw ${received}`)
    }
    await iperfServer.stop()
  })

  it('refuses a wrong password and accepts the right one with --cafile', STEP, async () => {
    const common = {url: gateway.url, user: user.name}
    const wrong = await authenticateOnly(need(net), {
      ...common,
      password: `not-${user.password}`,
      servercert: gateway.servercert,
    })
    const right = await authenticateOnly(need(net), {
      ...common,
      password: user.password,
      cafile: gateway.certFile,
    })

    assert.notEqual(wrong.code, 0, wrong.output)
    assert.match(wrong.output, /Login failed/)
    assert.doesNotMatch(wrong.output, /^COOKIE=/m)
    assert.equal(right.code, 0, right.output)
    assert.match(right.output, /^COOKIE=/m)
  })

  it('refuses a server whose key does not match the pin', STEP, async () => {
    const otherPin = `pin-sha256:${createHash('sha256').update('other key').digest('base64')}`
    const res = await authenticateOnly(need(net), {
      url: gateway.url,
      user: user.name,
      password: user.password,
      servercert: otherPin,
    })

    assert.notEqual(res.code, 0, res.output)
    assert.match(res.output, /fingerprint\(s\) specified via --servercert match/)
    assert.doesNotMatch(res.output, /^COOKIE=/m)
  })

  it('removes the TUN on both sides when openconnect stops', STEP, async () => {
    const testNet = need(net)
    await client.stop()

    assert.ok(client.scriptEvents().includes('disconnect'), client.scriptEvents().join('\n'))
    assert.ok(!(await testNet.listLinks(testNet.client)).includes(client.interfaceName))
    await eventually(async () => {
      const addresses = await testNet.listAddresses(testNet.server)
      return !addresses.some((a) => a.local === serverEnd)
    }, 'the server end of the tunnel is still there')
  })

  it('leaves no namespace, link, process or file behind after destroy', STEP, async () => {
    const testNet = need(net)
    const sleeper = testNet.spawn(testNet.client, 'sleep', ['600'])
    const pids = [gateway.pid, client.pid, sleeper.pid]

    await testNet.destroy()
    await testNet.destroy()

    const namespaces = await listNamespaces()
    assert.ok(!namespaces.includes(testNet.server.ns), testNet.server.ns)
    assert.ok(!namespaces.includes(testNet.client.ns), testNet.client.ns)
    const hostLinks = JSON.parse(execFileSync('ip', ['-json', 'link'], {encoding: 'utf8'}))
    const ours = (hostLinks as Array<{ifname: string}>).filter((l) => l.ifname.includes(testNet.id))
    assert.deepEqual(ours, [])
    for (const pid of pids) assert.ok(!isAlive(pid), `pid ${pid} is still alive`)
    assert.ok(!existsSync(testNet.dir), testNet.dir)
  })
})

describe('e2e harness: the TUN script with pushed routes', {skip: skipUnlessReady(TOOLS)}, () => {
  let net: TestNet | undefined

  after(async () => {
    await net?.destroy()
  })

  it('adds only pushed routes inside 198.18.0.0/15 that spare the gateway', STEP, async () => {
    net = await createTestNet()
    const veth = `${net.server.address.replace(/\.1$/, '.0')}/24`
    const gateway = await startOcserv(net, {
      routes: ['198.18.250.0/24', '10.20.0.0/16', veth, '198.19.250.0/255.255.255.0'],
    })
    const [user] = gateway.users
    const client = await startOpenconnect(net, {
      url: gateway.url,
      user: user.name,
      password: user.password,
      servercert: gateway.servercert,
      dtls: false,
    })
    const tunnel = await client.waitForConnected(30_000)

    assert.deepEqual(tunnel.routes.sort(), ['198.18.250.0/24', '198.19.250.0/24'])
    assert.deepEqual(tunnel.skippedRoutes.sort(), ['10.20.0.0/16', veth])
    const routes = await net.exec(net.client, 'ip', ['-json', 'route', 'show'])
    const viaTun = (JSON.parse(routes.stdout) as Array<{dst: string; dev: string}>)
      .filter((route) => route.dev === tunnel.tunDev)
      .map((route) => route.dst)
    assert.deepEqual(viaTun.sort(), ['198.18.250.0/24', '198.19.250.0/24'])
  })
})

interface IperfReport {
  error?: string
  end: {sum_received: {bytes: number}}
}

function need(net: TestNet | undefined): TestNet {
  if (!net) throw new Error('the test net was not created')
  return net
}

async function tunBytes(net: TestNet, dev: string): Promise<{rx: number; tx: number}> {
  const res = await net.exec(net.client, 'ip', ['-json', '-s', 'link', 'show', 'dev', dev])
  type Stats = {stats64: {rx: {bytes: number}; tx: {bytes: number}}}
  const [link] = JSON.parse(res.stdout) as Stats[]
  return {rx: link.stats64.rx.bytes, tx: link.stats64.tx.bytes}
}

async function eventually(check: () => Promise<boolean>, message: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(message)
    await sleep(50)
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
