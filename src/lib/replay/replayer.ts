/**
 * Replays a transcript's client side against a live gateway and compares each answer.
 *
 * Flow: check the target answers TLS (else `UnreachableError`, exit 2) → for each step, fill
 * the request's placeholders from the live answers so far (cookies, the opaque, tokens, the
 * form's action and field names) and from the credentials given → send it on one keep-alive
 * connection → compare (compare.ts). After a 200 CONNECT the gateway's first frames are read
 * for a moment, then the tunnel is ended with a DISCONNECT so the gateway frees the session.
 *
 * When the live gateway finishes the login earlier than the recorded one did (one form where
 * the other had two), the remaining login steps are skipped and the CONNECT still runs. When
 * it asks more rounds than were recorded (two forms where the other had one), each extra form
 * is answered as a client would, from the last recorded reply and the credentials, and
 * reported as a difference; then the replay goes on.
 */
import crypto from 'node:crypto'
import tls from 'node:tls'

import {type ServerAuthDoc, parseServerXml} from '../client/auth-xml.js'
import {HttpClient, type HttpResponse, openTls} from '../client/http-client.js'
import {CstpType, DisconnectReason, cstpTypeName} from '../cstp/constants.js'
import {CstpDecoder} from '../cstp/decoder.js'
import {encodeCstpFrame, encodeDisconnect} from '../cstp/encoder.js'
import {configError} from '../errors.js'
import {pinSha256} from '../pki/pin.js'
import {UnreachableError, parseTarget} from '../probe/run.js'
import {type Difference, DEFAULT_RULES, FRAME_WAIT_MS, compareConnect, compareFrames, compareResponse} from './compare.js'
import {type Header, MAX_FRAMES, PLACEHOLDER_RE, type RecordedFrame, type Step, type Transcript} from './format.js'

export interface ReplayOptions {
  url: string
  user?: string
  password?: string
  /** `pin-sha256:…`: the target's key must match, else nothing is sent. */
  servercert?: string
  timeoutMs: number
  /** How long to collect the gateway's first tunnel frames; default `FRAME_WAIT_MS`. */
  frameWaitMs?: number
}

export interface StepResult {
  index: number
  title: string
  status: 'same' | 'differs' | 'skipped' | 'failed'
  differences: Difference[]
  note?: string
  frames?: RecordedFrame[]
}

export interface ReplayReport {
  target: string
  source: string
  steps: StepResult[]
  differences: number
  isSame: boolean
}

/** Request headers the HTTP client writes itself, from the live connection. */
const CLIENT_OWNED = new Set(['host', 'content-length', 'cookie'])

interface LiveState {
  cookies: Map<string, string>
  doc?: ServerAuthDoc
  sessionToken?: string
  isLoginDone: boolean
}

export async function replayTranscript(t: Transcript, o: ReplayOptions): Promise<ReplayReport> {
  const target = parseTarget(o.url)
  requireCredentials(t, o)
  const conn = {host: target.host, port: target.port, timeoutMs: o.timeoutMs}
  await checkReachable(conn, o.servercert)

  const rules = [...t.rules, ...DEFAULT_RULES]
  const client = new HttpClient(conn, [])
  const live: LiveState = {cookies: new Map(), isLoginDone: false}
  const results: StepResult[] = []
  let recordedDoc: ServerAuthDoc | undefined
  let lastReply: Step | undefined

  try {
    for (const [index, step] of t.steps.entries()) {
      const title = stepTitle(step)
      const recordedAnswer = safeDoc(step.response.body)
      if (live.isLoginDone && step.kind === 'http' && isAuthReply(step.request.body)) {
        results.push({index, title, status: 'skipped', differences: [], note: 'the live gateway had already completed the login'})
        recordedDoc = recordedAnswer ?? recordedDoc
        continue
      }

      // The recorded login ended, the live one still asks: answer its extra rounds first
      if (lastReply && !isAuthReply(step.request.body) && live.doc?.type === 'auth-request' && live.doc.form) {
        results.push(...(await answerExtraRounds(client, lastReply, {index, title, target, o, live, recordedDoc, rules})))
      }

      const result = await runStep(client, step, {index, title, target, o, live, recordedDoc, rules})
      results.push(result)
      if (step.kind === 'http' && isAuthReply(step.request.body)) lastReply = step
      recordedDoc = recordedAnswer ?? recordedDoc
      if (recordedAnswer?.type === 'auth-request' && live.doc?.type === 'complete') live.isLoginDone = true
    }
  } finally {
    client.close()
  }

  const differences = results.reduce((n, r) => n + r.differences.length, 0)
  return {target: target.href, source: t.source, steps: results, differences, isSame: results.every((r) => r.status === 'same' || r.status === 'skipped')}
}

