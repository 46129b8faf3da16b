/**
 * Recording from the gateway side (`serve --record DIR`): the gateway hands over each login
 * request with its answer, each CONNECT with its answer (granted or refused), and lets a granted
 * CONNECT's first CSTP frames through a tap; one transcript per client login is written to DIR,
 * for the users and addresses the administrator chose (all, if none).
 *
 * A login is followed by its TLS connection until the answer that sets the `webvpn` cookie,
 * then by that cookie, since a client may CONNECT on a new connection (auth-and-cstp.md §2.11).
 * A refused CONNECT ends the transcript. A granted one is followed for its first
 * `RECORDED_FRAMES` frames, both ways, for at most `FRAME_WINDOW_MS`; then the tap declines
 * and the tunnel drops it. The file is written when the frames are in, the window ends or the
 * tunnel closes; when a login connection closes without a cookie; `LINGER_MS` after it closed
 * with one that no CONNECT used; and, for whatever is still open, at `flush()` (serve stopping).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import type {IncomingMessage, ServerResponse} from 'node:http'
import path from 'node:path'

import {parseResponse} from '../client/http-client.js'
import {CstpType, cstpTypeName} from '../cstp/constants.js'
import type {FrameTap} from '../cstp/tunnel.js'
import {configError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import {type ConnectStep, type Header, type RecordedResponse, type Step, emptyTranscript} from './format.js'
import {RECORDED_FRAMES, writeTranscriptFile} from './recorder.js'
import {redactTranscript} from './redact.js'

export interface RecordSelection {
  dir: string
  /** Login names to record; with `addresses` empty too, everyone is recorded. */
  users: string[]
  addresses: string[]
  /** How long a tunnel's first frames are watched; default `FRAME_WINDOW_MS`. */
  frameWindowMs?: number
  /** How long a cookie no CONNECT used is waited for; default `LINGER_MS`. */
  lingerMs?: number
}

/**
 * What the gateway calls; kept small so the gateway knows nothing else of recording.
 * Not yet: the static pages and login requests answered before the login handler (a banned
 * address, an oversized body) are not recorded, so a transcript holds only the login exchanges
 * and the CONNECTs.
 */
export interface ExchangeRecorder {
  http(req: IncomingMessage, body: string, res: ServerResponse, answerBody: string): void
  /**
   * A CONNECT and the raw answer written for it, granted (200) or refused (401, 404, 503…);
   * `cookie` is its webvpn cookie, when it had one. For a granted CONNECT that is recorded,
   * returns the tap to give its tunnel. Never throws.
   */
  connect(req: IncomingMessage, cookie: string | undefined, answer: string): FrameTap | undefined
}

/**
 * How long a granted CONNECT's frames are watched. Long enough for a client to bring its
 * interface up and send something, short enough that a quiet tunnel's transcript comes soon.
 */
export const FRAME_WINDOW_MS = 10_000
const LINGER_MS = 30_000

interface Draft {
  remote: string
  user?: string
  steps: Step[]
  cookie?: string
  isSaved: boolean
  /** The pending write: the linger after the login, or the end of the frame window. */
  timer?: NodeJS.Timeout
  /** The granted CONNECT whose frames are being taken. */
  tunnel?: ConnectStep
}

export class GatewayRecorder implements ExchangeRecorder {
  private readonly bySocket = new WeakMap<object, Draft>()
  private readonly byCookie = new Map<string, Draft>()
  /** Every draft not yet written, for `flush`. */
  private readonly pending = new Set<Draft>()
  private readonly frameWindowMs: number
  private readonly lingerMs: number

