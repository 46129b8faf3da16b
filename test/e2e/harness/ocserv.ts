/**
 * Real ocserv in the server namespace of a `TestNet`, as the reference gateway.
 *
 * Everything lives in a temp dir under the net's: a config we write, a users file made by
 * `ocpasswd`, a self-signed EC P-256 certificate made by `openssl req -x509`, the sockets and
 * the pid file. ocserv runs in the foreground as root with worker isolation off (seccomp
 * filters are no help in a throwaway namespace, and cost throughput). It pushes no routes
 * unless asked, so openconnect sees only the pool network.
 */
import {randomBytes} from 'node:crypto'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {ExitInfo, NetProcess, TestNet, VpnPool} from './netns.js'
import {pinSha256} from './openconnect.js'

/** A login the gateway accepts. */
export interface TestUser {
  name: string
  password: string
  /** Written as the group field; `*` (no group) when absent. */
  group?: string
}

/** What a test needs from any gateway under test, ocserv or anygate. */
export interface GatewayHandle {
  kind: 'ocserv' | 'anygate'
  /** `https://198.18.X.1:PORT/` */
  url: string
  host: string
  tcpPort: number
  /** The DTLS port, when DTLS is on. */
  udpPort?: number
  /** `--servercert` value for openconnect: `pin-sha256:…`. */
  servercert: string
  /** The server certificate (PEM); self-signed, so it also serves as `--cafile`. */
  certFile: string
  users: TestUser[]
  pool: VpnPool
  /** The address of the gateway's own end of every tunnel, as documented by the gateway. */
  tunnelAddress: string
  process: NetProcess
  pid: number
  /** ocserv only: the socket `occtl -s` talks to. */
  occtlSocket?: string
  /** stdout and stderr so far, interleaved. */
  log(): string
  exited: Promise<ExitInfo>
  /** SIGTERM, then SIGKILL to the process group after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<ExitInfo>
}

export interface OcservOptions {
  /** Default 443 (the namespace is ours alone). */
  tcpPort?: number
  /** Default false. When true, DTLS listens on `udpPort` (default: `tcpPort`). */
  dtls?: boolean
  udpPort?: number
  /** Default: one user `alice` with a random password. */
  users?: TestUser[]
  /** Split-include routes to push, as `198.18.5.0/24`. */
  routes?: string[]
  /** Extra config lines, appended last. */
  extraConfig?: string[]
  /** `-d` level for ocserv's own log; default 1. */
  debug?: number
  /** The certificate (PEM, a chain if it holds several) and key; default a fresh self-signed one. */
  cert?: {certFile: string; keyFile: string}
  readyTimeoutMs?: number
}

/**
 * Writes a users file in ocpasswd format (`name:group:$5$…`) with `ocpasswd` itself, which
 * reads the password twice from stdin. ocserv and anygate both read it.
 */
export async function writeUsersFile(net: TestNet, file: string, users: TestUser[]): Promise<void> {
  writeFileSync(file, '')
  for (const user of users) {
    const group = user.group ? ['-g', user.group] : []
    const input = `${user.password}\n${user.password}\n`
    await net.exec(net.server, 'ocpasswd', ['-c', file, ...group, user.name], {input})
  }
}

/** The default test users: `alice`, with a password fresh for each run. */
export function defaultUsers(): TestUser[] {
  return [{name: 'alice', password: randomBytes(9).toString('base64url')}]
}

/**
 * Makes a self-signed EC P-256 certificate for `address` (CN and IP SAN, so it works as a pin
 * and as `--cafile`) with openssl. Returns the PEM paths.
 */
export async function makeSelfSignedCert(
  net: TestNet,
  dir: string,
  address: string,
): Promise<{certFile: string; keyFile: string}> {
  const certFile = join(dir, 'server-cert.pem')
  const keyFile = join(dir, 'server-key.pem')
  await net.exec(net.server, 'openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', `/CN=${address}`, '-addext', `subjectAltName=IP:${address}`,
  ])
  return {certFile, keyFile}
}

/**
 * A chain root CA → intermediate CA → leaf for `address` (CN and IP SAN), made with openssl,
 * EC P-256. `chainFile` holds the leaf then the intermediate, as a server sends them; the root
 * is for `--cafile`. Validity in days from now; a leaf may outlive its issuers (openssl allows it).
 */
