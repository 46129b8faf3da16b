import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {controlClient, controlFlags} from '../../lib/cli/control-flags.js'
import type {BanRemoveResult} from '../../lib/control/protocol.js'

export default class BanRemove extends BaseCommand {
  static override args = {
    address: Args.string({description: 'The client address, as `ban list` prints it.', required: true}),
  }

  static override description = `Lifts the ban on an address and forgets its failed-login score, on a \
running serve: its next connection is served at once. Exits non-zero when the address has neither.`

  static override enableJsonFlag = true

  static override examples = ['<%= config.bin %> <%= command.id %> 198.18.0.7']

  static override flags = {
    ...controlFlags,
  }

  static override summary = 'Lift the ban on an address.'

  async run(): Promise<BanRemoveResult> {
    const {args, flags} = await this.parse(BanRemove)
    const result = await controlClient(flags).removeBan(args.address)
    this.log(`ban and score of ${result.removed} removed`)
    return result
  }
}
