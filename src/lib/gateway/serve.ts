/**
 * Wires one running gateway: state directory, certificate, users file, TUN factory, listener,
 * and the signals that stop it. The `serve` command calls `startGateway` and waits.
 */
import fs from 'node:fs'
import net from 'node:net'

import {Gateway} from './server.js'
import {defaultUsersFile, ensureStateDir} from '../config/state-dir.js'
import type {ServeConfig} from '../config/schema.js'
import {UsersDb} from '../config/users-file.js'
import {configError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import {ensureServerCert} from '../pki/server-cert.js'
import {configureTun} from '../tun/ip.js'
import {openTun} from '../tun/native.js'

export interface RunningGateway {
  gateway: Gateway
  address: {host: string; port: number}
  /** Disconnects every client, removes every interface, closes the listener. */
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

export async function startGateway(config: ServeConfig, log: Logger, version: string): Promise<RunningGateway> {
  ensureStateDir(config.stateDir)
  const {certPem, keyPem} = await loadCertificate(config, log)
  const usersFile = config.users ?? defaultUsersFile(config.stateDir)
  const users = await UsersDb.open(usersFile, log)
  users.watch()

  const gateway = new Gateway({
    config,
    certPem,
    keyPem,
    users,
    tun: {open: openTun, configure: configureTun},
    log,
    version,
  })

  let address
  try {
    address = await gateway.listen()
  } catch (err) {
    users.close()
    const e = err as NodeJS.ErrnoException
    const hint = e.code === 'EACCES' ? ['ports below 1024 need root or CAP_NET_BIND_SERVICE'] : []
    throw configError('SERVE_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${e.message}`, hint)
  }

  log.info('listening', {host: address.host, port: address.port, users: usersFile, pool: config.ipv4Pool.text})
  return {
    gateway,
    address,
    async stop() {
      await gateway.stop()
      users.close()
    },
  }
}
