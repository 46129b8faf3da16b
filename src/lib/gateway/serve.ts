/**
 * Wires one running gateway: state directory, certificate, users file, TUN factory, listener,
 * and the signals that stop it. The `serve` command calls `startGateway` and waits.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'

import {planReload} from './reload.js'
import {Gateway, type GatewayOptions} from './server.js'
import {defaultUsersFile, ensureStateDir} from '../config/state-dir.js'
import type {ServeConfig} from '../config/schema.js'
import {UsersDb} from '../config/users-file.js'
import {ControlServer} from '../control/server.js'
import type {StatusInfo} from '../control/protocol.js'
import {configError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import {pinSha256} from '../pki/pin.js'
import {ensureServerCert} from '../pki/server-cert.js'
import {configureTun} from '../tun/ip.js'
import {openTun} from '../tun/native.js'

export interface RunningGateway {
  gateway: Gateway
  address: {host: string; port: number}
  control: ControlServer
  /**
   * SIGHUP: takes the live settings of `next` (see reload.ts), names in the log each one that
   * needs a restart, re-reads the users file and the certificate. Without `next` (a config
   * that did not read) the users file and the certificate. Never rejects: failures are logged.
   */
  reload(next?: ServeConfig): Promise<void>
  /** Disconnects every client, removes every interface, closes the listener and the socket. */
  stop(): Promise<void>
}

function readPem(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw configError('CONFIG_UNREADABLE', `cannot read ${what} ${file}: ${(err as Error).message}`)
  }
}

async function loadCertificate(config: ServeConfig, log: Logger) {
  if (config.cert && config.key) {
    return {certPem: readPem(config.cert, 'certificate'), keyPem: readPem(config.key, 'key')}
  }

  if (config.cert || config.key) {
    throw configError('CONFIG_CERT_PAIR', '--cert and --key must be given together')
  }

  const host = config.listen.host
  const extra = net.isIP(host) && host !== '0.0.0.0' && host !== '::' ? [host] : []
  const made = await ensureServerCert(config.stateDir, log, extra)
  log.info('server certificate', {path: made.certPath, pin: made.pin})
  return made
}

export async function startGateway(config: ServeConfig, log: Logger, version: string, recorder?: GatewayOptions['recorder']): Promise<RunningGateway> {
  ensureStateDir(config.stateDir)
  const {certPem, keyPem} = await loadCertificate(config, log)
  const usersFile = config.users ?? defaultUsersFile(config.stateDir)
  const users = await UsersDb.open(usersFile, log)
  users.watch()

  const listen: StatusInfo['listen'] = []
  const gateway = new Gateway({
    config,
    certPem,
    keyPem,
    users,
    tun: {open: openTun, configure: configureTun},
    log,
    version,
    recorder,
  })

  // The control socket first: once 'listening' is logged, `anygate session` must find it.
  const control = new ControlServer({path: config.controlSocket, gateway, version, listen, log})
  try {
    await control.start()
  } catch (err) {
    users.close()
    gateway.sessions.close()
    throw err
  }

  let address
  try {
    address = await gateway.listen()
  } catch (err) {
    await control.stop()
    users.close()
    gateway.sessions.close()
    const e = err as NodeJS.ErrnoException
    const hint = e.code === 'EACCES' ? ['ports below 1024 need root or CAP_NET_BIND_SERVICE'] : []
    throw configError('SERVE_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${e.message}`, hint)
  }

  listen.push({transport: 'tcp', ...address})
  // The DTLS listener, when on, shares the TLS listener's address and port.
  if (gateway.udp) listen.push({transport: 'udp', ...address})
  log.info('listening', {host: address.host, port: address.port, users: usersFile, pool: config.ipv4Pool.text})
  return {
    gateway,
    address,
    control,
    async reload(next?: ServeConfig) {
      if (next) applyReload(gateway, next, log)
      users.refresh()
      await reloadCertificate(gateway, log)
    },
    async stop() {
      await control.stop()
      await gateway.stop()
      users.close()
    },
  }
}

/**
 * The certificate and key again, from --cert/--key or the state directory (where an expiring
 * certificate of serve's own is reissued, as at start). A pair that cannot be used is logged
 * and the running one kept.
 */
async function reloadCertificate(gateway: Gateway, log: Logger) {
  try {
    const {certPem, keyPem} = await loadCertificate(gateway.config, log)
    if (gateway.setCertificate(certPem, keyPem)) {
      const cert = new crypto.X509Certificate(certPem)
      log.info('certificate reloaded', {subject: cert.subject.replace(/\n/g, ', '), pin: pinSha256(cert)})
    }
  } catch (err) {
    log.error('certificate reload failed', {reason: (err as Error).message, kept: 'the running certificate'})
  }
}

function applyReload(gateway: Gateway, next: ServeConfig, log: Logger) {
  const plan = planReload(gateway.config, next)
  for (const key of plan.needsRestart) {
    log.warn('setting needs a restart', {setting: key, reason: 'kept the running value'})
  }

  gateway.reconfigure(plan.config)
  log.setLevel?.(plan.config.logLevel)
  log.info('config reloaded', {changed: plan.changed.join(',') || 'none'})
}
