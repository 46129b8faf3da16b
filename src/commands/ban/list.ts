import chalk from 'chalk'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {alignRows, controlClient, controlFlags, humanAge} from '../../lib/cli/control-flags.js'
import type {BanInfo} from '../../lib/control/protocol.js'

export default class BanList extends BaseCommand {
  static override description = `Lists the client addresses a running serve has scored for failed \
logins: banned ones first, then by score. A banned address gets no TLS handshake until its ban \
ends (UNTIL); an address that is not banned loses its score at UNTIL if it fails no more. \
Scoring is set by max-ban-score, ban-points-wrong-password and ban-reset-time.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json | jq -r \'.[] | select(.banned) | .address\'',
  ]

  static override flags = {
    ...controlFlags,
  }

  static override summary = 'List the addresses scored for failed logins, and the banned ones.'

  async run(): Promise<BanInfo[]> {
    const {flags} = await this.parse(BanList)
    const bans = await controlClient(flags).bans()
    if (bans.length === 0) {
      this.log('no scored addresses')
      return bans
    }

    const now = Date.now()
    const rows = bans.map((b) => [
      b.address,
      String(b.score),
      b.banned ? chalk.red('banned') : 'scored',
      `${b.until} (in ${humanAge((Date.parse(b.until) - now) / 1000)})`,
    ])
    const [head, ...lines] = alignRows([['ADDRESS', 'SCORE', 'STATE', 'UNTIL'], ...rows])
    this.log(chalk.bold(head))
    for (const line of lines) this.log(line)
    return bans
  }
}
