/**
 * Issue 4: openconnect brings up DTLS with `anygate serve` in every mode it can be driven into
 * (dtls-and-datapath.md §11), moves traffic over it, and follows a client whose UDP source
 * port changes mid-session (a relay between the namespaces).
 */
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ensureBuilt, runCli} from '../commands/cli.js'
import type {SessionInfo} from '../../src/lib/control/protocol.js'
import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import type {GatewayHandle} from './harness/ocserv.js'
import {type OpenconnectHandle, startOpenconnect} from './harness/openconnect.js'
import {skipUnlessReady, waitFor} from './harness/wait.js'

const skip = skipUnlessReady(['ip', 'openconnect', 'ocpasswd', 'iperf3', 'ping'])


/** Each mode: the openconnect flags and the cipher its log must name (§11). */
const MODES: {name: string; args: string[]; cipher: RegExp; server: RegExp}[] = [
  {name: 'default PSK-NEGOTIATE', args: [], cipher: /\(DTLS1\.2\)-\(PSK\)-\(AES-256-GCM\)/, server: /DTLS1\.2 PSK-AES-256-GCM/},
  {
    name: 'X-DTLS12 ECDHE-RSA-AES256-GCM-SHA384',
    args: ['--dtls12-ciphers=ECDHE-RSA-AES256-GCM-SHA384'],
    cipher: /\(DTLS1\.2\)-\(ECDHE-RSA\)-\(AES-256-GCM\)/,
    server: /DTLS1\.2 ECDHE-RSA-AES-256-GCM/,
  },
  {name: 'X-DTLS12 AES256-GCM-SHA384', args: ['--dtls12-ciphers=AES256-GCM-SHA384'], cipher: /\(DTLS1\.2\)-\(RSA\)-\(AES-256-GCM\)/, server: /RSA-AES-256-GCM/},
  {name: 'X-DTLS12 AES128-GCM-SHA256', args: ['--dtls12-ciphers=AES128-GCM-SHA256'], cipher: /\(DTLS1\.2\)-\(RSA\)-\(AES-128-GCM\)/, server: /RSA-AES-128-GCM/},
  {name: 'X-DTLS12 AES256-SHA', args: ['--dtls12-ciphers=AES256-SHA'], cipher: /\(DTLS1\.2\)-\(RSA\)-\(AES-256-CBC\)-\(SHA1\)/, server: /DTLS1\.2 RSA-AES-256-CBC-SHA1/},
  {name: 'OC-DTLS1_2-AES128-GCM', args: ['--dtls-ciphers=OC-DTLS1_2-AES128-GCM'], cipher: /\(DTLS1\.2\)-\(RSA\)-\(AES-128-GCM\)/, server: /RSA-AES-128-GCM/},
  {name: 'OC-DTLS1_2-AES256-GCM', args: ['--dtls-ciphers=OC-DTLS1_2-AES256-GCM'], cipher: /\(DTLS1\.2\)-\(RSA\)-\(AES-256-GCM\)/, server: /RSA-AES-256-GCM/},
  {name: 'DTLS 0.9 AES128-SHA', args: ['--dtls-ciphers=AES128-SHA'], cipher: /\(DTLS0\.9\)-\(RSA\)-\(AES-128-CBC\)-\(SHA1\)/, server: /DTLS0\.9 RSA-AES-128-CBC-SHA1/},
  {name: 'DTLS 0.9 AES256-SHA', args: ['--dtls-ciphers=AES256-SHA'], cipher: /\(DTLS0\.9\)-\(RSA\)-\(AES-256-CBC\)-\(SHA1\)/, server: /DTLS0\.9 RSA-AES-256-CBC-SHA1/},
]

