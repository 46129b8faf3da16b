import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {resolveUsersFile, usersFlag} from '../../lib/cli/user-flags.js'
import {updateUsersFile} from '../../lib/config/users-file.js'

export default class UserLock extends BaseCommand {
  static override args = {
    name: Args.string({description: 'Login name of the user to lock.', required: true}),
  }

  static override description = `Puts "!" in front of the user's password hash, as "ocpasswd -l" \
does: ocserv and anygate serve both refuse the user's logins until "anygate user unlock". \
Locking a locked user changes nothing and succeeds.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    '<%= config.bin %> <%= command.id %> bob --users /etc/ocserv/ocpasswd',
  ]

  static override flags = {
    users: usersFlag,
  }

  static override summary = 'Lock a user out without removing them.'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(UserLock)
    const file = resolveUsersFile(flags.users)
    const {result: changed} = await updateUsersFile(file, (u) => u.lock(args.name), {
      onWarning: (msg) => this.warn(msg),
    })
    this.log(
      changed ? `locked user ${args.name} in ${file}` : `user ${args.name} was already locked`,
    )
  }
}