  constructor(
    private readonly sel: RecordSelection,
    private readonly log: Logger,
  ) {
    this.frameWindowMs = sel.frameWindowMs ?? FRAME_WINDOW_MS
    this.lingerMs = sel.lingerMs ?? LINGER_MS
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

  connect(req: IncomingMessage, cookie: string | undefined, answer: string): FrameTap | undefined {
    try {
      return this.takeConnect(req, cookie, answer)
    } catch (err) {
      this.log.error('transcript not recorded', {remote: req.socket.remoteAddress, reason: (err as Error).message})
      return undefined
    }
  }

  /** Writes every transcript still open (serve is stopping). */
  flush() {
    for (const d of [...this.pending]) this.save(d)
  }

  private takeConnect(req: IncomingMessage, cookie: string | undefined, answer: string): FrameTap | undefined {
    const parsed = parseResponse(Buffer.from(answer, 'latin1'), true)
    if (!parsed) return undefined
    const {status, statusText, headers} = parsed.res

    // The login whose cookie this is, unless its transcript already has a tunnel: a second
    // CONNECT (a reconnect) starts a transcript of its own.
    let draft = cookie ? this.byCookie.get(cookie) : undefined
    const user = draft?.user
    if (draft?.tunnel) {
      this.save(draft)
      draft = undefined
    }

    draft ??= this.draftFor(req)
    draft.user ??= user
    const step: ConnectStep = {kind: 'connect', request: requestOf(req, ''), response: {status, statusText, headers, body: ''}, frames: []}
    draft.steps.push(step)
    if (status !== 200 || !this.isChosen(draft)) {
      this.save(draft)
      return undefined
    }

    draft.tunnel = step
    const d = draft
    this.arm(d, this.frameWindowMs)
    req.socket.once('close', () => this.save(d))
    return this.tapFor(d)
  }

  /**
   * Takes the first `RECORDED_FRAMES` frames, with each one's time after the CONNECT answer.
   * A client's DPD request is taken only with room left for the answer the tunnel sends right
   * after it, so a replay, which sends the request again, is not told to expect no answer.
   * Not yet: frames on the DTLS channel; a recorded frame has no channel and the replayer sets
   * no DTLS up, so a tunnel that moved to DTLS shows only what it still sent over CSTP.
   */
  private tapFor(d: Draft): FrameTap {
    const startedAt = performance.now()
    return {
      frame: (from, type, length) => {
        const step = d.tunnel
        if (d.isSaved || !step) return false
        const isLastSlot = step.frames.length >= RECORDED_FRAMES - 1
        if (!(isLastSlot && from === 'client' && type === CstpType.DpdRequest)) {
          step.frames.push({from, type: cstpTypeName(type), length, at: Math.round(performance.now() - startedAt)})
          if (step.frames.length < RECORDED_FRAMES) return true
        }

        this.save(d)
        return false
      },
    }
  }

  private draftFor(req: IncomingMessage): Draft {
    const socket = req.socket
    const known = this.bySocket.get(socket)
    // After a CONNECT, whatever the connection asks next belongs to no login.
    if (known && !known.isSaved && !known.tunnel) return known
    const draft: Draft = {remote: socket.remoteAddress ?? '', steps: [], isSaved: false}
    this.bySocket.set(socket, draft)
    this.pending.add(draft)
    socket.once('close', () => this.loginClosed(draft))
    return draft
  }

  private loginClosed(d: Draft) {
    // A tunnel's draft is written by its own tunnel's end or window.
    if (d.isSaved || d.tunnel) return
    if (!d.cookie) return this.save(d)
    this.arm(d, this.lingerMs)
  }

  private arm(d: Draft, ms: number) {
    clearTimeout(d.timer)
    d.timer = setTimeout(() => this.save(d), ms)
    d.timer.unref()
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
    clearTimeout(d.timer)
    this.pending.delete(d)
    if (d.cookie && this.byCookie.get(d.cookie) === d) this.byCookie.delete(d.cookie)
    if (d.steps.length > 0 && this.isChosen(d)) this.write(d)
    // A tunnel keeps its tap until its next frame: let it hold an empty draft.
    d.steps = []
    d.tunnel = undefined
  }

  private write(d: Draft) {
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