describe('anygate DTLS with openconnect', {skip}, () => {
  let net: TestNet
  let gw: GatewayHandle

  let stateDir: string

  before(async () => {
    ensureBuilt()
    net = await createTestNet()
    gw = await startAnygate(net, {dtls: true, users: [{name: 'alice', password: 'correct horse'}]})
    stateDir = join(net.dir, 'anygate', 'state')
  })

  after(async () => {
    await net?.destroy()
  })

  const connect = async (extraArgs: string[]): Promise<OpenconnectHandle> => {
    const oc = await startOpenconnect(net, {
      url: gw.url,
      user: 'alice',
      password: 'correct horse',
      servercert: gw.servercert,
      extraArgs: ['-v', ...extraArgs],
    })
    after(() => oc.stop())
    return oc
  }

  const dtlsUps = () => (gw.log().match(/dtls up /g) ?? []).length

  for (const [i, mode] of MODES.entries()) {
    it(`${mode.name}: establishes DTLS, pings and runs iperf3 over it`, async () => {
      const upsBefore = dtlsUps()
      const oc = await connect(mode.args)
      const tunnel = await oc.waitForConnected(20_000)
      await waitFor('Established DTLS connection', () => /Established DTLS connection/.test(oc.log()))
      const line = oc.log().match(/Established DTLS connection.*/)?.[0] ?? ''
      assert.match(line, mode.cipher)
      await waitFor('the server to report DTLS up', () => dtlsUps() > upsBefore)
      const ups = gw.log().match(/dtls up .*/g) ?? []
      assert.match(ups.at(-1) ?? '', mode.server)

      const ping = await net.exec(net.client, 'ping', ['-c', '3', '-W', '2', '-I', tunnel.tunDev, gw.tunnelAddress])
      assert.match(ping.stdout, /3 received/)

      // The control socket reports the session's DTLS as up, with the cipher
      const listed = await runCli(['session', 'list', '--json', '--state-dir', stateDir])
      assert.equal(listed.code, 0, listed.stderr)
      const mine = (JSON.parse(listed.stdout) as SessionInfo[]).find((s) => s.state === 'connected' && s.ipv4 === tunnel.address)
      assert.equal(mine?.dtls, true, listed.stdout)
      assert.match(mine?.dtlsCipher ?? '', mode.server)

      // iperf3 on every mode: AES-GCM goes through the native path, CBC and DTLS 0.9 through
      // node:crypto, and each direction counts.
      // One server per run (-1), so a run never meets a server still closing the last one.
      for (const [j, reverse] of [false, true].entries()) {
        const port = String(5300 + 2 * i + j)
        const server = net.spawn(net.server, 'iperf3', ['-s', '-1', '-B', gw.tunnelAddress, '-p', port])
        after(() => server.stop())
        await net.waitForPort(net.server, Number(port))
        const args = ['-c', gw.tunnelAddress, '-p', port, '-t', '2', '-J', ...(reverse ? ['-R'] : [])]
        const r = await net.exec(net.client, 'iperf3', args, {timeoutMs: 30_000})
        const result = JSON.parse(r.stdout) as {error?: string; end: {sum_received?: {bytes: number}}}
        assert.equal(result.error, undefined, `iperf3 ${reverse ? '-R ' : ''}failed: ${result.error}`)
        const bytes = result.end.sum_received?.bytes ?? 0
        assert.ok(bytes > 5_000_000, `iperf3 ${reverse ? 'down' : 'up'} moved only ${bytes} bytes`)
        await server.stop()
      }

      assert.doesNotMatch(oc.log(), /DTLS Dead Peer Detection|Detected MTU of 576/)
      await oc.stop()
      await waitFor('the dtls down line', () => (gw.log().match(/dtls down .*/g) ?? []).length >= upsBefore + 1)
      const down = (gw.log().match(/dtls down .*/g) ?? []).at(-1) ?? ''
      const [, pin, pout] = down.match(/packetsIn=(\d+) packetsOut=(\d+)/) ?? []
      assert.ok(Number(pin) >= 3 && Number(pout) >= 3, `too little went over DTLS: ${down}`)
    })
  }

  it('follows the client when its UDP source port changes mid-session', async () => {
    // A relay in the client namespace: TCP passed through, UDP forwarded from a socket that is
    // replaced (new source port) on SIGUSR1, as a NAT rebinding would.
    const script = join(net.dir, 'udp-relay.mjs')
    writeFileSync(script, RELAY.replaceAll('@SERVER@', net.server.address))
    const relay = net.spawn(net.client, process.execPath, [script])
    after(() => relay.stop())
    await waitFor('the relay', () => /relay ready/.test(relay.output))

    const oc = await startOpenconnect(net, {
      url: 'https://127.0.0.1:443/',
      user: 'alice',
      password: 'correct horse',
      servercert: gw.servercert,
      extraArgs: ['-v'],
    })
    after(() => oc.stop())
    const tunnel = await oc.waitForConnected(20_000)
    await waitFor('Established DTLS connection', () => /Established DTLS connection/.test(oc.log()))
    const ping = (n: number) => net.exec(net.client, 'ping', ['-c', String(n), '-W', '2', '-I', tunnel.tunDev, gw.tunnelAddress], {allowFailure: true})
    assert.match((await ping(2)).stdout, /2 received/)
    const firstPort = relay.output.match(/udp port (\d+)/g)?.at(-1)

    process.kill(relay.pid, 'SIGUSR1')
    await waitFor('the relay to move', () => relay.output.match(/udp port (\d+)/g)?.at(-1) !== firstPort)
    const after5 = await ping(5)
    assert.match(after5.stdout, /5 received/, after5.stdout)
    assert.match(gw.log(), /dtls peer moved/)
    assert.doesNotMatch(oc.log(), /DTLS Dead Peer|Failed to reconnect/)
    await oc.stop()
  })
})

