/**
 * Flags and path handling shared by the `user` commands.
 */
import path from 'node:path'

import {Flags} from '@oclif/core'

import {WRITABLE_SCHEMES} from '../config/password-hash.js'
import {defaultStateDir, defaultUsersFile, ensureStateDir} from '../config/state-dir.js'

export const usersFlag = Flags.string({
  description: `Users file in ocpasswd format (default: ${defaultUsersFile('<state dir>')}, where the state dir is $ANYGATE_STATE_DIR or /var/lib/anygate).`,
  helpValue: 'FILE',
})

/** The hash a new password is written with (`user add`, `user passwd`). */
export const hashFlag = Flags.string({
  default: 'sha512',
  description: 'Password hash to write: sha512 ($6$) or sha256 ($5$, what ocpasswd writes).',
  options: Object.keys(WRITABLE_SCHEMES),
})

export const passwordStdinFlag = Flags.boolean({
  description: 'Read the password from the first line of standard input instead of asking.',
})

/**
 * The users file a command works on: `--users` as given, or serve's default users file. When
 * `create` is set and the default is used, the state directory is created (0700) if missing.
 */
export function resolveUsersFile(flag: string | undefined, create = false): string {
  if (flag !== undefined) return path.resolve(flag)
  const dir = defaultStateDir()
  if (create) ensureStateDir(dir)
  return defaultUsersFile(dir)
}
