/**
 * Where serve keeps what it makes and reads by default: the CA and server certificate, the
 * users file, the control socket. `ANYGATE_STATE_DIR` overrides the default, so tests and
 * scripts can move everything at once.
 */
import fs from 'node:fs'
import path from 'node:path'

import {configError} from '../errors.js'

export const DEFAULT_STATE_DIR = '/var/lib/anygate'

export function defaultStateDir(): string {
  return process.env.ANYGATE_STATE_DIR || DEFAULT_STATE_DIR
}

export const USERS_FILE_NAME = 'users'

export function defaultUsersFile(stateDir = defaultStateDir()): string {
  return path.join(stateDir, USERS_FILE_NAME)
}

export const CONTROL_SOCKET_NAME = 'control.sock'

/** Where serve listens for `session` and `status` unless told otherwise. */
export function defaultControlSocket(stateDir = defaultStateDir()): string {
  return path.join(stateDir, CONTROL_SOCKET_NAME)
}

/** Creates the state directory (mode 0700) if missing; throws a ConfigError when it cannot. */
export function ensureStateDir(dir: string): string {
  try {
    fs.mkdirSync(dir, {recursive: true, mode: 0o700})
  } catch (err) {
    throw configError('CONFIG_STATE_DIR', `cannot create state directory ${dir}: ${(err as Error).message}`)
  }

  return dir
}