interface StepContext {
  index: number
  title: string
  target: ReturnType<typeof parseTarget>
  o: ReplayOptions
  live: LiveState
  recordedDoc?: ServerAuthDoc
  rules: Transcript['rules']
}

async function runStep(client: HttpClient, step: Step, c: StepContext): Promise<StepResult> {
  const fill = (s: string) => fillPlaceholders(s, c)
  const recordedForm = c.recordedDoc?.form
  const liveForm = c.live.doc?.form
  const path = recordedForm && liveForm && step.request.path === recordedForm.action ? liveForm.action : fill(step.request.path)
  const body = fill(refillAuth(step.request.body, recordedForm, liveForm))
  const headers: Header[] = step.request.headers.filter(([k]) => !CLIENT_OWNED.has(k.toLowerCase())).map(([k, v]) => [k, fill(v)])
  const cookie = liveCookieHeader(step.request.headers, c.live.cookies)
  if (cookie) headers.push(['Cookie', cookie])

  let res: HttpResponse
  try {
    res = await client.request(step.request.method, path, body, headers)
  } catch (err) {
    const actual = `no answer: ${(err as Error).message}`
    return {index: c.index, title: c.title, status: 'failed', differences: [{where: 'status', name: 'status', expected: `${step.response.status} ${step.response.statusText}`, actual, compare: 'value'}]}
  }

  // The client's own jar fills only our live map: each request names its cookies itself.
  for (const [k, v] of client.cookies) c.live.cookies.set(k, v)
  client.cookies.clear()
  c.live.doc = safeDoc(res.body) ?? (step.kind === 'connect' ? c.live.doc : undefined)
  c.live.sessionToken = c.live.doc?.sessionToken ?? c.live.sessionToken

  const differences = compareResponse(step.response, {...res, body: res.body}, c.rules)
  let frames: RecordedFrame[] | undefined
  if (step.kind === 'connect') {
    differences.push(...compareConnect(step.response.headers, res.headers))
    if (res.status === 200) {
      const waitMs = c.o.frameWaitMs ?? FRAME_WAIT_MS
      frames = await readFrames(await client.tls(), client.takeRest(), waitMs, step.frames)
      differences.push(...compareFrames(step.frames, frames, waitMs))
    }
  }

  return {index: c.index, title: c.title, status: differences.length > 0 ? 'differs' : 'same', differences, frames}
}

/** At most this many extra login rounds are answered, so a gateway that keeps asking cannot loop us. */
const MAX_EXTRA_ROUNDS = 3

/**
 * Answers the live gateway's forms past the recorded login, each as the last recorded reply
 * refilled for the live form. One result per round, a difference each: the recorded gateway
 * had completed by then.
 */
