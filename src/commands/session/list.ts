import chalk from 'chalk'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {controlClient, controlFlags, fitTable, humanAge, humanBytes} from '../../lib/cli/control-flags.js'
import type {SessionInfo} from '../../lib/control/protocol.js'

const MAX_USER_WIDTH = 12
const DEFAULT_WIDTH = 80
/** The columns given up first when the table is too wide, by header. */
const DROP_ORDER = ['AGE', 'OUT', 'IN', 'REMOTE']

export default class SessionList extends BaseCommand {
  static override description = `Lists the sessions of a running serve, with their VPN address, \
where they connect from, how long ago they logged in and the bytes moved each way (IN is from \
the client). A session is "idle" between login and tunnel, or after its tunnel dropped while \
its cookie still allows a reconnect. --json prints every field, as \`session show\` does.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json | jq -r \'.[] | select(.user == "alice") | .id\'',
    '<%= config.bin %> <%= command.id %> --control-socket /run/anygate/control.sock',
  ]

  static override flags = {
    ...controlFlags,
  }

  static override summary = 'List the sessions of a running serve.'

  async run(): Promise<SessionInfo[]> {
    const {flags} = await this.parse(SessionList)
    const sessions = await controlClient(flags).sessions()
    this.printTable(sessions)
    return sessions
  }

  private printTable(sessions: SessionInfo[]): void {
    if (sessions.length === 0) {
      this.log('no sessions')
      return
    }

    const now = Date.now()
    const header = ['ID', 'USER', 'VPN-IP', 'REMOTE', 'AGE', 'IN', 'OUT', 'STATE']
    const rows = sessions.map((s) => [
      s.id,
      shorten(s.user, MAX_USER_WIDTH),
      s.ipv4 ?? s.ipv6 ?? '-',
      s.remoteAddress.replace(/^::ffff:/, ''),
      humanAge((now - Date.parse(s.connectedAt)) / 1000),
      humanBytes(s.bytesIn),
      humanBytes(s.bytesOut),
      s.state === 'connected' ? (s.dtls ? 'dtls' : 'tls') : 'idle',
    ])
    // A terminal's own width, else 80: long IPv6 addresses would push the table past it.
    const width = process.stdout.isTTY && process.stdout.columns > 0 ? process.stdout.columns : DEFAULT_WIDTH
    const {lines, dropped} = fitTable([header, ...rows], width, DROP_ORDER)
    const [head, ...body] = lines
    this.log(chalk.bold(head))
    for (const line of body) this.log(line)
    if (dropped.length > 0) this.log(chalk.dim(`(${dropped.join(', ')} left out to fit ${width} columns; --json or session show ID has every field)`))
  }
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}
