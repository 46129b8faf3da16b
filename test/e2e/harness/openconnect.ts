/**
 * openconnect in the client namespace of a `TestNet`.
 *
 * The tunnel is configured by a small `--script` of our own, never vpnc-script (which would
 * rewrite the host's resolv.conf and default route). It uses `ip` only, inside the client
 * namespace: the pushed IPv4 address and MTU, and routes for the pushed split-include networks
 * that lie in 198.18.0.0/15 (or, if none were pushed, for the VPN pool network). It never adds a
 * default route, and skips any route that would capture the gateway's own address. Each call
 * appends a line to an events file, which `waitForConnected` reads.
 */
import {createHash, randomBytes, X509Certificate} from 'node:crypto'
import {chmodSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {ExitInfo, NetProcess, TestNet} from './netns.js'

/** Where and how to log in. Give exactly one of `servercert` and `cafile`. */
export interface OpenconnectOptions {
  /** `https://198.18.X.1:443/` */
  url: string
  user: string
  password: string
  /** `pin-sha256:<base64>` (as `pinSha256` returns) or any other `--servercert` value. */
  servercert?: string
  /** A CA file to verify the server certificate with, instead of a pin. */
  cafile?: string
  /** Default true; false passes `--no-dtls`. */
  dtls?: boolean
  /** The TUN name; a unique `agt…` name when absent. */
  interfaceName?: string
  /** Appended before the URL, e.g. `['-v', '--dump-http-traffic']`. */
  extraArgs?: string[]
}

/** What the script was told at `reason=connect`, after it configured the TUN. */
export interface TunnelInfo {
  tunDev: string
  /** The address the gateway assigned to this client. */
  address: string
  mtu: number
  /** Routes the script added, as `198.19.X.0/24`. */
  routes: string[]
  /** Pushed routes it refused (outside 198.18.0.0/15, or covering the gateway). */
  skippedRoutes: string[]
}

/** A running openconnect; `stop` it, or let `TestNet.destroy` kill it. */
export interface OpenconnectHandle {
  pid: number
  interfaceName: string
  process: NetProcess
  /** stdout and stderr so far, interleaved. */
  log(): string
  /** Lines the script wrote so far: `pre-init`, `connected …`, `disconnect`, `route …`. */
  scriptEvents(): string[]
  /**
   * Resolves when the script has configured the TUN for `reason=connect`. Rejects if
   * openconnect exits first or `timeoutMs` passes, with the end of its log.
   */
  waitForConnected(timeoutMs: number): Promise<TunnelInfo>
  /** SIGINT (openconnect sends BYE and runs the script's disconnect), SIGKILL after timeout. */
  stop(timeoutMs?: number): Promise<ExitInfo>
  exited: Promise<ExitInfo>
}

export interface AuthenticateResult {
  code: number | null
  /** stdout and stderr, interleaved; holds the session cookie on success. */
  output: string
}

// Plain sh: dash and bash both run it.
// Not yet: INTERNAL_IP6_* and CISCO_IPV6_SPLIT_INC_*, so an IPv6 address or route the gateway
// pushes is ignored and IPv6 through the tunnel cannot be tested.
const SCRIPT = `#!/bin/sh
# anygate e2e harness: configure the TUN from openconnect's variables with ip(8) only.
# Never touches DNS or the default route; routes only into 198.18.0.0/15.
events=@EVENTS@

note() { printf '%s\\n' "$*" >> "$events"; }

ip2int() {
  old_ifs=$IFS; IFS=.; set -- $1; IFS=$old_ifs
  echo $(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 ))
}

in_test_range() {
  case "$1" in 198.18.*|198.19.*) ;; *) return 1 ;; esac
  [ "$2" -ge 15 ] 2>/dev/null && [ "$2" -le 32 ]
}

covers_gateway() {
  [ -n "\${VPNGATEWAY:-}" ] || return 1
  case "$VPNGATEWAY" in *:*) return 1 ;; esac
  shift_by=$(( 32 - $2 ))
  [ $(( $(ip2int "$1") >> shift_by )) -eq $(( $(ip2int "$VPNGATEWAY") >> shift_by )) ]
}

add_route() {
  if ! in_test_range "$1" "$2" || covers_gateway "$1" "$2"; then
    note "skip-route $1/$2"
    return 0
  fi
  ip route replace "$1/$2" dev "$TUNDEV" && note "route $1/$2"
}

case "$reason" in
  pre-init|attempt-reconnect)
    note "$reason"
    ;;
  connect)
    ip link set dev "$TUNDEV" up mtu "\${INTERNAL_IP4_MTU:-1300}" || exit 1
    ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV" || exit 1
    count=\${CISCO_SPLIT_INC:-0}
    i=0
    while [ "$i" -lt "$count" ]; do
      eval "net=\\\${CISCO_SPLIT_INC_\${i}_ADDR:-}"
      eval "len=\\\${CISCO_SPLIT_INC_\${i}_MASKLEN:-}"
      add_route "$net" "$len" || exit 1
      i=$(( i + 1 ))
    done
    if [ "$count" -eq 0 ]; then
      add_route "$INTERNAL_IP4_NETADDR" "$INTERNAL_IP4_NETMASKLEN" || exit 1
    fi
    note "connected $TUNDEV $INTERNAL_IP4_ADDRESS \${INTERNAL_IP4_MTU:-1300}"
    ;;
  reconnect)
    ip link set dev "$TUNDEV" up mtu "\${INTERNAL_IP4_MTU:-1300}"
    note reconnect
    ;;
  disconnect)
    ip addr flush dev "$TUNDEV" 2>/dev/null
    note disconnect
    ;;
  *)
    note "other $reason"
    ;;
esac
exit 0
`

/**
 * The `--servercert` value pinning `certPem`'s key, computed as openconnect does: base64 of
 * SHA-256 over the certificate's SubjectPublicKeyInfo (DER). Takes the first certificate of a
 * PEM file that may also hold a key or a chain.
 */
export function pinSha256(certPem: string): string {
  const match = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)
  if (!match) throw new Error('no PEM certificate found')

  const spki = new X509Certificate(match[0]).publicKey.export({type: 'spki', format: 'der'})
  return `pin-sha256:${createHash('sha256').update(spki).digest('base64')}`
}