async function answerExtraRounds(client: HttpClient, lastReply: Step, c: StepContext): Promise<StepResult[]> {
  const results: StepResult[] = []
  for (let round = 1; round <= MAX_EXTRA_ROUNDS && c.live.doc?.type === 'auth-request' && c.live.doc.form; round++) {
    const form = c.live.doc.form
    const fields = form.inputs.filter((i) => i.name && i.type !== 'submit' && i.type !== 'reset').map((i) => i.name)
    // The recorded reply's own form is unknown here: name-for-name, else by type (refillAuth)
    const step: Step = {...lastReply, request: {...lastReply.request, path: form.action ?? lastReply.request.path}}
    const title = `${stepTitle(step)}, extra round ${round}`
    const answered = await runStep(client, {...step, response: {...lastReply.response}}, {...c, title, recordedDoc: undefined})
    const difference = {
      where: 'xml',
      name: '/config-auth/@type',
      expected: 'complete (the recorded login had ended)',
      actual: `auth-request, one more form (${fields.join(', ') || 'no fields'})`,
      compare: 'value' as const,
    }
    results.push({index: c.index, title, status: answered.status === 'failed' ? 'failed' : 'differs', differences: [difference], note: 'answered from the last recorded reply and the credentials given'})
    if (answered.status === 'failed') break
  }

  return results
}

function stepTitle(s: Step): string {
  const type = /<config-auth[^>]*\btype="([^"]+)"/.exec(s.request.body)?.[1]
  return `${s.request.method} ${s.request.path}${type ? ` (${type})` : ''}`
}

function isAuthReply(body: string): boolean {
  return /<config-auth[^>]*\btype="auth-reply"/.test(body) || /(^|&)(username|password)=/.test(body)
}

function safeDoc(body: string): ServerAuthDoc | undefined {
  if (!body.trimStart().startsWith('<')) return undefined
  try {
    return parseServerXml(body)
  } catch {
    return undefined
  }
}

function requireCredentials(t: Transcript, o: ReplayOptions) {
  const used = new Set<string>()
  for (const s of t.steps) {
    for (const m of `${s.request.path} ${s.request.body}`.matchAll(PLACEHOLDER_RE)) used.add(m[1])
  }

  if (used.has('user') && o.user === undefined) throw configError('REPLAY_NO_USER', 'the transcript logs in: give --user NAME')
  if (used.has('password') && o.password === undefined) {
    throw configError('REPLAY_NO_PASSWORD', 'the transcript sends a password: give --user NAME --password-stdin')
  }
}

async function checkReachable(conn: {host: string; port: number; timeoutMs: number}, servercert?: string) {
  let socket: tls.TLSSocket
  try {
    socket = await openTls(conn)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.message
    throw new UnreachableError('REPLAY_UNREACHABLE', `cannot reach ${conn.host}:${conn.port}: ${why}`)
  }

  const pin = pinSha256(new crypto.X509Certificate(socket.getPeerCertificate(true).raw))
  socket.destroy()
  if (servercert && pin !== servercert) {
    throw new UnreachableError('REPLAY_PIN_MISMATCH', `the certificate of ${conn.host}:${conn.port} has ${pin}, not the --servercert given`)
  }
}

/** The recorded Cookie header with each `{{cookie:NAME}}` taken from the live answers. */
function liveCookieHeader(headers: Header[], cookies: Map<string, string>): string | undefined {
  const recorded = headers.find(([k]) => k.toLowerCase() === 'cookie')?.[1]
  if (recorded === undefined) return undefined
  const pairs = recorded.split(';').flatMap((pair) => {
    const m = /^\s*([^=]+)=(.*)$/.exec(pair)
    if (!m) return []
    const [, name, value] = m
    if (!value.includes('{{')) return [`${name}=${value}`]
    const got = cookies.get(name)
    return got ? [`${name}=${got}`] : []
  })
  return pairs.length > 0 ? pairs.join('; ') : undefined
}

const strapKey = () =>
  crypto.generateKeyPairSync('ec', {namedCurve: 'prime256v1'}).publicKey.export({type: 'spki', format: 'der'}).toString('base64')

