import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../lib/cli/base-command.js'
import {importOpenconnectLog} from '../../lib/replay/import-openconnect.js'
import {serializeTranscript} from '../../lib/replay/format.js'
import {writeTranscriptFile} from '../../lib/replay/recorder.js'

export default class ReplayImport extends BaseCommand {
  static override args = {
    file: Args.string({description: 'The output of openconnect --dump-http-traffic -vv (stdout and stderr).', required: true}),
  }

  static override description = `Converts what \`openconnect --dump-http-traffic -vv\` printed into a transcript \
for \`anygate replay\`: each request with its answer, the CONNECT with its answer, and the first \
tunnel packets openconnect reported. The password, cookies, STRAP keys and other secrets that \
openconnect prints in clear are replaced by named placeholders.`

  static override examples = [
    'openconnect --dump-http-traffic -vv https://vpn.example.com/ 2>&1 | tee oc.log; <%= config.bin %> replay import oc.log --output login.json',
    '<%= config.bin %> replay import oc.log > login.json',
  ]

  static override flags = {
    output: Flags.string({char: 'o', description: 'Write the transcript here instead of standard output.'}),
  }

  static override summary = 'Make a transcript from an openconnect --dump-http-traffic -vv log.'

  async run(): Promise<void> {
    const {args, flags} = await this.parse(ReplayImport)
    const transcript = importOpenconnectLog(args.file)
    if (flags.output) {
      writeTranscriptFile(flags.output, transcript)
      process.stderr.write(`${transcript.steps.length} steps written to ${flags.output}\n`)
      return
    }

    process.stdout.write(serializeTranscript(transcript))
  }
}
