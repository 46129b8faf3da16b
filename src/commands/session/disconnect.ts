import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {controlClient, controlFlags} from '../../lib/cli/control-flags.js'
import type {DisconnectResult} from '../../lib/control/protocol.js'
import {configError} from '../../lib/errors.js'

export default class SessionDisconnect extends BaseCommand {
  static override args = {
    id: Args.string({description: 'Session id, as `session list` prints it.'}),
  }

  static override description = `Ends a session, or every session of a user, on a running serve. \
The client is sent a CSTP DISCONNECT, its cookie stops working (it cannot reconnect with it; \
the user logs in again), its interface is removed and its addresses go back to the pool.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %> 3f9a0c5e21b7',
    '<%= config.bin %> <%= command.id %> --user alice',
    '<%= config.bin %> <%= command.id %> --user alice --json --control-socket /run/anygate/control.sock',
  ]

  static override flags = {
    ...controlFlags,
    user: Flags.string({char: 'u', description: 'End every session of this user.', helpValue: 'NAME'}),
  }

  static override summary = 'End a session (or all of a user) on a running serve.'

  async run(): Promise<DisconnectResult> {
    const {args, flags} = await this.parse(SessionDisconnect)
    if ((args.id === undefined) === (flags.user === undefined)) {
      throw configError('SESSION_TARGET', 'give a session id or --user NAME (one of them)', [
        'anygate session list shows the ids',
      ])
    }

    const client = controlClient(flags)
    const result = args.id === undefined ? await client.disconnectUser(flags.user ?? '') : await client.disconnectSession(args.id)
    for (const s of result.disconnected) {
      this.log(`disconnected session ${s.id} of ${s.user} (${s.ipv4 ?? s.ipv6 ?? 'no address'})`)
    }

    return result
  }
}
