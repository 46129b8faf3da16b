/**
 * serve's settings: the embedded defaults, the config file format, and the merge of file and
 * flags. The file format is documented in `docs/anygate.conf.sample` (one `key = value` per
 * line, `#` comments, list keys repeated), familiar to anyone coming from ocserv.
 */
import fs from 'node:fs'
import net from 'node:net'

import {configError} from '../errors.js'
import {type Cidr, type Family, parseCidr, parseHostPort} from './ip.js'
import {defaultControlSocket, defaultStateDir} from './state-dir.js'
import {ALL_DTLS_CIPHER_NAMES, DEFAULT_DTLS_CIPHER_NAMES} from '../dtls/suites.js'
import type {LogFormat, LogLevel} from '../log/logger.js'

export interface GroupConfig {
  name: string
  label: string
}

export interface ServeConfig {
  listen: {host: string; port: number}
  stateDir: string
  /** The control socket of `session` and `status`; default `<stateDir>/control.sock`. */
  controlSocket: string
  /** Users file; default `<stateDir>/users`. */
  users?: string
  cert?: string
  key?: string
  ipv4Pool: Cidr
  ipv6Pool?: Cidr
  dns: string[]
  /** Split-include routes; none means all traffic goes through the tunnel. */
  routes: Cidr[]
  noRoutes: Cidr[]
  defaultDomain?: string
  groups: GroupConfig[]
  banner?: string
  dtls: boolean
  /**
   * DTLS cipher names the server may choose (dtls/suites.ts); DES-CBC3-SHA only when listed.
   * Its order does not matter: the client's preference decides within this set.
   */
  dtlsCiphers: string[]
  /** TUN device name prefix; the kernel appends a number. */
  device: string
  mtu: number
  /** Seconds. 0 disables the idle and session timeouts. */
  dpd: number
  keepalive: number
  idleTimeout: number
  sessionTimeout: number
  cookieTimeout: number
  rekeyTime: number
  authTimeout: number
  maxBodyBytes: number
  maxHeaderBytes: number
  maxClients: number
  /** Ban scoring (http-auth/ban.ts): the score that bans an address; 0 = off. */
  maxBanScore: number
  /** Seconds a ban lasts after the last point, and after which a score resets. */
  banResetTime: number
  /** Points a failed login adds to its source address. */
  banPointsWrongPassword: number
  logLevel: LogLevel
  logFormat: LogFormat
}

export const DEFAULTS = {
  listen: '0.0.0.0:443',
  ipv4Pool: '198.19.0.0/24',
  device: 'vpns',
  mtu: 1500,
  dpd: 90,
  keepalive: 32400,
  idleTimeout: 1200,
  sessionTimeout: 0,
  cookieTimeout: 300,
  rekeyTime: 172800,
  authTimeout: 240,
  maxBodyBytes: 64 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxClients: 1024,
  maxBanScore: 80,
  banResetTime: 1200,
  banPointsWrongPassword: 10,
} as const

type Kind = 'string' | 'int' | 'bool' | 'list'

/** Every key the file accepts, with its type. */
const KEYS: Record<string, Kind> = {
  listen: 'string',
  'state-dir': 'string',
  'control-socket': 'string',
  users: 'string',
  cert: 'string',
  key: 'string',
  'ipv4-pool': 'string',
  'ipv6-pool': 'string',
  dns: 'list',
  route: 'list',
  'no-route': 'list',
  'default-domain': 'string',
  group: 'list',
  banner: 'string',
  dtls: 'bool',
  'dtls-ciphers': 'list',
  device: 'string',
  mtu: 'int',
  dpd: 'int',
  keepalive: 'int',
  'idle-timeout': 'int',
  'session-timeout': 'int',
  'cookie-timeout': 'int',
  'rekey-time': 'int',
  'auth-timeout': 'int',
  'max-body-bytes': 'int',
  'max-header-bytes': 'int',
  'max-clients': 'int',
  'max-ban-score': 'int',
  'ban-reset-time': 'int',
  'ban-points-wrong-password': 'int',
  'log-level': 'string',
  'log-format': 'string',
}

