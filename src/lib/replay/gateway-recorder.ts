/**
 * Recording from the gateway side (`serve --record DIR`): the gateway hands over each login
 * request with its answer and each CONNECT with its answer; one transcript per client login
 * is written to DIR, for the users and addresses the administrator chose (all, if none).
 *
 * A login is followed by its TLS connection until the answer that sets the `webvpn` cookie,
 * then by that cookie, since a client may CONNECT on a new connection (auth-and-cstp.md §2.11).
 * The file is written at the CONNECT, or when the connection closes without a cookie, or
 * `LINGER_MS` after it closed with one that no CONNECT used.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import type {IncomingMessage, ServerResponse} from 'node:http'
import path from 'node:path'

import {parseResponse} from '../client/http-client.js'
import {configError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import {type Header, type RecordedResponse, type Step, emptyTranscript} from './format.js'
import {writeTranscriptFile} from './recorder.js'
import {redactTranscript} from './redact.js'

export interface RecordSelection {
  dir: string
  /** Login names to record; with `addresses` empty too, everyone is recorded. */
  users: string[]
  addresses: string[]
}

/**
 * What the gateway calls; kept small so the gateway knows nothing else of recording.
 * Not yet: refused CONNECTs (401, 503) and the static pages are not recorded, so a transcript
 * of a failed tunnel set-up ends at the login.
 */
export interface ExchangeRecorder {
  http(req: IncomingMessage, body: string, res: ServerResponse, answerBody: string): void
  connect(req: IncomingMessage, cookie: string, answer: string): void
}

const LINGER_MS = 30_000

interface Draft {
  remote: string
  user?: string
  steps: Step[]
  cookie?: string
  isSaved: boolean
}

export class GatewayRecorder implements ExchangeRecorder {
  private readonly bySocket = new WeakMap<object, Draft>()
  private readonly byCookie = new Map<string, Draft>()

  constructor(
    private readonly sel: RecordSelection,
    private readonly log: Logger,
  ) {
    try {
      fs.mkdirSync(sel.dir, {recursive: true, mode: 0o750})
    } catch (err) {
      throw configError('REPLAY_CANNOT_WRITE', `cannot make --record ${sel.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }

  http(req: IncomingMessage, body: string, res: ServerResponse, answerBody: string) {
    const draft = this.draftFor(req)
    draft.user ??= /<username>([^<]{1,256})<\/username>/.exec(body)?.[1] ?? /(?:^|&)username=([^&]{1,256})/.exec(body)?.[1]
    const response = {...sentHead(res), body: answerBody}
    draft.steps.push({kind: 'http', request: requestOf(req, body), response})

    const cookie = response.headers.find(([k, v]) => k.toLowerCase() === 'set-cookie' && /^webvpn=[^;]+/.test(v))
    if (cookie) {
      draft.cookie = /^webvpn=([^;]+)/.exec(cookie[1])![1]
      this.byCookie.set(draft.cookie, draft)
    }
  }

  connect(req: IncomingMessage, cookie: string, answer: string) {
    const draft = this.byCookie.get(cookie) ?? this.draftFor(req)
    const parsed = parseResponse(Buffer.from(answer, 'latin1'), true)
    if (!parsed) return
    const {status, statusText, headers} = parsed.res
    // Not yet: serve records no tunnel frames, so its transcripts compare no frames.
    draft.steps.push({kind: 'connect', request: requestOf(req, ''), response: {status, statusText, headers, body: ''}, frames: []})
    this.save(draft)
  }

  private draftFor(req: IncomingMessage): Draft {
    const socket = req.socket
    const known = this.bySocket.get(socket)
    if (known && !known.isSaved) return known
    const draft: Draft = {remote: socket.remoteAddress ?? '', steps: [], isSaved: false}
    this.bySocket.set(socket, draft)
    socket.once('close', () => {
      if (!draft.cookie) return this.save(draft)
      setTimeout(() => this.save(draft), LINGER_MS).unref()
    })
    return draft
  }

  private isChosen(d: Draft): boolean {
    const {users, addresses} = this.sel
    if (users.length === 0 && addresses.length === 0) return true
    const remote = d.remote.replace(/^::ffff:/, '')
    return (d.user !== undefined && users.includes(d.user)) || addresses.includes(remote)
  }

  private save(d: Draft) {
    if (d.isSaved) return
    d.isSaved = true
    if (d.cookie) this.byCookie.delete(d.cookie)
    if (d.steps.length === 0 || !this.isChosen(d)) return

    const t = emptyTranscript('serve')
    t.client = d.steps[0].request.headers.find(([k]) => k.toLowerCase() === 'user-agent')?.[1]
    t.steps = d.steps
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    const who = (d.user ?? 'unknown').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)
    const file = path.join(this.sel.dir, `${stamp}-${who}-${crypto.randomBytes(3).toString('hex')}.json`)
    try {
      writeTranscriptFile(file, redactTranscript(t, {user: d.user}))
      this.log.info('transcript recorded', {user: d.user, remote: d.remote, file})
    } catch (err) {
      this.log.error('transcript not recorded', {user: d.user, remote: d.remote, reason: (err as Error).message})
    }
  }
}

function requestOf(req: IncomingMessage, body: string) {
  const headers: Header[] = []
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]])
  return {method: req.method ?? 'GET', path: req.url ?? '/', headers, body}
}

/**
 * The status and headers as Node wrote them. Node keeps the written header block on the
 * response (`_header`); it is the only place that has Date and Connection as sent.
 */
function sentHead(res: ServerResponse): Omit<RecordedResponse, 'body'> {
  const block = (res as unknown as {_header?: string | null})._header
  const m = typeof block === 'string' ? /^HTTP\/1\.[01] (\d{3}) ?(.*)$/m.exec(block) : null
  if (typeof block === 'string' && m) {
    const lines = block.split('\r\n').slice(1).filter((l) => l.includes(':'))
    const headers = lines.map((l): Header => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()])
    return {status: Number(m[1]), statusText: m[2], headers}
  }

  const headers: Header[] = res.getHeaderNames().flatMap((n) => {
    const v = res.getHeader(n)
    return (Array.isArray(v) ? v : [String(v)]).map((x): Header => [n, x])
  })
  return {status: res.statusCode, statusText: res.statusMessage, headers}
}
