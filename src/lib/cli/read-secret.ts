/**
 * Getting a new secret (a user's password, a .p12 password) from the operator: the first line of
 * standard input when the command was told so (scripts, Ansible), otherwise a hidden prompt asked
 * twice, but only on a terminal. Without a terminal and without the flag, it fails at once with a
 * message naming the flag, so a script never hangs on a prompt no one can answer.
 */
import {password} from '@inquirer/prompts'

import {MAX_PASSWORD_BYTES} from '../config/password-hash.js'
import {configError} from '../errors.js'

/** Longer secrets are refused: the users file's checks stop there too. */
export const MAX_SECRET_BYTES = MAX_PASSWORD_BYTES

export interface SecretRequest {
  /** What is asked for, in a sentence: "password for alice". */
  what: string
  /** The flag that reads it from stdin, without dashes: "password-stdin". */
  stdinFlag: string
  /** Whether that flag was given. */
  fromStdin: boolean
  input?: NodeJS.ReadableStream & {isTTY?: boolean}
}

export async function readNewSecret(req: SecretRequest): Promise<string> {
  const input = req.input ?? process.stdin
  const secret = req.fromStdin ? await readFirstLine(input, req) : await promptTwice(input, req)
  if (secret === '') throw configError('SECRET_EMPTY', `the ${req.what} must not be empty`)
  if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) {
    throw configError('SECRET_TOO_LONG', `the ${req.what} is longer than ${MAX_SECRET_BYTES} bytes`)
  }

  return secret
}

/** The first line of `input` (without its line ending); stops reading at the first newline. */
export function readFirstLine(input: NodeJS.ReadableStream, req: SecretRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0

    const finish = (err?: Error) => {
      input.removeListener('data', onData)
      input.removeListener('end', onEnd)
      input.removeListener('error', onError)
      // Stop reading: a writer that keeps the pipe open must not keep this process alive.
      ;(input as NodeJS.ReadableStream & {destroy?: () => void}).destroy?.()
      if (err) return reject(err)
      const text = Buffer.concat(chunks).toString('utf8')
      const line = text.split('\n')[0].replace(/\r$/, '')
      if (line === '' && !text.includes('\n')) {
        return reject(
          configError('SECRET_EMPTY', `no ${req.what} on standard input (--${req.stdinFlag})`),
        )
      }

      resolve(line)
    }

    const onData = (chunk: Buffer | string) => {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
      chunks.push(b)
      size += b.length
      if (b.includes(0x0a)) return finish()
      if (size > MAX_SECRET_BYTES) {
        finish(
          configError(
            'SECRET_TOO_LONG',
            `the ${req.what} on standard input is longer than ${MAX_SECRET_BYTES} bytes`,
          ),
        )
      }
    }

    const onEnd = () => finish()
    const onError = (err: Error) =>
      finish(configError('SECRET_UNREADABLE', `cannot read standard input: ${err.message}`))
    input.on('data', onData)
    input.on('end', onEnd)
    input.on('error', onError)
    input.resume()
  })
}

async function promptTwice(
  input: SecretRequest['input'] & {},
  req: SecretRequest,
): Promise<string> {
  if (!input.isTTY) {
    throw configError('SECRET_NO_TERMINAL', `no terminal to ask for the ${req.what}`, [
      `pass it on standard input with --${req.stdinFlag}`,
    ])
  }

  const context = {input, output: process.stderr}
  try {
    const first = await password({message: `New ${req.what}:`}, context)
    const second = await password({message: `Repeat the ${req.what}:`}, context)
    if (first !== second)
      throw configError('SECRET_MISMATCH', `the two entries of the ${req.what} differ`)
    return first
  } catch (err) {
    if (err instanceof Error && err.name === 'ExitPromptError') {
      throw configError('SECRET_CANCELLED', `cancelled while asking for the ${req.what}`)
    }

    throw err
  }
}
