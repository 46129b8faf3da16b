/**
 * Small HTTP helpers for the gateway: bounded body reading and raw answers on a socket that
 * Node's HTTP server has handed over (CONNECT).
 */
import type {IncomingMessage} from 'node:http'
import type {Duplex} from 'node:stream'

import {httpError} from '../errors.js'

/** Reads a request body of at most `limit` bytes; throws HTTP_BODY_TOO_LARGE (413) beyond it. */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) {
    req.resume()
    return Promise.reject(httpError('HTTP_BODY_TOO_LARGE', `body of ${declared} bytes exceeds ${limit}`, 413))
  }

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        req.destroy()
        reject(httpError('HTTP_BODY_TOO_LARGE', `body exceeds ${limit} bytes`, 413))
        return
      }

      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
    req.on('aborted', () => reject(httpError('HTTP_ABORTED', 'request aborted', 400)))
  })
}

/**
 * Writes a bodiless HTTP/1.1 answer on a raw socket and closes it. Returns the answer as
 * written, or undefined when the socket could no longer take it.
 */
export function answerRaw(socket: Duplex, status: number, text: string, extra: string[] = []): string | undefined {
  if (!socket.writable) {
    socket.destroy()
    return undefined
  }

  const answer = [`HTTP/1.1 ${status} ${text}`, ...extra, 'Content-Length: 0', 'Connection: close', '', ''].join('\r\n')
  socket.end(answer)
  return answer
}
