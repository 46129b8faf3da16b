/**
 * Issue "serve": a real openconnect logs in to `anygate serve` in a pair of network namespaces
 * and moves IP traffic over CSTP/TLS through a TUN interface.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import type {GatewayHandle} from './harness/ocserv.js'
import {authenticateOnly, startOpenconnect} from './harness/openconnect.js'
import {skipUnlessReady, waitFor} from './harness/wait.js'

const skip = skipUnlessReady(['ip', 'openconnect', 'ocpasswd', 'iperf3', 'ping'])

/** TUN interfaces in the server namespace that serve made (`vpns0`, `vpns1`…). */
async function serverTuns(net: TestNet): Promise<string[]> {
  return (await net.listLinks(net.server)).filter((l) => /^vpns\d+$/.test(l))
}


describe('anygate serve with openconnect', {skip}, () => {
  let net: TestNet
  let gw: GatewayHandle

  before(async () => {
    net = await createTestNet()
    gw = await startAnygate(net, {
      users: [
        {name: 'alice', password: 'correct horse'},
        {name: 'bob', password: 'b0b!', group: 'eng'},
      ],
      extraArgs: ['--group', 'eng:Engineering', '--group', 'ops:Operations'],
    })
  })

  after(async () => {
    await net?.destroy()
  })

  // Groups are offered, so a non-interactive client must name one (openconnect asks otherwise).
  const pickDefault = ['--authgroup', 'DEFAULT']
  const login = (user = 'alice', password = 'correct horse') =>
    startOpenconnect(net, {url: gw.url, user, password, servercert: gw.servercert, dtls: false, extraArgs: pickDefault})

  it('logs in, pings the gateway through the tunnel and runs iperf3 both ways', async () => {
    const oc = await login()
    after(() => oc.stop())
    const tunnel = await oc.waitForConnected(15_000)
    assert.equal(gw.tunnelAddress, net.pool.firstHost)
    assert.match(oc.log(), /Got CONNECT response: HTTP\/1.1 200 CONNECTED/)
    assert.ok(tunnel.mtu >= 1280 && tunnel.mtu <= 1500, `mtu ${tunnel.mtu}`)

    const ping = await net.exec(net.client, 'ping', ['-c', '3', '-W', '2', '-I', tunnel.tunDev, gw.tunnelAddress])
    assert.match(ping.stdout, /3 received/)
    assert.match(gw.log(), /INFO  login .*user=alice/)
    assert.match(gw.log(), new RegExp(`tunnel up .*vpnAddr=${tunnel.address.replace(/\./g, '\\.')} tun=vpns\\d+`))

    const server = net.spawn(net.server, 'iperf3', ['-s', '-B', gw.tunnelAddress, '-p', '5201'])
    await net.waitForPort(net.server, 5201)
    for (const reverse of [false, true]) {
      const args = ['-c', gw.tunnelAddress, '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])]
      const r = await net.exec(net.client, 'iperf3', args, {timeoutMs: 30_000})
      const bytes = JSON.parse(r.stdout).end.sum_received.bytes as number
      assert.ok(bytes > 5_000_000, `iperf3 ${reverse ? 'down' : 'up'} moved only ${bytes} bytes`)
    }

    await server.stop()
    // One CSTP frame per TLS record, also under load (auth-and-cstp.md §4.3)
    assert.doesNotMatch(oc.log(), /Unexpected packet length|Unknown packet/)
    await oc.stop()
    await waitFor('the tunnel down log line', () => /tunnel down .*user=alice .*bytesIn=\d{7,}/.test(gw.log()))
    assert.doesNotMatch(gw.log(), /correct horse/, 'a password reached the log')
  })

  it('refuses a wrong password and an unknown user', async () => {
    const wrong = await authenticateOnly(net, {url: gw.url, user: 'alice', password: 'nope', servercert: gw.servercert, extraArgs: pickDefault})
    assert.notEqual(wrong.code, 0)
    assert.match(wrong.output, /Login failed/)
    assert.doesNotMatch(wrong.output, /COOKIE=/)

    const unknown = await authenticateOnly(net, {url: gw.url, user: 'mallory', password: 'x', servercert: gw.servercert, extraArgs: pickDefault})
    assert.notEqual(unknown.code, 0)
    assert.match(unknown.output, /Login failed/)
    assert.match(gw.log(), /login failed .*user=mallory .*reason=unknown/)
  })

  it('logs in with the legacy form flow (--no-xmlpost)', async () => {
    const r = await authenticateOnly(net, {
      url: gw.url,
      user: 'alice',
      password: 'correct horse',
      servercert: gw.servercert,
      extraArgs: ['--no-xmlpost', ...pickDefault],
    })
    assert.equal(r.code, 0, r.output)
    assert.match(r.output, /COOKIE=/)
  })

  it('lets a user pick a group they belong to, and only those', async () => {
    const auth = (user: string, password: string, group: string) =>
      authenticateOnly(net, {url: gw.url, user, password, servercert: gw.servercert, extraArgs: ['--authgroup', group]})
    // openconnect matches --authgroup against the option's label
    const member = await auth('bob', 'b0b!', 'Engineering')
    assert.equal(member.code, 0, member.output)
    assert.match(gw.log(), /INFO  login .*user=bob group=eng/)
    const other = await auth('bob', 'b0b!', 'Operations')
    assert.notEqual(other.code, 0)
    assert.match(other.output, /not a member of the selected group/)
  })

  it('reconnects with the same cookie and keeps the address', async () => {
    const count = (re: RegExp) => (gw.log().match(re) ?? []).length
    const loginsBefore = count(/INFO  login .*user=bob/g)
    const oc = await login('bob', 'b0b!')
    after(() => oc.stop())
    const first = await oc.waitForConnected(15_000)
    const countUps = () => count(/tunnel up .*user=bob/g)
    await waitFor('the first tunnel for bob', () => countUps() === 1)

    // SIGUSR2: openconnect drops its TLS connection and reconnects with its cookie.
    process.kill(oc.pid, 'SIGUSR2')
    await waitFor('a second tunnel for bob', () => countUps() === 2, 20_000)
    assert.equal(count(/INFO  login .*user=bob/g), loginsBefore + 1, 'the reconnect must not log in again')
    const ups = gw.log().match(/tunnel up .*user=bob .*vpnAddr=\S+/g) ?? []
    assert.equal(ups.length, 2)
    assert.ok(ups.every((l) => l.endsWith(`vpnAddr=${first.address}`)), ups.join('\n'))

    await waitFor('ping over the new tunnel', async () => {
      const r = await net.exec(net.client, 'ping', ['-c', '1', '-W', '1', gw.tunnelAddress], {allowFailure: true})
      return r.code === 0
    })
    await oc.stop()
  })

  it('removes every interface and disconnects clients when serve stops', async () => {
    const a = await login()
    const b = await login('bob', 'b0b!')
    after(() => Promise.all([a.stop(), b.stop()]))
    await a.waitForConnected(15_000)
    await b.waitForConnected(15_000)
    await waitFor('two server TUNs', async () => (await serverTuns(net)).length === 2)

    await gw.stop(10_000)
    assert.deepEqual(await serverTuns(net), [])
    const [ea, eb] = await Promise.all([a.exited, b.exited])
    assert.ok(ea && eb)
    assert.match(a.log(), /Received server disconnect|Server request/)
    assert.match(gw.log(), /tunnel down .*reason="server shutdown"/)
  })
})
