import {Args} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {controlClient, controlFlags, humanAge, humanBytes} from '../../lib/cli/control-flags.js'
import type {SessionInfo} from '../../lib/control/protocol.js'

export default class SessionShow extends BaseCommand {
  static override args = {
    id: Args.string({description: 'Session id, as `session list` prints it.', required: true}),
  }

  static override description = `Shows one session of a running serve: user and group, where the \
client connects from and with what, its addresses and interface, when it logged in, bytes and \
packets each way (in = from the client), whether DTLS is up, and the tunnel MTU.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> <%= command.id %> 3f9a0c5e21b7',
    '<%= config.bin %> <%= command.id %> 3f9a0c5e21b7 --json --state-dir /srv/anygate',
  ]

  static override flags = {
    ...controlFlags,
  }

  static override summary = 'Show one session of a running serve.'

  async run(): Promise<SessionInfo> {
    const {args, flags} = await this.parse(SessionShow)
    const s = await controlClient(flags).session(args.id)

    const age = humanAge((Date.now() - Date.parse(s.connectedAt)) / 1000)
    const rows: [string, string][] = [
      ['id', s.id],
      ['user', s.user],
      ['group', s.group ?? '-'],
      ['state', s.state],
      ['remote', s.remoteAddress],
      ['agent', s.userAgent || '-'],
      ['ipv4', s.ipv4 ?? '-'],
      ['ipv6', s.ipv6 ?? '-'],
      ['device', s.device ?? '-'],
      ['mtu', s.mtu === null ? '-' : String(s.mtu)],
      ['since', `${s.connectedAt} (${age} ago)`],
      ['in', `${humanBytes(s.bytesIn)} bytes, ${s.packetsIn} packets`],
      ['out', `${humanBytes(s.bytesOut)} bytes, ${s.packetsOut} packets`],
      ['dtls', s.dtls ? `up${s.dtlsCipher ? ` (${s.dtlsCipher})` : ''}` : 'down'],
    ]
    for (const [k, v] of rows) this.log(`${k.padEnd(7)} ${v}`)
    return s
  }
}