function fillPlaceholders(s: string, c: StepContext): string {
  if (!s.includes('{{')) return s
  return s.replace(PLACEHOLDER_RE, (_m, name: string, arg?: string) => {
    switch (name) {
      case 'user':
        return c.o.user ?? ''
      case 'password':
        return c.o.password ?? ''
      case 'url':
        return c.target.href
      case 'host':
        return c.target.port === 443 ? c.target.host : `${c.target.host}:${c.target.port}`
      case 'opaque':
        return c.live.doc?.opaqueXml ?? ''
      case 'session-token':
        return c.live.sessionToken ?? ''
      case 'cookie':
        return c.live.cookies.get(arg ?? '') ?? ''
      case 'master-secret':
        return crypto.randomBytes(48).toString('hex').toUpperCase()
      case 'strap-pubkey':
      case 'strap-dh-pubkey':
        return strapKey()
      case 'strap-verify':
        // Not yet: a real STRAP signature; gateways that check STRAP will refuse the CONNECT.
        return crypto.randomBytes(71).toString('base64')
      default:
        return ''
    }
  })
}

/**
 * The `<auth>` fields of an auth-reply, renamed for the live form: each live input takes the
 * recorded field of the same name, else the one whose recorded input had the same type and
 * place, else the credential its type calls for, as a client filling the form would.
 */
export function refillAuth(body: string, recorded: ServerAuthDoc['form'], live: ServerAuthDoc['form']): string {
  const m = /<auth>([\s\S]*?)<\/auth>/.exec(body)
  if (!m || !live || !/<config-auth[^>]*type="auth-reply"/.test(body)) return body
  const sent = new Map([...m[1].matchAll(/<([A-Za-z_][\w.-]*)>([^<]*)<\/\1>/g)].map((f) => [f[1], f[2]]))
  const recordedInputs = (recorded?.inputs ?? []).filter((i) => sent.has(i.name))

  const fields = live.inputs
    .filter((i) => i.name && i.type !== 'submit' && i.type !== 'reset')
    .map((input) => {
      const sameType = live.inputs.filter((i) => i.type === input.type).indexOf(input)
      const byType = recordedInputs.filter((i) => i.type === input.type)[sameType]
      const value =
        sent.get(input.name) ??
        (byType ? sent.get(byType.name) : undefined) ??
        (input.type === 'password' ? '{{password}}' : input.name === 'username' ? '{{user}}' : (input.value ?? ''))
      return `<${input.name}>${value}</${input.name}>`
    })
  return body.replace(m[0], `<auth>${fields.join('')}</auth>`)
}

/**
 * Sends the client's recorded control frames (DPD requests, keepalives; fresh payloads of the
 * recorded lengths), reads the gateway's frames for `waitMs`, then ends with a DISCONNECT.
 */
function readFrames(socket: tls.TLSSocket, head: Buffer, waitMs: number, recorded: RecordedFrame[]): Promise<RecordedFrame[]> {
  const frames: RecordedFrame[] = []
  const startedAt = performance.now()
  return new Promise((resolve) => {
    const decoder = new CstpDecoder(0xffff, (type, payload) => {
      const at = Math.round(performance.now() - startedAt)
      if (frames.length < MAX_FRAMES) frames.push({from: 'gateway', type: cstpTypeName(type), length: payload.length, at})
      if (type === CstpType.Disconnect || type === CstpType.Terminate) finish()
    })
    const onData = (chunk: Buffer) => {
      try {
        decoder.push(chunk)
      } catch {
        finish()
      }
    }

    const timer = setTimeout(finish, waitMs)
    let isDone = false
    function finish() {
      if (isDone) return
      isDone = true
      clearTimeout(timer)
      socket.off('data', onData)
      if (socket.writable) socket.end(encodeDisconnect(DisconnectReason.UserLogout, 'replay finished'))
      resolve(frames)
    }

    socket.on('data', onData)
    if (head.length > 0) onData(head)
    // Not yet: the client's DATA frames are not replayed, so gateway answers to them are not compared.
    for (const f of recorded) {
      if (f.from !== 'client') continue
      if (f.type === 'DpdRequest') socket.write(encodeCstpFrame(CstpType.DpdRequest, crypto.randomBytes(f.length)))
      if (f.type === 'Keepalive') socket.write(encodeCstpFrame(CstpType.Keepalive))
    }
  })
}