export type RawSettings = Record<string, string | number | boolean | string[] | undefined>

/** Reads a config file into raw settings; throws a ConfigError naming the file and line. */
export function readConfigFile(file: string): RawSettings {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw configError('CONFIG_UNREADABLE', `cannot read config file ${file}: ${(err as Error).message}`)
  }

  return parseConfigText(text, file)
}

export function parseConfigText(text: string, file = 'config'): RawSettings {
  const out: RawSettings = {}
  const lines = text.split(/\r?\n/)

  for (const [i, line] of lines.entries()) {
    const where = `${file}:${i + 1}`
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) continue

    const eq = trimmed.indexOf('=')
    if (eq < 0) throw configError('CONFIG_SYNTAX', `${where}: expected "key = value"`)
    const key = trimmed.slice(0, eq).trim()
    const value = trimmed.slice(eq + 1).trim()
    const kind = KEYS[key]
    if (!kind) throw configError('CONFIG_UNKNOWN_KEY', `${where}: unknown key "${key}"`)
    out[key] = convert(kind, key, value, where, out[key])
  }

  return out
}

function convert(kind: Kind, key: string, value: string, where: string, prev: RawSettings[string]) {
  switch (kind) {
    case 'list':
      return [...((prev as string[] | undefined) ?? []), value]
    case 'int': {
      if (!/^\d+$/.test(value)) throw configError('CONFIG_BAD_VALUE', `${where}: ${key} must be a whole number`)
      return Number(value)
    }

    case 'bool': {
      if (!/^(true|false)$/.test(value)) throw configError('CONFIG_BAD_VALUE', `${where}: ${key} must be true or false`)
      return value === 'true'
    }

    default:
      return value
  }
}

/**
 * Builds the effective config: embedded defaults, then the file, then flags (later wins;
 * lists given as flags replace the file's list).
 */
export function resolveConfig(file: RawSettings, flags: RawSettings): ServeConfig {
  const raw: RawSettings = {...file}
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined) continue
    if (Array.isArray(v) && v.length === 0) continue
    raw[k] = v
  }

  const str = (k: string) => raw[k] as string | undefined
  const int = (k: string, d: number) => checkInt(k, raw[k] ?? d)
  const list = (k: string) => (raw[k] as string[] | undefined) ?? []

  const ipv4Pool = parseCidr(str('ipv4-pool') ?? DEFAULTS.ipv4Pool, 'ipv4-pool')
  checkPool(ipv4Pool, 4, 'ipv4-pool', 30)
  const ipv6Text = str('ipv6-pool')
  const ipv6Pool = ipv6Text ? parseCidr(ipv6Text, 'ipv6-pool') : undefined
  if (ipv6Pool) checkPool(ipv6Pool, 6, 'ipv6-pool', 126)

  for (const d of list('dns')) {
    if (net.isIP(d) === 0) throw configError('CONFIG_BAD_VALUE', `bad dns address ${JSON.stringify(d)}`)
  }

  const config: ServeConfig = {
    listen: parseHostPort(str('listen') ?? DEFAULTS.listen),
    stateDir: str('state-dir') ?? defaultStateDir(),
    controlSocket: str('control-socket') ?? defaultControlSocket(str('state-dir') ?? defaultStateDir()),
    users: str('users'),
    cert: str('cert'),
    key: str('key'),
    ipv4Pool,
    ipv6Pool,
    dns: list('dns'),
    routes: list('route').map((r) => parseRoute(r)),
    noRoutes: list('no-route').map((r) => parseCidr(r, 'no-route')),
    defaultDomain: str('default-domain'),
    groups: list('group').map(parseGroup),
    banner: str('banner'),
    dtls: (raw.dtls as boolean | undefined) ?? true,
    dtlsCiphers: parseDtlsCiphers(list('dtls-ciphers')),
    device: str('device') ?? DEFAULTS.device,
    mtu: int('mtu', DEFAULTS.mtu),
    dpd: int('dpd', DEFAULTS.dpd),
    keepalive: int('keepalive', DEFAULTS.keepalive),
    idleTimeout: int('idle-timeout', DEFAULTS.idleTimeout),
    sessionTimeout: int('session-timeout', DEFAULTS.sessionTimeout),
    cookieTimeout: int('cookie-timeout', DEFAULTS.cookieTimeout),
    rekeyTime: int('rekey-time', DEFAULTS.rekeyTime),
    authTimeout: int('auth-timeout', DEFAULTS.authTimeout),
    maxBodyBytes: int('max-body-bytes', DEFAULTS.maxBodyBytes),
    maxHeaderBytes: int('max-header-bytes', DEFAULTS.maxHeaderBytes),
    maxClients: int('max-clients', DEFAULTS.maxClients),
    maxBanScore: int('max-ban-score', DEFAULTS.maxBanScore),
    banResetTime: int('ban-reset-time', DEFAULTS.banResetTime),
    banPointsWrongPassword: int('ban-points-wrong-password', DEFAULTS.banPointsWrongPassword),
    logLevel: (str('log-level') ?? 'info') as LogLevel,
    logFormat: (str('log-format') ?? 'text') as LogFormat,
  }

  checkRanges(config)
  return config
}

