/**
 * Issue 4: openconnect brings up DTLS with `anygate serve` in every mode it can be driven into
 * (dtls-and-datapath.md §11), moves traffic over it, and follows a client whose UDP source
 * port changes mid-session (a relay between the namespaces).
 */
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

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
  {name: 'DTLS 0.9 AES128-SHA', args: ['--dtls-ciphers=AES128-SHA'], cipher: /\(DTLS0\.9\)-\(RSA\)-\(AES-128-CBC\)-\(SHA1\)/, server: /DTLS0\.9 RSA-AES-128-CBC-SHA1/},
  {name: 'DTLS 0.9 AES256-SHA', args: ['--dtls-ciphers=AES256-SHA'], cipher: /\(DTLS0\.9\)-\(RSA\)-\(AES-256-CBC\)-\(SHA1\)/, server: /DTLS0\.9 RSA-AES-256-CBC-SHA1/},
]

describe('anygate DTLS with openconnect', {skip}, () => {
  let net: TestNet
  let gw: GatewayHandle

  before(async () => {
    net = await createTestNet()
    gw = await startAnygate(net, {dtls: true, users: [{name: 'alice', password: 'correct horse'}]})
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

      // iperf3 on the first two modes only: the path is the same code for every suite
      if (i < 2 || mode.name.includes('0.9 AES128')) {
        const port = String(5300 + i)
        const server = net.spawn(net.server, 'iperf3', ['-s', '-B', gw.tunnelAddress, '-p', port])
        await net.waitForPort(net.server, Number(port))
        for (const reverse of [false, true]) {
          const args = ['-c', gw.tunnelAddress, '-p', port, '-t', '2', '-J', ...(reverse ? ['-R'] : [])]
          const r = await net.exec(net.client, 'iperf3', args, {timeoutMs: 30_000})
          const bytes = JSON.parse(r.stdout).end.sum_received.bytes as number
          assert.ok(bytes > 5_000_000, `iperf3 ${reverse ? 'down' : 'up'} moved only ${bytes} bytes`)
        }

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
