import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {resolveUsersFile, usersFlag} from '../../lib/cli/user-flags.js'
import {updateUsersFile} from '../../lib/config/users-file.js'

export default class UserRemove extends BaseCommand {
  static override args = {
    name: Args.string({description: 'Login name of the user to remove.', required: true}),
  }

  static override description = `Deletes the user's line (and any later duplicate lines for the \
same name) from the users file. A running "anygate serve" stops accepting the user once it has \
reloaded the file; sessions already up are not ended.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    '<%= config.bin %> <%= command.id %> bob --users /etc/ocserv/ocpasswd',
  ]

  static override flags = {
    users: usersFlag,
  }

  static override summary = 'Remove a user from the users file.'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(UserRemove)
    const file = resolveUsersFile(flags.users)
    await updateUsersFile(file, (u) => u.remove(args.name), {onWarning: (msg) => this.warn(msg)})
    this.log(`removed user ${args.name} from ${file}`)
  }
}