/** Accepts repeated keys and colon- or comma-separated lists; an empty list means the defaults. */
function parseDtlsCiphers(values: string[]): string[] {
  const names = values.flatMap((v) => v.split(/[:,\s]+/)).filter(Boolean)
  if (names.length === 0) return [...DEFAULT_DTLS_CIPHER_NAMES]
  for (const n of names) {
    if (!ALL_DTLS_CIPHER_NAMES.includes(n)) {
      throw configError('CONFIG_BAD_VALUE', `unknown dtls cipher ${JSON.stringify(n)}; known: ${ALL_DTLS_CIPHER_NAMES.join(', ')}`)
    }
  }

  return [...new Set(names)]
}

function checkInt(key: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v)
  throw configError('CONFIG_BAD_VALUE', `${key} must be a whole number, got ${JSON.stringify(v)}`)
}

function checkPool(c: Cidr, family: Family, what: string, maxPrefix: number) {
  if (c.family !== family) throw configError('CONFIG_BAD_CIDR', `${what} must be an IPv${family} network`)
  if (c.prefix > maxPrefix) {
    throw configError('CONFIG_BAD_CIDR', `${what} ${c.text} is too small: at most /${maxPrefix}`)
  }
}

function parseRoute(text: string): Cidr {
  if (text === 'default') return parseCidr('0.0.0.0/0')
  return parseCidr(text, 'route')
}

function parseGroup(text: string): GroupConfig {
  const [name, ...rest] = text.split(':')
  const label = rest.join(':').trim()
  if (!/^[\w.-]{1,64}$/.test(name.trim())) {
    throw configError('CONFIG_BAD_VALUE', `bad group name ${JSON.stringify(name)}: letters, digits, . _ - only`)
  }

  return {name: name.trim(), label: label || name.trim()}
}

function checkRanges(c: ServeConfig) {
  const fail = (msg: string) => {
    throw configError('CONFIG_BAD_VALUE', msg)
  }

  if (c.mtu < 576 || c.mtu > 9000) fail(`mtu ${c.mtu} is out of range 576-9000`)
  if (c.dpd < 1) fail('dpd must be at least 1 second')
  if (c.cookieTimeout < 1) fail('cookie-timeout must be at least 1 second')
  if (c.authTimeout < 1) fail('auth-timeout must be at least 1 second')
  if (c.banResetTime < 1) fail('ban-reset-time must be at least 1 second')
  if (c.maxBodyBytes < 1024) fail('max-body-bytes must be at least 1024')
  if (c.maxHeaderBytes < 1024) fail('max-header-bytes must be at least 1024')
  if (!/^[a-z][a-z0-9_-]{0,9}$/i.test(c.device)) fail(`bad device prefix ${JSON.stringify(c.device)}: 1-10 letters and digits`)
  if (!['error', 'warn', 'info', 'debug'].includes(c.logLevel)) fail(`bad log-level ${c.logLevel}`)
  if (!['text', 'json'].includes(c.logFormat)) fail(`bad log-format ${c.logFormat}`)
}
