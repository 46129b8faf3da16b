import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {readNewSecret} from '../../lib/cli/read-secret.js'
import {hashFlag, passwordStdinFlag, resolveUsersFile, usersFlag} from '../../lib/cli/user-flags.js'
import {
  hashPassword,
  type WritableScheme,
} from '../../lib/config/password-hash.js'
import {
  readUsersFileOrEmpty,
  updateUsersFile,
  validateGroupName,
  validateUserName,
} from '../../lib/config/users-file.js'

export default class UserAdd extends BaseCommand {
  static override args = {
    name: Args.string({description: 'Login name of the new user.', required: true}),
  }

  static override description = `Appends NAME:GROUPS:HASH to the users file, in the format \
ocserv's ocpasswd writes, so the same file works with ocserv and with anygate serve. The \
password is hashed with SHA-512 crypt ($6$) unless --hash says otherwise. Hashes read: $6$, $5$ and $1$ (what ocpasswd writes); yescrypt, bcrypt, scrypt, DES-crypt and the other schemes ocserv takes through the system's crypt(3) are checked through the same crypt(3).

Without --password-stdin the password is asked twice on the terminal; without a terminal the \
command fails instead of waiting. The file is created (mode 0600) if missing, locked while it is \
changed, and replaced atomically.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> alice --group engineering',
    `printf '%s\\n' "$PASSWORD" | <%= config.bin %> <%= command.id %> bob --group eng --group ops --users /etc/ocserv/ocpasswd --password-stdin`,
  ]

  static override flags = {
    group: Flags.string({
      char: 'g',
      description: 'Group the user belongs to; repeat for several. The first is the default group.',
      multiple: true,
    }),
    hash: hashFlag,
    'password-stdin': passwordStdinFlag,
    users: usersFlag,
  }

  static override summary = 'Add a user to the users file.'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(UserAdd)
    const groups = flags.group ?? []
    validateUserName(args.name)
    for (const g of groups) validateGroupName(g)

    const file = resolveUsersFile(flags.users, true)
    readUsersFileOrEmpty(file).requireAbsent(args.name)

    const password = await readNewSecret({
      what: `password for ${args.name}`,
      stdinFlag: 'password-stdin',
      fromStdin: flags['password-stdin'],
    })
    const hash = hashPassword(password, flags.hash as WritableScheme)
    const {file: users} = await updateUsersFile(file, (u) => u.add(args.name, groups, hash), {
      create: true,
      onWarning: (msg) => this.warn(msg),
    })

    for (const p of users.problems()) this.warn(`${file} line ${p.line}: ${p.reason}`)
    this.log(`added user ${args.name} to ${file}`)
  }
}
