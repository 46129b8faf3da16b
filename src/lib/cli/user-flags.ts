/**
 * Flags and path handling shared by the `user` commands.
 */
import path from 'node:path'

import {Flags} from '@oclif/core'

import {defaultStateDir, defaultUsersFile, ensureStateDir} from '../config/state-dir.js'

export const usersFlag = Flags.string({
  description: `Users file in ocpasswd format (default: ${defaultUsersFile('<state dir>')}, where the state dir is $ANYGATE_STATE_DIR or /var/lib/anygate).`,
  helpValue: 'FILE',
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
