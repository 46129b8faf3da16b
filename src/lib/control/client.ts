/**
 * The command side of the control socket: one HTTP request per call over the UNIX socket of a
 * running `serve` (docs/control-protocol.md). Every failure becomes an `AnygateError` with a
 * one-line message, so a command prints it and exits non-zero: serve not running, a socket left
 * by a serve that died, no permission, an answer that is not ours, or the server's own error.
 */
import http from 'node:http'

import {
  type BanInfo,
  type BanRemoveResult,
  CONTROL_PREFIX,
  type ControlErrorBody,
  type DisconnectResult,
  type SessionInfo,
  type StatusInfo,
} from './protocol.js'
import {AnygateError} from '../errors.js'

/** Largest answer read; a session list of thousands fits easily. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024

const controlError = (code: string, message: string) => new AnygateError(code, message)

export class ControlClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  status(): Promise<StatusInfo> {
    return this.request('GET', '/status')
  }

  sessions(): Promise<SessionInfo[]> {
    return this.request('GET', '/sessions')
  }

  session(id: string): Promise<SessionInfo> {
    return this.request('GET', `/sessions/${encodeURIComponent(id)}`)
  }

  disconnectSession(id: string): Promise<DisconnectResult> {
    return this.request('POST', `/sessions/${encodeURIComponent(id)}/disconnect`)
  }

  disconnectUser(user: string): Promise<DisconnectResult> {
    return this.request('POST', `/users/${encodeURIComponent(user)}/disconnect`)
  }

  bans(): Promise<BanInfo[]> {
    return this.request('GET', '/bans')
  }

  removeBan(address: string): Promise<BanRemoveResult> {
    return this.request('POST', `/bans/${encodeURIComponent(address)}/remove`)
  }

  /** Sends one request under the version prefix; resolves with the parsed 2xx body. */
  request<T>(method: 'GET' | 'POST', path: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = http.request(
        {socketPath: this.socketPath, method, path: CONTROL_PREFIX + path, headers: {Host: 'anygate'}},
        (res) => {
          readAnswer(res)
            .then((body) => resolve(this.parse<T>(res.statusCode ?? 0, body)))
            .catch(reject)
        },
      )
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(controlError('CONTROL_TIMEOUT', `no answer on ${this.socketPath} within ${this.timeoutMs} ms`))
      })
      req.on('error', (err) => reject(this.connectError(err)))
      req.end()
    })
  }

  private parse<T>(status: number, body: string): T {
    let value: unknown
    try {
      value = JSON.parse(body)
    } catch {
      throw controlError('CONTROL_BAD_ANSWER', `${this.socketPath} answered with something other than JSON (status ${status})`)
    }

    if (status >= 200 && status < 300) return value as T
    const e = (value as Partial<ControlErrorBody>)?.error
    if (e && typeof e.code === 'string' && typeof e.message === 'string') throw controlError(e.code, e.message)
    throw controlError('CONTROL_BAD_ANSWER', `${this.socketPath} answered status ${status}`)
  }

  private connectError(err: Error): Error {
    if (err instanceof AnygateError) return err
    const code = (err as NodeJS.ErrnoException).code
    const at = this.socketPath
    switch (code) {
      case 'ENOENT':
        return controlError('CONTROL_NOT_RUNNING', `anygate serve is not running: no control socket at ${at}`)
      case 'ECONNREFUSED':
        return controlError('CONTROL_NOT_RUNNING', `anygate serve is not running: nothing answers on ${at} (left by a serve that ended)`)
      case 'EACCES':
      case 'EPERM':
        return controlError('CONTROL_DENIED', `permission denied on ${at}: run as the user serve runs as`)
      case 'ENOTSOCK':
        return controlError('CONTROL_NOT_RUNNING', `${at} is not a control socket`)
      default:
        return controlError('CONTROL_FAILED', `cannot talk to serve on ${at}: ${err.message}`)
    }
  }
}

function readAnswer(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_ANSWER_BYTES) {
        res.destroy(controlError('CONTROL_BAD_ANSWER', `answer larger than ${MAX_ANSWER_BYTES} bytes`))
        return
      }

      chunks.push(c)
    })
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    res.on('error', reject)
  })
}
