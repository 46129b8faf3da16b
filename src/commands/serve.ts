import {Flags} from '@oclif/core'

import {BaseCommand} from '../lib/cli/base-command.js'
import {type RawSettings, type ServeConfig, readConfigFile, resolveConfig} from '../lib/config/schema.js'
import {startGateway} from '../lib/gateway/serve.js'
import {LOG_LEVELS, type Logger, createLogger} from '../lib/log/logger.js'
import {GatewayRecorder} from '../lib/replay/gateway-recorder.js'

export default class Serve extends BaseCommand {
  static override description = `Runs the gateway: HTTPS with the AnyConnect XML login, the webvpn session cookie, \
CONNECT /CSCOSSLC/tunnel and the CSTP tunnel over TLS, with one TUN interface per session.

With no configuration at all it uses /var/lib/anygate (or $ANYGATE_STATE_DIR) as its state \
directory, makes a CA and server certificate there on first start, reads the users file \
(ocpasswd format) from it, and listens on 0.0.0.0:443 with the pool 198.19.0.0/24. Settings come \
from the embedded defaults, then --config FILE, then flags. Needs root (TUN interfaces).

SIGINT and SIGTERM send every client a DISCONNECT and remove every interface before exit. \
SIGHUP re-reads the config file, the users file and the server certificate and key without \
dropping anyone: DNS, routes, banner, groups, timers, MTU and log level apply to the logins and \
tunnels that follow, a renewed certificate to the connections that follow; a setting that \
needs a restart (listen, pools...) is named in the log and kept.

\`anygate session\` and \`anygate status\` reach a running serve through its control socket.`

  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --listen 198.18.0.1:443 --ipv4-pool 198.19.0.0/24 --dns 198.19.0.1 --route 198.18.5.0/24',
    '<%= config.bin %> serve --config /etc/anygate/anygate.conf --log-format json',
  ]

  static override flags = {
    cert: Flags.string({description: 'Server certificate (PEM); default: made in the state directory.'}),
    config: Flags.string({char: 'c', description: 'Config file (key = value lines; see anygate.conf.sample).'}),
    'control-socket': Flags.string({description: 'UNIX socket for `session` and `status`; default: <state-dir>/control.sock.'}),
    'cookie-timeout': Flags.integer({description: 'Seconds a session outlives a dropped tunnel.', min: 1}),
    'default-domain': Flags.string({description: 'DNS search domain sent to clients.'}),
    device: Flags.string({description: 'TUN interface name prefix (the kernel appends a number).'}),
    dns: Flags.string({description: 'DNS server for clients (repeatable).', multiple: true}),
    dpd: Flags.integer({description: 'Dead peer detection interval in seconds.', min: 1}),
    group: Flags.string({description: 'Group offered at login, NAME or NAME:LABEL (repeatable).', multiple: true}),
    'idle-timeout': Flags.integer({description: 'Seconds without data before a tunnel is closed; 0 = never.', min: 0}),
    'ipv4-pool': Flags.string({description: 'Client address pool; the first address is the gateway\'s.'}),
    'ipv6-pool': Flags.string({description: 'IPv6 client address pool (optional).'}),
    key: Flags.string({description: 'Private key of --cert (PEM).'}),
    listen: Flags.string({description: 'Address and port to listen on, HOST:PORT.'}),
    'log-format': Flags.string({description: 'Log line format.', options: ['text', 'json']}),
    'log-level': Flags.string({description: 'Least important level logged.', options: [...LOG_LEVELS]}),
    'max-body-bytes': Flags.integer({description: 'Largest login request body accepted.', min: 1024}),
    'max-header-bytes': Flags.integer({description: 'Largest HTTP header block accepted.', min: 1024}),
    'auth-timeout': Flags.integer({description: 'Seconds a connection may take to log in and start its tunnel.', min: 1}),
    'ban-points-wrong-password': Flags.integer({description: 'Points a failed login adds to its source address.', min: 0}),
    'ban-reset-time': Flags.integer({description: 'Seconds a ban lasts after the last failed login (and a score without news resets).', min: 1}),
    'max-ban-score': Flags.integer({description: 'Score at which an address is banned (see `anygate ban`); 0 = never.', min: 0}),
    mtu: Flags.integer({description: 'Link MTU the tunnel MTU is computed from.', min: 576, max: 9000}),
    'dtls-ciphers': Flags.string({
      description: 'DTLS ciphers the server may choose, colon-separated (PSK-NEGOTIATE, AES256-GCM-SHA384, …).',
    }),
    'no-dtls': Flags.boolean({description: 'Offer no DTLS channel (the TLS tunnel only).'}),
    record: Flags.string({description: 'Write one transcript per client login into this directory, for `anygate replay`.'}),
    'record-address': Flags.string({description: 'Record only logins from this client address (repeatable).', multiple: true, dependsOn: ['record']}),
    'record-user': Flags.string({description: 'Record only logins of this user (repeatable).', multiple: true, dependsOn: ['record']}),
    route: Flags.string({description: 'Route pushed to clients, CIDR (repeatable); none = all traffic.', multiple: true}),
    'session-timeout': Flags.integer({description: 'Seconds a session may last in all; 0 = no limit.', min: 0}),
    'state-dir': Flags.string({description: 'State directory (certificates, users file, control socket).'}),
    users: Flags.string({description: 'Users file in ocpasswd format; default: <state-dir>/users.'}),
  }

  static override summary = 'Run the VPN gateway.'

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    const file = flags.config ? readConfigFile(flags.config) : {}
    const fromFlags: RawSettings = {
      listen: flags.listen,
      'state-dir': flags['state-dir'],
      'control-socket': flags['control-socket'],
      users: flags.users,
      cert: flags.cert,
      key: flags.key,
      'ipv4-pool': flags['ipv4-pool'],
      'ipv6-pool': flags['ipv6-pool'],
      dns: flags.dns,
      route: flags.route,
      group: flags.group,
      'default-domain': flags['default-domain'],
      device: flags.device,
      dpd: flags.dpd,
      mtu: flags.mtu,
      'idle-timeout': flags['idle-timeout'],
      'session-timeout': flags['session-timeout'],
      'cookie-timeout': flags['cookie-timeout'],
      'auth-timeout': flags['auth-timeout'],
      'max-ban-score': flags['max-ban-score'],
      'ban-reset-time': flags['ban-reset-time'],
      'ban-points-wrong-password': flags['ban-points-wrong-password'],
      'max-body-bytes': flags['max-body-bytes'],
      'max-header-bytes': flags['max-header-bytes'],
      'log-level': flags['log-level'],
      'log-format': flags['log-format'],
      dtls: flags['no-dtls'] ? false : undefined,
      'dtls-ciphers': flags['dtls-ciphers'] ? [flags['dtls-ciphers']] : undefined,
    }
    const config = resolveConfig(file, fromFlags)
    const log = createLogger({level: config.logLevel, format: config.logFormat})
    const recorder = flags.record
      ? new GatewayRecorder({dir: flags.record, users: flags['record-user'] ?? [], addresses: flags['record-address'] ?? []}, log)
      : undefined
    const running = await startGateway(config, log, this.config.version, recorder)

    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info('stopping', {signal, tunnels: running.gateway.tunnelCount})
        running
          .stop()
          .catch((err) => log.error('stop failed', {reason: (err as Error).message}))
          .finally(() => {
            // After the tunnels closed: what they still sent is in, and nothing open is lost.
            recorder?.flush()
            resolve()
          })
      }

      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGHUP', () => {
        log.info('reloading', {signal: 'SIGHUP', config: flags.config})
        running.reload(this.rereadConfig(flags.config, fromFlags, log)).catch((err) => log.error('reload failed', {reason: (err as Error).message}))
      })
    })
    log.info('stopped')
  }

  /** SIGHUP: the config file and flags again; undefined (and an error logged) if it is bad. */
  private rereadConfig(file: string | undefined, fromFlags: RawSettings, log: Logger): ServeConfig | undefined {
    try {
      return resolveConfig(file ? readConfigFile(file) : {}, fromFlags)
    } catch (err) {
      log.error('config reload failed', {reason: (err as Error).message, config: file})
      return undefined
    }
  }
}
