/**
 * The base of every anygate command: maps library errors to one line on stderr and a non-zero
 * exit (a stack trace only with `--verbose`), so bad input never ends in a trace.
 */
import {Command, Errors, Flags, Interfaces} from '@oclif/core'

import {AnygateError, ConfigError} from '../errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    verbose: Flags.boolean({
      description: 'Print stack traces with errors.',
      helpGroup: 'GLOBAL',
    }),
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err
    const verbose = this.argv.includes('--verbose')

    if (err instanceof AnygateError && !verbose) {
      const suggestions = err instanceof ConfigError ? err.suggestions : []
      // process.stderr, not logToStderr: oclif silences that under --json, and a script
      // must still learn why the command failed.
      process.stderr.write(`Error: ${err.message}\n`)
      for (const s of suggestions) process.stderr.write(`  ${s}\n`)
      // A script reading --json output gets the failure as JSON too, not an empty stdout.
      if (this.jsonEnabled()) this.logJson({error: {code: err.code, message: err.message, suggestions}})
      this.exit(err instanceof ConfigError ? 2 : 1)
    }

    if (verbose && err.stack) this.logToStderr(err.stack)
    return super.catch(err)
  }
}
