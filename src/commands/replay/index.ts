import {password as promptPassword} from '@inquirer/prompts'
import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {readFirstLine} from '../../lib/cli/read-secret.js'
import {configError} from '../../lib/errors.js'
import {UnreachableError} from '../../lib/probe/run.js'
import type {Difference} from '../../lib/replay/compare.js'
import {readTranscript} from '../../lib/replay/reader.js'
import {type ReplayReport, replayTranscript} from '../../lib/replay/replayer.js'

export default class Replay extends BaseCommand {
  static override args = {
    file: Args.string({description: 'The transcript (JSON, docs/transcript-format.md).', required: true}),
  }

  static override description = `Sends the client's requests of a recorded transcript, in order, to another \
gateway (or a new build of the same one), filling the placeholders from the live answers \
(cookies, opaque, tokens, the form's action and field names) and from --user and \
--password-stdin, and compares each answer with the recorded one: status, headers, the XML \
structure, and the CONNECT headers with their meaning (address family, routes, MTU, DTLS offer). \
Values expected to change (tokens, pool addresses, dates) are compared by shape.

Transcripts come from \`probe --record\`, \`serve --record\` and \`replay import\`.

Exit status: 0 when the answers match, 1 when they differ, 2 when the target cannot be reached \
or the transcript is unusable.`

  static override enableJsonFlag = true

  static override examples = [
    '<%= config.bin %> replay login.json --target https://198.18.0.1/ --servercert pin-sha256:AbC...=',
    'echo "$PW" | <%= config.bin %> replay login.json --target https://vpn-staging.example.com/ --user alice --password-stdin --json',
  ]

  static override flags = {
    'password-stdin': Flags.boolean({description: 'Read the password from the first line of standard input.', dependsOn: ['user']}),
    servercert: Flags.string({description: 'Expected certificate pin of the target, pin-sha256:BASE64; nothing is sent if it differs.'}),
    target: Flags.string({description: 'The gateway to replay against, https://HOST[:PORT]/.', required: true}),
    timeout: Flags.integer({description: 'Seconds each request may take.', default: 10, min: 1, max: 300}),
    user: Flags.string({char: 'u', description: 'Log in as this user (fills {{user}}).'}),
  }

  static override summary = 'Replay a recorded client exchange against a gateway and show what differs.'

  async run(): Promise<ReplayReport> {
    const {args, flags} = await this.parse(Replay)
    if (flags.servercert && !/^pin-sha256:[A-Za-z0-9+/]{43}=$/.test(flags.servercert)) {
      throw configError('REPLAY_BAD_PIN', `bad --servercert ${JSON.stringify(flags.servercert)}: expected pin-sha256:BASE64`)
    }

    const transcript = readTranscript(args.file)
    const password = flags.user ? await this.password(flags['password-stdin'], flags.user) : undefined
    let report: ReplayReport
    try {
      report = await replayTranscript(transcript, {
        url: flags.target,
        user: flags.user,
        password,
        servercert: flags.servercert,
        timeoutMs: flags.timeout * 1000,
      })
    } catch (err) {
      if (!(err instanceof UnreachableError)) throw err
      process.stderr.write(`Error: ${err.message}\n`)
      this.exit(2)
    }

    if (!report.isSame) process.exitCode = 1
    if (!this.jsonEnabled()) this.print(report)
    return report
  }

  private async password(fromStdin: boolean, user: string): Promise<string> {
    const what = `password for ${user}`
    if (fromStdin) return readFirstLine(process.stdin, {what, stdinFlag: 'password-stdin', fromStdin})
    if (!process.stdin.isTTY) throw configError('REPLAY_NO_PASSWORD', `no terminal to ask the ${what}: use --password-stdin`)
    return promptPassword({message: `Password for ${user}:`, mask: '*'})
  }

  private print(r: ReplayReport) {
    this.log(chalk.bold(r.target) + chalk.dim(` (transcript from ${r.source})`))
    const mark = {same: chalk.green('same'), differs: chalk.red('differs'), skipped: chalk.dim('skipped'), failed: chalk.red('failed')}
    for (const s of r.steps) {
      this.log(`\n${chalk.bold(`${s.index + 1}. ${s.title}`)}  ${mark[s.status]}${s.note ? chalk.dim(`  ${s.note}`) : ''}`)
      for (const d of s.differences) this.log(`   ${describe(d)}`)
    }

    this.log('')
    this.log(r.isSame ? chalk.green('The answers match.') : chalk.red(`${r.differences} difference${r.differences === 1 ? '' : 's'}.`))
  }
}

function describe(d: Difference): string {
  const by = d.compare === 'shape' ? chalk.dim(' (by shape)') : ''
  const where = `${d.where} ${chalk.cyan(d.name)}`
  if (d.expected === undefined) return `${chalk.green('+')} ${where}: ${d.actual}${by}`
  if (d.actual === undefined) return `${chalk.red('-')} ${where}: ${d.expected}${by}`
  return `${chalk.yellow('~')} ${where}: ${chalk.red(d.expected)} → ${chalk.green(d.actual)}${by}`
}
