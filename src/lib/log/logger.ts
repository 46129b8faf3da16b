/**
 * The logger every library layer receives. A message is a fixed phrase; the variables go in
 * fields so that grep and jq work (`log.info('tunnel up', {user, vpnAddr})`). Library code
 * never calls `console`. Never pass a password, a cookie, key material or a whole body.
 */

export type LogFields = Record<string, unknown>
export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

export interface Logger {
  error(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  debug(msg: string, fields?: LogFields): void
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger
  /** Changes the least important level logged, for this logger and all its children. */
  setLevel?(level: LogLevel): void
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
const RANK: Record<LogLevel, number> = {error: 0, warn: 1, info: 2, debug: 3}

export type LogFormat = 'text' | 'json'

type Sink = (line: string) => void

class LineLogger implements Logger {
  constructor(
    /** Shared with every child, so that `setLevel` reaches loggers already handed out. */
    private readonly threshold: {level: LogLevel},
    private readonly format: LogFormat,
    private readonly sink: Sink,
    private readonly bound: LogFields,
  ) {}

  error(msg: string, fields?: LogFields) {
    this.write('error', msg, fields)
  }

  warn(msg: string, fields?: LogFields) {
    this.write('warn', msg, fields)
  }

  info(msg: string, fields?: LogFields) {
    this.write('info', msg, fields)
  }

  debug(msg: string, fields?: LogFields) {
    this.write('debug', msg, fields)
  }

  child(fields: LogFields): Logger {
    return new LineLogger(this.threshold, this.format, this.sink, {...this.bound, ...fields})
  }

  setLevel(level: LogLevel) {
    this.threshold.level = level
  }

  private write(level: LogLevel, msg: string, fields?: LogFields) {
    if (RANK[level] > RANK[this.threshold.level]) return
    const all = {...this.bound, ...fields}
    const time = new Date().toISOString()

    if (this.format === 'json') {
      this.sink(JSON.stringify({time, level, msg, ...all}))
      return
    }

    const pairs = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
    this.sink([time, level.toUpperCase().padEnd(5), msg, ...pairs].join(' '))
  }
}

function formatValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v)
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

/** A logger writing one line per event to `sink` (stderr by default). */
export function createLogger(
  opts: {level?: LogLevel; format?: LogFormat; sink?: Sink} = {},
): Logger {
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + '\n'))
  return new LineLogger({level: opts.level ?? 'info'}, opts.format ?? 'text', sink, {})
}

class NoopLogger implements Logger {
  error() {}
  warn() {}
  info() {}
  debug() {}
  child(): Logger {
    return this
  }
}

export const noopLogger: Logger = new NoopLogger()
