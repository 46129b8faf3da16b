import {BaseCommand} from '../lib/cli/base-command.js'
import {alignRows, controlClient, controlFlags, humanAge} from '../lib/cli/control-flags.js'
import type {PoolUse, StatusInfo} from '../lib/control/protocol.js'

export default class Status extends BaseCommand {
  static override description = `Asks a running serve how it is: version and process, uptime, the \
addresses it listens on, its control socket, how many sessions it holds (and how many have a \
tunnel up), how much of each address pool is leased, and how many addresses are banned. Exits non-zero, with one line, when \
no serve answers.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json --state-dir /srv/anygate',
  ]

  static override flags = {
    ...controlFlags,
  }

  static override summary = 'Show the state of a running serve.'

  async run(): Promise<StatusInfo> {
    const {flags} = await this.parse(Status)
    const st = await controlClient(flags).status()

    const listen = st.listen.map((l) => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}/${l.transport}`)
    const rows = [
      ['serve', `anygate ${st.version}, pid ${st.pid}`],
      ['up', `${humanAge(st.uptimeSeconds)} (since ${st.startedAt})`],
      ['listening', listen.join(', ') || '-'],
      ['control', st.controlSocket],
      ['sessions', `${st.sessions.total} (${st.sessions.connected} with a tunnel up)`],
      ['ipv4 pool', poolText(st.pools.ipv4)],
      ['ipv6 pool', st.pools.ipv6 ? poolText(st.pools.ipv6) : '-'],
      ['bans', `${st.bans.banned} banned, ${st.bans.scored} scored for failed logins`],
      ['dtls drops', st.dtls ? dropsText(st.dtls) : 'dtls off'],
    ]
    for (const line of alignRows(rows)) this.log(line)
    return st
  }
}

function poolText(p: PoolUse): string {
  return `${p.cidr}: ${p.used} of ${p.size} addresses leased`
}

function dropsText(d: NonNullable<StatusInfo['dtls']>): string {
  const codes = Object.entries(d.drops).sort(([, a], [, b]) => b - a)
  const total = codes.reduce((n, [, c]) => n + c, 0)
  const detail = codes.map(([code, n]) => `${code.replace(/^DTLS_/, '').toLowerCase()} ${n}`).join(', ')
  const sends = d.sendDropped > 0 ? `; ${d.sendDropped} sends dropped (queue full)` : ''
  return `${total} datagrams${detail ? ` (${detail})` : ''}${sends}`
}
