import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {readNewSecret} from '../../lib/cli/read-secret.js'
import {hashFlag, passwordStdinFlag, resolveUsersFile, usersFlag} from '../../lib/cli/user-flags.js'
import {
  hashPassword,
  type WritableScheme,
} from '../../lib/config/password-hash.js'
import {readUsersFile, updateUsersFile} from '../../lib/config/users-file.js'

export default class UserPasswd extends BaseCommand {
  static override args = {
    name: Args.string({description: 'Login name of an existing user.', required: true}),
  }

  static override description = `Replaces the user's password hash in the users file. A locked \
user stays locked; unlock with "anygate user unlock". Other lines are left exactly as they are.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    `printf '%s\\n' "$NEW_PASSWORD" | <%= config.bin %> <%= command.id %> alice --users /etc/ocserv/ocpasswd --password-stdin`,
  ]

  static override flags = {
    hash: hashFlag,
    'password-stdin': passwordStdinFlag,
    users: usersFlag,
  }

  static override summary = "Change a user's password."

  async run(): Promise<void> {
    const {args, flags} = await this.parse(UserPasswd)
    const file = resolveUsersFile(flags.users)
    readUsersFile(file).require(args.name)

    const password = await readNewSecret({
      what: `password for ${args.name}`,
      stdinFlag: 'password-stdin',
      fromStdin: flags['password-stdin'],
    })
    const hash = hashPassword(password, flags.hash as WritableScheme)
    const {result: entry} = await updateUsersFile(file, (u) => u.setHash(args.name, hash), {
      onWarning: (msg) => this.warn(msg),
    })

    const note = entry.isLocked ? ' (the user is still locked)' : ''
    this.log(`changed the password of ${args.name} in ${file}${note}`)
  }
}
