import chalk from 'chalk'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {alignRows, controlClient, controlFlags, humanAge, humanBytes} from '../../lib/cli/control-flags.js'
import type {SessionInfo} from '../../lib/control/protocol.js'

const MAX_USER_WIDTH = 12

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
    const [head, ...lines] = alignRows([header, ...rows])
    this.log(chalk.bold(head))
    for (const line of lines) this.log(line)
  }
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}