describe('anygate DTLS 0.9 DES-CBC3-SHA, only when the config names it', {skip}, () => {
  let net: TestNet

  before(async () => {
    net = await createTestNet()
  })

  after(async () => {
    await net?.destroy()
  })

  it('offers no DTLS for DES-CBC3-SHA by default, and establishes it once dtls-ciphers lists it', async () => {
    const users = [{name: 'alice', password: 'correct horse'}]
    const des = ['-v', '--dtls-ciphers=DES-CBC3-SHA']
    const refusing = await startAnygate(net, {dtls: true, users})
    const oc1 = await startOpenconnect(net, {url: refusing.url, user: 'alice', password: 'correct horse', servercert: refusing.servercert, extraArgs: des})
    after(() => oc1.stop())
    await oc1.waitForConnected(20_000)
    await waitFor('openconnect to settle on CSTP', () => /DTLS disabled|No DTLS address|Server offered no DTLS/.test(oc1.log()))
    assert.doesNotMatch(oc1.log(), /Established DTLS connection/)
    assert.doesNotMatch(refusing.log(), /dtls up /)
    await oc1.stop()
    await refusing.stop()

    const allowing = await startAnygate(net, {dtls: true, users, extraArgs: ['--dtls-ciphers', 'PSK-NEGOTIATE:AES128-SHA:DES-CBC3-SHA']})
    const oc2 = await startOpenconnect(net, {url: allowing.url, user: 'alice', password: 'correct horse', servercert: allowing.servercert, extraArgs: des})
    after(() => oc2.stop())
    const tunnel = await oc2.waitForConnected(20_000)
    await waitFor('Established DTLS connection', () => /Established DTLS connection/.test(oc2.log()))
    assert.match(oc2.log(), /Established DTLS connection.*\(DTLS0\.9\)-\(RSA\)-\(3DES-CBC\)-\(SHA1\)/)
    assert.match(oc2.log(), /X-DTLS-MTU: 1422/)
    const ping = await net.exec(net.client, 'ping', ['-c', '3', '-W', '2', '-I', tunnel.tunDev, allowing.tunnelAddress])
    assert.match(ping.stdout, /3 received/)
    assert.match(allowing.log(), /dtls up .*DTLS0\.9 RSA-3DES-CBC-SHA1/)
    await oc2.stop()
  })
})

const RELAY = `
import dgram from 'node:dgram'
import net from 'node:net'
const SERVER = '@SERVER@'
net.createServer((c) => {
  const s = net.connect(443, SERVER)
  c.pipe(s).pipe(c)
  c.on('error', () => s.destroy())
  s.on('error', () => c.destroy())
}).listen(443, '127.0.0.1')
const front = dgram.createSocket('udp4')
let client
let back
function openBack() {
  back?.close()
  back = dgram.createSocket('udp4')
  back.on('message', (m) => client && front.send(m, client.port, client.address))
  back.bind(0, () => console.log('udp port ' + back.address().port))
}
front.on('message', (m, r) => { client = r; back.send(m, 443, SERVER) })
front.bind(443, '127.0.0.1', () => { openBack(); console.log('relay ready') })
process.on('SIGUSR1', openBack)
`