export async function makeCertChain(
  net: TestNet,
  dir: string,
  address: string,
  days: {root: number; intermediate: number; leaf: number},
): Promise<{rootFile: string; intermediateFile: string; leafFile: string; chainFile: string; keyFile: string}> {
  mkdirSync(dir, {recursive: true})
  const f = (name: string) => join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  const caExt = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n'
  writeFileSync(f('ca.ext'), caExt)
  writeFileSync(f('leaf.ext'), `basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:${address}\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n`)
  const openssl = (args: string[]) => net.exec(net.server, 'openssl', args)

  await openssl(['req', '-x509', ...ec, '-keyout', f('root.key'), '-out', f('root.pem'), '-days', String(days.root),
    '-subj', '/CN=anygate test root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  await openssl(['req', ...ec, '-keyout', f('intermediate.key'), '-out', f('intermediate.csr'), '-subj', '/CN=anygate test intermediate'])
  await openssl(['x509', '-req', '-in', f('intermediate.csr'), '-CA', f('root.pem'), '-CAkey', f('root.key'), '-set_serial', '0x1001',
    '-days', String(days.intermediate), '-extfile', f('ca.ext'), '-out', f('intermediate.pem')])
  await openssl(['req', ...ec, '-keyout', f('leaf.key'), '-out', f('leaf.csr'), '-subj', `/CN=${address}`])
  await openssl(['x509', '-req', '-in', f('leaf.csr'), '-CA', f('intermediate.pem'), '-CAkey', f('intermediate.key'), '-set_serial', '0x2001',
    '-days', String(days.leaf), '-extfile', f('leaf.ext'), '-out', f('leaf.pem')])
  writeFileSync(f('chain.pem'), readFileSync(f('leaf.pem'), 'utf8') + readFileSync(f('intermediate.pem'), 'utf8'))
  return {rootFile: f('root.pem'), intermediateFile: f('intermediate.pem'), leafFile: f('leaf.pem'), chainFile: f('chain.pem'), keyFile: f('leaf.key')}
}

/** Nets that already run an ocserv: later ones get their own dir (sockets, pid file). */
const started = new WeakSet<TestNet>()

/**
 * Starts ocserv in `net`'s server namespace and resolves once its TCP port (and the UDP port,
 * with DTLS) listens. Rejects with ocserv's output if it exits or is not ready in time.
 */
export async function startOcserv(net: TestNet, opts: OcservOptions = {}): Promise<GatewayHandle> {
  const isFirst = !started.has(net)
  started.add(net)
  const dir = isFirst ? join(net.dir, 'ocserv') : join(net.dir, `ocserv-${opts.tcpPort ?? 443}`)
  mkdirSync(dir, {recursive: true})
  const tcpPort = opts.tcpPort ?? 443
  const udpPort = opts.dtls ? (opts.udpPort ?? tcpPort) : undefined
  const users = opts.users ?? defaultUsers()

  const passwdFile = join(dir, 'passwd')
  await writeUsersFile(net, passwdFile, users)
  const {certFile, keyFile} = opts.cert ?? (await makeSelfSignedCert(net, dir, net.server.address))
  const configFile = join(dir, 'ocserv.conf')
  const config = ocservConfig({net, dir, tcpPort, udpPort, passwdFile, certFile, keyFile, opts})
  writeFileSync(configFile, config)

  const args = ['-f', '-d', String(opts.debug ?? 1), '-c', configFile]
  const proc = net.spawn(net.server, 'ocserv', args)
  const timeoutMs = opts.readyTimeoutMs ?? 10_000
  await net.waitForPort(net.server, tcpPort, {timeoutMs, watched: proc})
  if (udpPort !== undefined) {
    await net.waitForPort(net.server, udpPort, {udp: true, timeoutMs, watched: proc})
  }

  return {
    kind: 'ocserv',
    url: `https://${net.server.address}:${tcpPort}/`,
    host: net.server.address,
    tcpPort,
    udpPort,
    servercert: pinSha256(readFileSync(certFile, 'utf8')),
    certFile,
    users,
    pool: net.pool,
    // ocserv 1.1.6 gives its side of each TUN the pool's first host (seen with `ip addr`).
    tunnelAddress: net.pool.firstHost,
    process: proc,
    pid: proc.pid,
    occtlSocket: join(dir, 'occtl.sock'),
    log: () => proc.output,
    exited: proc.exited,
    stop: (stopTimeoutMs = 5000) => proc.stop('SIGTERM', stopTimeoutMs),
  }
}

function ocservConfig(p: {
  net: TestNet
  dir: string
  tcpPort: number
  udpPort?: number
  passwdFile: string
  certFile: string
  keyFile: string
  opts: OcservOptions
}): string {
  const lines = [
    `auth = "plain[passwd=${p.passwdFile}]"`,
    `listen-host = ${p.net.server.address}`,
    `tcp-port = ${p.tcpPort}`,
    ...(p.udpPort === undefined ? [] : [`udp-port = ${p.udpPort}`]),
    // Workers as root, no seccomp: nothing to protect in a throwaway namespace.
    'run-as-user = root',
    'run-as-group = root',
    'isolate-workers = false',
    // Every path in our dir, so parallel servers never share a socket or pid file.
    `socket-file = ${join(p.dir, 'ocserv.sock')}`,
    `occtl-socket-file = ${join(p.dir, 'occtl.sock')}`,
    'use-occtl = true',
    `pid-file = ${join(p.dir, 'ocserv.pid')}`,
    `server-cert = ${p.certFile}`,
    `server-key = ${p.keyFile}`,
    'max-clients = 16',
    'max-same-clients = 0',
    'keepalive = 32400',
    'dpd = 90',
    'mobile-dpd = 1800',
    'try-mtu-discovery = false',
    'auth-timeout = 240',
    'cookie-timeout = 300',
    'rate-limit-ms = 0',
    'device = agoc',
    'predictable-ips = true',
    `ipv4-network = ${p.net.pool.cidr}`,
    'ping-leases = false',
    ...(p.opts.routes ?? []).map((route) => `route = ${route}`),
    ...(p.opts.extraConfig ?? []),
  ]
  return `${lines.join('\n')}\n`
}
