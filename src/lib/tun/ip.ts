/**
 * Interface configuration through iproute2. Always `execFile` (no shell), and one `ip -batch -`
 * exec per interface, since each exec costs about 3 ms. Every value that reaches a batch line is
 * checked first, so a name or address can never add a command of its own.
 */

import {execFile} from 'node:child_process'
import {isIPv4, isIPv6} from 'node:net'

import {AnygateError} from '../errors.js'

const IP_BINARY = 'ip'
const IP_TIMEOUT_MS = 10_000
/** Linux interface names, minus what ip's batch parser treats specially (blanks, quotes, #). */
const IFNAME_PATTERN = /^[A-Za-z0-9_.@+-]{1,15}$/
const MTU_MIN = 68
const MTU_MAX = 65535
/** RFC 8200 §5: a link that carries IPv6 must take 1280-byte packets. */
const IPV6_MTU_MIN = 1280
const PREFIX_V6_DEFAULT = 128

export interface TunAddressConfig {
  /** Our end of the point-to-point link. */
  localV4: string
  /** The client's VPN address; the kernel adds a /32 route to it through the interface. */
  peerV4: string
  mtu: number
  localV6?: string
  /** The client's IPv6 address; with it, `prefixV6` is the route to the peer. */
  peerV6?: string
  /** Default 128. */
  prefixV6?: number
}

export interface NetnsOption {
  /** Run `ip -n NETNS`; default: the caller's namespace. */
  netns?: string
}

/**
 * The `ip -batch` lines that configure `name`: MTU first (so an IPv6 address is never added
 * where the MTU will then remove IPv6), then the addresses, then up. Pure, for tests.
 * Throws RangeError on a bad name, address, MTU or prefix.
 */
export function tunConfigCommands(name: string, cfg: TunAddressConfig): string[] {
  checkIfName(name)
  checkMtu(cfg.mtu)
  checkAddress(cfg.localV4, isIPv4, 'localV4')
  checkAddress(cfg.peerV4, isIPv4, 'peerV4')

  const lines = [
    `link set dev ${name} mtu ${cfg.mtu}`,
    `address add ${cfg.localV4} peer ${cfg.peerV4}/32 dev ${name}`,
  ]
  const v6 = ipv6Command(name, cfg)
  if (v6) lines.push(v6)
  lines.push(`link set dev ${name} up`)
  return lines
}

function ipv6Command(name: string, cfg: TunAddressConfig): string | undefined {
  if (cfg.localV6 === undefined && cfg.peerV6 === undefined) return undefined
  if (cfg.localV6 === undefined) throw new RangeError('peerV6 given without localV6')

  checkAddress(cfg.localV6, isIPv6, 'localV6')
  const prefix = cfg.prefixV6 ?? PREFIX_V6_DEFAULT
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 128) {
    throw new RangeError(`prefixV6 ${prefix} is not an integer in 0..128`)
  }
  if (cfg.mtu < IPV6_MTU_MIN) {
    throw new RangeError(`mtu ${cfg.mtu} is below ${IPV6_MTU_MIN}, the least IPv6 allows`)
  }
  if (cfg.peerV6 === undefined) return `address add ${cfg.localV6}/${prefix} dev ${name}`

  checkAddress(cfg.peerV6, isIPv6, 'peerV6')
  return `address add ${cfg.localV6} peer ${cfg.peerV6}/${prefix} dev ${name}`
}

/**
 * Sets the MTU, the point-to-point addresses and brings `name` up, in one `ip -batch -` exec.
 * Needs CAP_NET_ADMIN. Throws `TUN_CONFIG_FAILED` with ip's stderr when ip fails (the
 * interface may then be partly configured; closing the device removes it), RangeError on
 * malformed input.
 */
export async function configureTun(name: string, cfg: TunAddressConfig): Promise<void> {
  const script = `${tunConfigCommands(name, cfg).join('\n')}\n`
  const result = await runIp(['-batch', '-'], script)
  if (result.ok) return

  throw new AnygateError('TUN_CONFIG_FAILED', `ip could not configure ${name}: ${result.reason}`)
}

/**
 * Whether an interface called `name` exists (in `opts.netns` if given). Throws
 * `TUN_CONFIG_FAILED` when ip fails for another reason (no such namespace, no ip binary).
 */
export async function linkExists(name: string, opts: NetnsOption = {}): Promise<boolean> {
  checkIfName(name)
  const result = await runIp([...netnsArgs(opts), 'link', 'show', 'dev', name])
  if (result.ok) return true
  if (isMissingDevice(result.reason)) return false

  throw new AnygateError('TUN_CONFIG_FAILED', `ip could not look up ${name}: ${result.reason}`)
}

/**
 * Deletes the interface `name` (in `opts.netns` if given). Returns false when there was none.
 * Throws `TUN_CONFIG_FAILED` when ip fails for another reason.
 */
export async function deleteLink(name: string, opts: NetnsOption = {}): Promise<boolean> {
  checkIfName(name)
  const result = await runIp([...netnsArgs(opts), 'link', 'delete', 'dev', name])
  if (result.ok) return true
  if (isMissingDevice(result.reason)) return false

  throw new AnygateError('TUN_CONFIG_FAILED', `ip could not delete ${name}: ${result.reason}`)
}

type IpResult = {ok: true} | {ok: false; reason: string}

/** Runs ip; resolves with ip's complaint instead of rejecting, so callers pick the code. */
function runIp(args: string[], input?: string): Promise<IpResult> {
  return new Promise((resolve) => {
    const child = execFile(IP_BINARY, args, {timeout: IP_TIMEOUT_MS}, (err, _stdout, stderr) => {
      if (!err) return resolve({ok: true})

      const reason = stderr.trim() || err.message
      resolve({ok: false, reason: reason.replace(/\s*\n\s*/g, '; ')})
    })
    // ip may exit before reading all of stdin; the exit status tells what happened.
    child.stdin?.on('error', () => {})
    child.stdin?.end(input ?? '')
  })
}

const netnsArgs = ({netns}: NetnsOption) => {
  if (netns === undefined) return []
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(netns)) throw new RangeError(`bad netns name ${netns}`)
  return ['-n', netns]
}

const isMissingDevice = (reason: string) =>
  /does not exist|Cannot find device|No such device/.test(reason)

function checkIfName(name: string): void {
  if (IFNAME_PATTERN.test(name) && name !== '.' && name !== '..') return
  throw new RangeError(`interface name ${JSON.stringify(name)} is not 1-15 of [A-Za-z0-9_.@+-]`)
}

function checkMtu(mtu: number): void {
  if (Number.isInteger(mtu) && mtu >= MTU_MIN && mtu <= MTU_MAX) return
  throw new RangeError(`mtu ${mtu} is not an integer in ${MTU_MIN}..${MTU_MAX}`)
}

function checkAddress(value: string, isValid: (s: string) => boolean, what: string): void {
  if (isValid(value) && !value.includes('%')) return
  throw new RangeError(`${what} ${JSON.stringify(value)} is not a valid address`)
}
