/**
 * What a SIGHUP may change in a running serve. Settings marked live take effect for the logins
 * and tunnels that follow (tunnels already up keep what they were granted); the others are
 * bound to a listener, a pool or a store made at start, so the running value is kept and the
 * setting is named in the log.
 */
import type {ServeConfig} from '../config/schema.js'

type Field = keyof ServeConfig

/**
 * Each setting's config-file key, and whether it can change without a restart. A setting not
 * listed here is treated as needing a restart, the safe side.
 */
const SETTINGS: Partial<Record<Field, {key: string; isLive: boolean}>> = {
  listen: {key: 'listen', isLive: false},
  stateDir: {key: 'state-dir', isLive: false},
  controlSocket: {key: 'control-socket', isLive: false},
  users: {key: 'users', isLive: false},
  // Read again on every SIGHUP (serve.ts), for new connections; tunnels up keep theirs.
  cert: {key: 'cert', isLive: true},
  key: {key: 'key', isLive: true},
  ipv4Pool: {key: 'ipv4-pool', isLive: false},
  ipv6Pool: {key: 'ipv6-pool', isLive: false},
  dns: {key: 'dns', isLive: true},
  routes: {key: 'route', isLive: true},
  noRoutes: {key: 'no-route', isLive: true},
  defaultDomain: {key: 'default-domain', isLive: true},
  groups: {key: 'group', isLive: true},
  banner: {key: 'banner', isLive: true},
  dtls: {key: 'dtls', isLive: false},
  dtlsCiphers: {key: 'dtls-ciphers', isLive: true},
  device: {key: 'device', isLive: true},
  mtu: {key: 'mtu', isLive: true},
  dpd: {key: 'dpd', isLive: true},
  keepalive: {key: 'keepalive', isLive: true},
  idleTimeout: {key: 'idle-timeout', isLive: true},
  sessionTimeout: {key: 'session-timeout', isLive: true},
  cookieTimeout: {key: 'cookie-timeout', isLive: false},
  rekeyTime: {key: 'rekey-time', isLive: true},
  authTimeout: {key: 'auth-timeout', isLive: false},
  maxBodyBytes: {key: 'max-body-bytes', isLive: true},
  maxHeaderBytes: {key: 'max-header-bytes', isLive: false},
  maxClients: {key: 'max-clients', isLive: true},
  maxBanScore: {key: 'max-ban-score', isLive: true},
  banResetTime: {key: 'ban-reset-time', isLive: true},
  banPointsWrongPassword: {key: 'ban-points-wrong-password', isLive: true},
  logLevel: {key: 'log-level', isLive: true},
  logFormat: {key: 'log-format', isLive: false},
}

export interface ReloadPlan {
  /** The config to run with: `next` for live settings, `current` for the rest. */
  config: ServeConfig
  /** Config-file keys of live settings that changed. */
  changed: string[]
  /** Config-file keys that changed but need a restart; their running value is kept. */
  needsRestart: string[]
}

/** Compares the running config with a freshly read one; pure. */
export function planReload(current: ServeConfig, next: ServeConfig): ReloadPlan {
  const config = {...next}
  const changed: string[] = []
  const needsRestart: string[] = []

  const fields = new Set([...Object.keys(current), ...Object.keys(next)] as Field[])
  for (const field of fields) {
    if (same(current[field], next[field])) continue
    const {key, isLive} = SETTINGS[field] ?? {key: field, isLive: false}
    if (isLive) {
      changed.push(key)
      continue
    }

    needsRestart.push(key)
    ;(config as Record<Field, unknown>)[field] = current[field]
  }

  return {config, changed, needsRestart}
}

function same(a: unknown, b: unknown): boolean {
  const text = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))
  return text(a) === text(b)
}
