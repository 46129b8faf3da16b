/**
 * Recording from the client side (`probe --record`): the HTTP client reports each exchange,
 * the tunnel code each frame; `save` redacts and writes the transcript.
 */
import fs from 'node:fs'

import type {HttpResponse, SentRequest} from '../client/http-client.js'
import {configError} from '../errors.js'
import {type Step, type Transcript, emptyTranscript, serializeTranscript} from './format.js'
import {type KnownSecrets, redactTranscript} from './redact.js'

/** The tunnel frames kept per CONNECT; the first few say what the tunnel started with. */
export const RECORDED_FRAMES = 16

export class ClientRecorder {
  private readonly transcript: Transcript

  constructor(
    source: string,
    gateway: string,
    private readonly known: KnownSecrets,
  ) {
    this.transcript = emptyTranscript(source, gateway)
  }

  /** For `HttpClient.onExchange`. */
  readonly http = (req: SentRequest, res: HttpResponse) => {
    const request = {method: req.method, path: req.path, headers: req.headers, body: req.body}
    const response = {status: res.status, statusText: res.statusText, headers: res.headers, body: res.body}
    const ua = req.headers.find(([k]) => k.toLowerCase() === 'user-agent')?.[1]
    this.transcript.client ??= ua
    const step: Step = req.method === 'CONNECT' ? {kind: 'connect', request, response, frames: []} : {kind: 'http', request, response}
    this.transcript.steps.push(step)
  }

  /** A CSTP frame on the last CONNECT's tunnel. */
  frame(from: 'client' | 'gateway', type: string, length: number) {
    const last = this.transcript.steps.at(-1)
    if (last?.kind !== 'connect' || last.frames.length >= RECORDED_FRAMES) return
    last.frames.push({from, type, length})
  }

  /** The transcript as it will be written: redacted. */
  result(): Transcript {
    return redactTranscript(this.transcript, this.known)
  }

  save(file: string) {
    writeTranscriptFile(file, this.result())
  }
}

export function writeTranscriptFile(file: string, t: Transcript) {
  try {
    fs.writeFileSync(file, serializeTranscript(t), {mode: 0o644})
  } catch (err) {
    throw configError('REPLAY_CANNOT_WRITE', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}