/**
 * Starts openconnect in `net`'s client namespace with our script. Resolves once the process
 * runs, not once the tunnel is up: call `waitForConnected`.
 */
export async function startOpenconnect(
  net: TestNet,
  opts: OpenconnectOptions,
): Promise<OpenconnectHandle> {
  const interfaceName = opts.interfaceName ?? `agt${randomBytes(3).toString('hex')}`
  const dir = join(net.dir, `openconnect-${interfaceName}`)
  mkdirSync(dir, {recursive: true})
  const eventsFile = join(dir, 'script-events')
  const scriptFile = join(dir, 'tun-script.sh')
  writeFileSync(eventsFile, '')
  writeFileSync(scriptFile, SCRIPT.replace('@EVENTS@', shellQuote(eventsFile)))
  chmodSync(scriptFile, 0o755)

  const args = [
    ...loginArgs(opts),
    '--interface',
    interfaceName,
    '--script',
    scriptFile,
    ...(opts.dtls === false ? ['--no-dtls'] : []),
    ...(opts.extraArgs ?? []),
    opts.url,
  ]
  const proc = net.spawn(net.client, 'openconnect', args, {input: `${opts.password}\n`})
  const scriptEvents = () => readLines(eventsFile)

  return {
    pid: proc.pid,
    interfaceName,
    process: proc,
    log: () => proc.output,
    scriptEvents,
    waitForConnected: (timeoutMs) => waitForConnected(proc, scriptEvents, timeoutMs),
    stop: (timeoutMs = 5000) => proc.stop('SIGINT', timeoutMs),
    exited: proc.exited,
  }
}

/**
 * Runs `openconnect --authenticate` (log in, print the cookie, no tunnel) to completion in the
 * client namespace. A refused login makes openconnect exit non-zero.
 */
export async function authenticateOnly(
  net: TestNet,
  opts: Omit<OpenconnectOptions, 'dtls' | 'interfaceName'> & {timeoutMs?: number},
): Promise<AuthenticateResult> {
  const args = ['--authenticate', ...loginArgs(opts), ...(opts.extraArgs ?? []), opts.url]
  const proc = net.spawn(net.client, 'openconnect', args, {input: `${opts.password}\n`})
  const timeoutMs = opts.timeoutMs ?? 20_000
  const timer = setTimeout(() => void proc.stop('SIGKILL'), timeoutMs)
  const {code} = await proc.exited
  clearTimeout(timer)
  return {code, output: proc.output}
}

function loginArgs(opts: OpenconnectOptions): string[] {
  if ((opts.servercert === undefined) === (opts.cafile === undefined)) {
    throw new TypeError('give exactly one of servercert and cafile')
  }

  const trust = opts.cafile ? ['--cafile', opts.cafile] : ['--servercert', opts.servercert ?? '']
  return ['--user', opts.user, '--passwd-on-stdin', '--non-inter', ...trust]
}

async function waitForConnected(
  proc: NetProcess,
  scriptEvents: () => string[],
  timeoutMs: number,
): Promise<TunnelInfo> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const events = scriptEvents()
    const connected = events.find((line) => line.startsWith('connected '))
    if (connected) return tunnelInfo(connected, events)
    if (proc.hasExited) throw proc.failure('exited before the tunnel came up')
    if (Date.now() > deadline) throw proc.failure(`no tunnel within ${timeoutMs} ms`)
    await sleep(25)
  }
}

function tunnelInfo(connected: string, events: string[]): TunnelInfo {
  const [, tunDev = '', address = '', mtu = ''] = connected.split(' ')
  const routesOf = (prefix: string) =>
    events.filter((line) => line.startsWith(prefix)).map((line) => line.slice(prefix.length))
  return {
    tunDev,
    address,
    mtu: Number(mtu),
    routes: routesOf('route '),
    skippedRoutes: routesOf('skip-route '),
  }
}

function readLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`
}
