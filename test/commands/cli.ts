/**
 * Runs the real CLI (`node bin/run.js …`, the compiled dist/) as a child process, the way an
 * administrator or Ansible would. `ensureBuilt` recompiles first when any source is newer than
 * its output, so the tests never run stale code.
 */
import {execFileSync, spawn} from 'node:child_process'
import fs from 'node:fs'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

export const REPO = fileURLToPath(new URL('../../', import.meta.url))

function newestMtime(dir: string, ext: string): {file: string; mtime: number} {
  let newest = {file: '', mtime: 0}
  for (const entry of fs.readdirSync(dir, {withFileTypes: true, recursive: true})) {
    if (!entry.isFile() || !entry.name.endsWith(ext)) continue
    const file = join(entry.parentPath ?? entry.path, entry.name)
    const mtime = fs.statSync(file).mtimeMs
    if (mtime > newest.mtime) newest = {file, mtime}
  }
  return newest
}

/** Compiles src/ to dist/ with tsc when dist/ is missing or older than some source file. */
export function ensureBuilt(): void {
  const src = newestMtime(join(REPO, 'src'), '.ts')
  const built = join(REPO, 'dist', relative(join(REPO, 'src'), src.file).replace(/\.ts$/, '.js'))
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= src.mtime) return

  try {
    execFileSync(
      process.execPath,
      [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.json')],
      {
        stdio: 'pipe',
      },
    )
  } catch (err) {
    // tsc still emits when another module has a type error; the files we need are checked below.
    const out = (err as {stdout?: Buffer}).stdout?.toString() ?? ''
    process.stderr.write(`tsc reported errors (emitting anyway):\n${out}`)
  }
  if (!fs.existsSync(join(REPO, 'dist', 'commands', 'user', 'add.js')))
    throw new Error('build produced no dist/commands')
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  /** Written to stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string
  /** Keep stdin an open pipe that never delivers data (a script that forgot to feed it). */
  silentPipe?: boolean
  /** Write `input` but keep stdin open afterwards (a writer that never closes the pipe). */
  keepOpen?: boolean
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}

/** Runs `anygate ARGS…` and resolves with its exit code and output; kills it after a timeout. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const stdin = opts.input !== undefined || opts.silentPipe ? 'pipe' : 'ignore'
  const child = spawn(process.execPath, [join(REPO, 'bin', 'run.js'), ...args], {
    stdio: [stdin, 'pipe', 'pipe'],
    env: {...process.env, FORCE_COLOR: '0', ...opts.env},
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (b) => (stdout += b))
  child.stderr?.on('data', (b) => (stderr += b))
  if (opts.input !== undefined && opts.keepOpen) child.stdin?.write(opts.input)
  else if (opts.input !== undefined) child.stdin?.end(opts.input)

  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 20_000} ms]`
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 20_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, stdout, stderr})
    })
  })
}

/** The CLI's contract for bad input: non-zero exit, an `Error:` line, no stack trace. */
export function assertCleanFailure(r: CliResult, pattern: RegExp): void {
  if (r.code === 0) throw new Error(`expected failure, got exit 0\n${r.stdout}${r.stderr}`)
  if (!pattern.test(r.stderr)) throw new Error(`stderr does not match ${pattern}:\n${r.stderr}`)
  if (/^\s+at .+[:(]/m.test(r.stderr)) throw new Error(`stack trace on stderr:\n${r.stderr}`)
}

/**
 * Runs `anygate ARGS…` on a pseudo-terminal (util-linux `script`), answering each prompt that
 * matches `answers[i][0]` with `answers[i][1]` and Enter, as a person at a terminal would.
 */
export function runInTerminal(
  args: string[],
  answers: [RegExp, string][],
  timeoutMs = 20_000,
): Promise<CliResult> {
  const command = [process.execPath, join(REPO, 'bin', 'run.js'), ...args].map(shellQuote).join(' ')
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {...process.env, FORCE_COLOR: '0'},
  })
  let stdout = ''
  let answered = 0
  child.stdout.on('data', (b) => {
    stdout += b
    const next = answers[answered]
    // The newest prompt ("? Question"), read without the terminal's escape sequences, whose
    // own "?" (as in ESC[?25l) would otherwise look like a prompt's start.
    const plain = stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    if (next && next[0].test(plain.slice(plain.lastIndexOf('? ')))) {
      answered++
      child.stdin.write(`${next[1]}\r`)
    }
  })

  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, stdout, stderr: ''})
    })
  })
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`
}
