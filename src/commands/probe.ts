import {password as promptPassword} from '@inquirer/prompts'
import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../lib/cli/base-command.js'
import {readFirstLine} from '../lib/cli/read-secret.js'
import {configError} from '../lib/errors.js'
import {type Check, type CheckStatus, FAMILY_NAMES} from '../lib/probe/checks.js'
import {type ChainEntry, chainRole} from '../lib/probe/chain.js'
import {type ProbeReport, UnreachableError, probeGateway} from '../lib/probe/run.js'
import {ClientRecorder} from '../lib/replay/recorder.js'

const STEP_TITLES: Record<string, string> = {tls: 'TLS', auth: 'Login form', login: 'Login', tunnel: 'Tunnel'}
/** The certificate chain is laid out for a terminal this wide. */
const CHAIN_TEXT_WIDTH = 80

export default class Probe extends BaseCommand {
  static override args = {
    url: Args.string({description: 'The gateway, https://HOST[:PORT][/PATH].', required: true}),
  }

  static override description = `Speaks to a gateway as Cisco Secure Client (or openconnect, with --as) \
would, and reports what works, what is odd, and what will break which client: TLS (versions, \
the certificate chain one certificate at a time with its expiry, host name, trust, pin), the XML \
login form and the legacy form of openconnect --no-xmlpost, and with --user the login, CONNECT \
with a Cisco-like header set, every CSTP/DTLS header interpreted, and a DPD round trip over \
CSTP; where DTLS is offered, the handshake and a DPD over it, then a second CONNECT with the \
same cookie as the other client family, so both DTLS modes are tried (PSK-NEGOTIATE as \
openconnect, resumption as Cisco Secure Client). Last, with --user, a second login through the \
legacy form, as openconnect --no-xmlpost logs in, and a CONNECT with its cookie. Each session is \
ended with a DISCONNECT so the gateway frees it at once.

With --record, the transcript holds the login and first CONNECT of the client --as names; the \
legacy login and the other family's CONNECT are other clients and are not recorded.

Exit status: 0 when nothing fails, 1 when a check fails, 2 when the gateway cannot be reached.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> probe https://vpn.example.com/',
    'echo "$PW" | <%= config.bin %> probe https://198.18.0.1/ --user alice --password-stdin --servercert pin-sha256:AbC...=',
    '<%= config.bin %> probe https://vpn.example.com/ --as openconnect --cafile ca.pem --json',
    'echo "$PW" | <%= config.bin %> probe https://198.18.0.1/ --user alice --password-stdin --record login.json',
  ]

  static override flags = {
    as: Flags.string({description: 'Which client to imitate.', options: ['cisco', 'openconnect'], default: 'cisco'}),
    cafile: Flags.string({description: 'Trust the gateway certificate against this CA file instead of the system store.'}),
    group: Flags.string({description: 'Group to select at login (value or label).'}),
    'password-stdin': Flags.boolean({description: 'Read the password from the first line of standard input.', dependsOn: ['user']}),
    record: Flags.string({description: 'Also write the exchange as a transcript for `anygate replay`, secrets replaced.'}),
    servercert: Flags.string({description: 'Expected certificate pin, as openconnect takes it: pin-sha256:BASE64.'}),
    timeout: Flags.integer({description: 'Seconds each step may take.', default: 10, min: 1, max: 300}),
    user: Flags.string({char: 'u', description: 'Log in as this user (XML and legacy form) and test the tunnel.'}),
  }

  static override summary = 'Grade a gateway\'s compatibility with Cisco Secure Client and openconnect.'

  async run(): Promise<ProbeReport> {
    const {args, flags} = await this.parse(Probe)
    if (flags.servercert && !/^pin-sha256:[A-Za-z0-9+/]{43}=$/.test(flags.servercert)) {
      throw configError('PROBE_BAD_PIN', `bad --servercert ${JSON.stringify(flags.servercert)}: expected pin-sha256:BASE64`)
    }

    const password = flags.user ? await this.password(flags['password-stdin'], flags.user) : undefined
    const isTty = process.stderr.isTTY && !this.jsonEnabled()
    const recorder = flags.record ? new ClientRecorder('probe', args.url, {user: flags.user, password}) : undefined
    let report: ProbeReport
    try {
      report = await probeGateway({
        recorder,
        url: args.url,
        as: flags.as as 'cisco' | 'openconnect',
        timeoutMs: flags.timeout * 1000,
        cafile: flags.cafile,
        servercert: flags.servercert,
        user: flags.user,
        password,
        group: flags.group,
        onStep: isTty ? (step, state) => process.stderr.write(state === 'start' ? chalk.dim(`… ${step}\r`) : '\x1b[2K') : undefined,
      })
    } catch (err) {
      if (!(err instanceof UnreachableError)) throw err
      this.logToStderr(`Error: ${err.message}`)
      this.exit(2)
    }

    if (recorder && flags.record) recorder.save(flags.record)
    if (report.checks.some((c) => c.status === 'fail')) process.exitCode = 1
    if (!this.jsonEnabled()) this.print(report)
    return report
  }

  private async password(fromStdin: boolean, user: string): Promise<string> {
    const what = `password for ${user}`
    if (fromStdin) return readFirstLine(process.stdin, {what, stdinFlag: 'password-stdin', fromStdin})
    if (!process.stdin.isTTY) {
      throw configError('PROBE_NO_PASSWORD', `no terminal to ask the ${what}: use --password-stdin`)
    }

    return promptPassword({message: `Password for ${user}:`, mask: '*'})
  }

  /** The chain, one block per certificate, leaf first; every line within 80 columns. */
  private printChain(r: ProbeReport) {
    const chain = r.tls?.chain ?? []
    if (chain.length === 0) return
    this.log('\n' + chalk.bold('Certificate chain') + chalk.dim(' (leaf first)'))
    for (const [i, c] of chain.entries()) {
      const kind = [chainRole(c, i), c.isCa && 'CA', c.isSelfSigned && 'self-signed'].filter(Boolean).join(', ')
      const line = (label: string, value: string) => this.log(`      ${label.padEnd(8)}${fit(value, CHAIN_TEXT_WIDTH - 14)}`)
      this.log(`  ${String(i + 1).padStart(2)}. ${fit(kind + origin(c), CHAIN_TEXT_WIDTH - 6)}`)
      line('subject', c.subject)
      line('issuer', c.issuer)
      line('valid', `${c.validFrom.slice(0, 10)} to ${c.validTo.slice(0, 10)}`)
      line('pin', c.pin)
    }
  }

  private print(r: ProbeReport) {
    const mark: Record<CheckStatus, string> = {
      pass: chalk.green('pass'),
      warn: chalk.yellow('warn'),
      fail: chalk.red('fail'),
      skip: chalk.dim('skip'),
    }
    this.log(chalk.bold(`${r.target}`) + chalk.dim(` (as ${FAMILY_NAMES[r.as]})`))
    const width = Math.max(...r.checks.map((c) => c.id.length))
    let step = ''
    for (const c of r.checks) {
      if (c.step !== step) {
        if (step === 'tls') this.printChain(r)
        step = c.step
        this.log('\n' + chalk.bold(STEP_TITLES[step] ?? step))
      }

      this.log(`  ${mark[c.status]}  ${c.id.padEnd(width)}  ${c.detail}${affects(c)}`)
    }

    if (step === 'tls') this.printChain(r)

    if (r.tunnel?.ipv4 || r.tunnel?.ipv6) {
      const t = r.tunnel
      this.log(`\n${chalk.bold('Assigned')}  ${[t.ipv4 && `${t.ipv4}/${t.netmask}`, t.ipv6].filter(Boolean).join(', ')}, MTU ${t.mtu ?? '?'}, DNS ${t.dns.join(' ') || '-'}, routes ${t.routes.join(' ') || 'all traffic'}`)
    }

    this.log('')
    this.log(`${chalk.bold(FAMILY_NAMES.cisco)}: ${mark[r.verdict.cisco as CheckStatus]}   ${chalk.bold(FAMILY_NAMES.openconnect)}: ${mark[r.verdict.openconnect as CheckStatus]}`)
  }
}

/** Where each certificate came from, as the chain lists it. */
function origin(c: ChainEntry): string {
  if (c.sentByGateway === undefined) return ''
  return c.sentByGateway ? ', sent by the gateway' : ', from the local trust store'
}

/** Cuts `s` to `max` characters, with an ellipsis when cut. */
function fit(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

function affects(c: Check): string {
  if (!c.affects || c.affects.length === 2 || c.status === 'pass') return ''
  return chalk.dim(` [${c.affects.map((f) => (f === 'cisco' ? 'Cisco' : 'openconnect')).join(', ')}]`)
}
