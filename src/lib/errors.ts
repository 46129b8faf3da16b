/**
 * Error classes shared by every layer.
 *
 * `ProtocolError` is what a peer caused: the connection that carried it ends, the server goes
 * on. `ConfigError` is operator input (files, flags, users): the command prints one line and
 * exits non-zero. Programming mistakes stay `TypeError`/`RangeError`.
 */

export class AnygateError extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.code = code
    this.name = new.target.name
  }
}

/** What a protocol layer answers a peer that broke the rules. */
export type ProtocolLayer = 'http' | 'auth' | 'cstp' | 'dtls' | 'tun'

export class ProtocolError extends AnygateError {
  readonly layer: ProtocolLayer
  /** The HTTP status to answer with, where the layer is HTTP. */
  readonly status?: number

  constructor(layer: ProtocolLayer, code: string, message: string, status?: number) {
    super(code, message)
    this.layer = layer
    this.status = status
  }
}

export class ConfigError extends AnygateError {
  /** Hints the CLI prints under the message. */
  readonly suggestions: string[]

  constructor(code: string, message: string, suggestions: string[] = []) {
    super(code, message)
    this.suggestions = suggestions
  }
}

export const configError = (code: string, message: string, suggestions?: string[]) =>
  new ConfigError(code, message, suggestions)

export const httpError = (code: string, message: string, status: number) =>
  new ProtocolError('http', code, message, status)

export const cstpError = (code: string, message: string) => new ProtocolError('cstp', code, message)

export const isErrnoException = (err: unknown): err is NodeJS.ErrnoException =>
  err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string'
