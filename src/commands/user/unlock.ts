import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {resolveUsersFile, usersFlag} from '../../lib/cli/user-flags.js'
import {updateUsersFile} from '../../lib/config/users-file.js'

export default class UserUnlock extends BaseCommand {
  static override args = {
    name: Args.string({description: 'Login name of the user to unlock.', required: true}),
  }

  static override description = `Removes the "!" in front of the user's password hash, as \
"ocpasswd -u" does, so the old password works again. Unlocking a user who is not locked changes \
nothing and succeeds.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    '<%= config.bin %> <%= command.id %> bob --users /etc/ocserv/ocpasswd',
  ]

  static override flags = {
    users: usersFlag,
  }

  static override summary = 'Unlock a user locked with "user lock" or "ocpasswd -l".'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(UserUnlock)
    const file = resolveUsersFile(flags.users)
    const {result: changed} = await updateUsersFile(file, (u) => u.unlock(args.name), {
      onWarning: (msg) => this.warn(msg),
    })
    this.log(changed ? `unlocked user ${args.name} in ${file}` : `user ${args.name} was not locked`)
  }
}
