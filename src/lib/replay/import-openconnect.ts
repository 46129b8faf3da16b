/**
 * Converts what `openconnect --dump-http-traffic -vv` prints into a transcript: requests are
 * the lines starting `> ` (request line, headers, a blank `> `, then the body), answers start
 * at `Got HTTP response:` or `Got CONNECT response:` with bare header lines, then the body as
 * `< ` lines. After a 200 CONNECT, the packet lines of -vv give the first tunnel frames.
 * Everything else (TLS, progress, DTLS) is skipped. The result goes through the redactor,
 * since openconnect prints the password and the cookies in clear.
 */
import fs from 'node:fs'

import {configError} from '../errors.js'
import {type Header, type RecordedRequest, type RecordedResponse, type Step, type Transcript, emptyTranscript} from './format.js'
import {RECORDED_FRAMES} from './recorder.js'
import {redactTranscript} from './redact.js'

export const MAX_LOG_BYTES = 32 * 1024 * 1024

/** openconnect's -vv packet messages (cstp.c), mapped to CSTP frame types. */
const FRAME_LINES: [RegExp, 'client' | 'gateway', string][] = [
  [/^Received (?:uncompressed|compressed|\S+) data packet of (\d+) bytes/, 'gateway', 'Data'],
  [/^Sending (?:uncompressed|compressed|\S+) data packet of (\d+) bytes/, 'client', 'Data'],
  [/^Got CSTP DPD request/, 'gateway', 'DpdRequest'],
  [/^Got CSTP DPD response/, 'gateway', 'DpdResponse'],
  [/^Got CSTP Keepalive/, 'gateway', 'Keepalive'],
  [/^Send CSTP DPD/, 'client', 'DpdRequest'],
  [/^Send CSTP Keepalive/, 'client', 'Keepalive'],
  [/^Send BYE packet/, 'client', 'Disconnect'],
  [/^Received server disconnect/, 'gateway', 'Disconnect'],
  [/^Received server terminate packet/, 'gateway', 'Terminate'],
]

export function importOpenconnectLog(file: string): Transcript {
  let size: number
  try {
    size = fs.statSync(file).size
  } catch (err) {
    throw configError('REPLAY_NO_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }

  if (size > MAX_LOG_BYTES) throw configError('REPLAY_TOO_LARGE', `${file} is ${size} bytes; an imported log may have at most ${MAX_LOG_BYTES}`)
  return parseOpenconnectLog(fs.readFileSync(file, 'utf8'), file)
}

export function parseOpenconnectLog(text: string, name = 'log'): Transcript {
  // `--timestamp` puts `[YYYY-MM-DD HH:MM:SS] ` before each line.
  const lines = text.split(/\r?\n/).map((l) => l.replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /, ''))
  const t = emptyTranscript('openconnect-log', /^(?:GET|POST) (https:\/\/\S+)/m.exec(text)?.[1])
  let pending: RecordedRequest | undefined
  let i = 0

  while (i < lines.length) {
    const line = lines[i]

    // A request
    if (/^> [A-Z]+ \S+ HTTP\/1\.[01]$/.test(line)) {
      ;[pending, i] = readRequest(lines, i)
      continue
    }

    // An answer, to the request before it
    const answer = /^Got (HTTP|CONNECT) response: (HTTP\/1\.[01] .*)$/.exec(line)
    if (answer && pending) {
      let response: RecordedResponse
      ;[response, i] = readResponse(lines, i + 1, answer[2])
      const step: Step = pending.method === 'CONNECT' ? {kind: 'connect', request: pending, response, frames: []} : {kind: 'http', request: pending, response}
      t.steps.push(step)
      pending = undefined
      continue
    }

    // A tunnel frame, after a CONNECT
    const last = t.steps.at(-1)
    if (last?.kind === 'connect' && last.frames.length < RECORDED_FRAMES) {
      for (const [re, from, type] of FRAME_LINES) {
        const m = re.exec(line)
        if (m) last.frames.push({from, type, length: m[1] ? Number(m[1]) : 0})
      }
    }

    i++
  }

  if (t.steps.length === 0) {
    throw configError('REPLAY_IMPORT_EMPTY', `no HTTP exchange found in ${name}: capture it with openconnect --dump-http-traffic -vv`)
  }

  t.client = t.steps[0].request.headers.find(([k]) => k.toLowerCase() === 'user-agent')?.[1]
  return redactTranscript(t)
}

const REQUEST_LINE = /^> [A-Z]+ \S+ HTTP\/1\.[01]$/
const ANSWER_LINE = /^Got (HTTP|CONNECT) response: /

// openconnect writes progress to stdout and the dump to stderr: a capture of both may have
// progress lines ("Please enter your password.") inside a request or answer. They are skipped.
const isStray = (l: string) => !l.startsWith('> ') && l !== '>' && !ANSWER_LINE.test(l)

function readRequest(lines: string[], start: number): [RecordedRequest, number] {
  const [method, path] = lines[start].slice(2).split(' ')
  const headers: Header[] = []
  const body: string[] = []
  let isBody = false
  let i = start + 1
  for (; i < lines.length && !REQUEST_LINE.test(lines[i]) && !ANSWER_LINE.test(lines[i]); i++) {
    if (isStray(lines[i])) continue
    if (lines[i] === '> ' || lines[i] === '>') {
      if (isBody) body.push('')
      isBody = true
      continue
    }

    if (isBody) body.push(lines[i].slice(2))
    else headers.push(splitHeader(lines[i].slice(2)))
  }

  return [{method, path: path.replace(/^https?:\/\/[^/]+/, '') || '/', headers, body: body.join('\n')}, i]
}

/** Lines after which an answer's headers cannot continue. */
const AFTER_HEADERS = /^(< |<$|> |HTTP body length|Got |CSTP connected|Received |Sending |Send )/

function readResponse(lines: string[], start: number, statusLine: string): [RecordedResponse, number] {
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine)!
  const headers: Header[] = []
  let i = start
  for (; i < lines.length && !AFTER_HEADERS.test(lines[i]); i++) {
    if (/^[A-Za-z0-9-]+: /.test(lines[i])) headers.push(splitHeader(lines[i]))
  }

  const body: string[] = []
  if (lines[i]?.startsWith('HTTP body length')) {
    i++
    for (; i < lines.length && !REQUEST_LINE.test(lines[i]) && !ANSWER_LINE.test(lines[i]); i++) {
      if (lines[i].startsWith('< ') || lines[i] === '<') body.push(lines[i].slice(2))
      else if (body.length > 0 && !isProgress(lines[i])) break
    }
  }

  return [{status: Number(m[1]), statusText: m[2], headers, body: body.length > 0 ? body.join('\n') + '\n' : ''}, i]
}

/** A line openconnect prints between dump lines (a form message, a notice), not the end of a body. */
function isProgress(l: string): boolean {
  return !l.startsWith('> ') && !/^(POST|GET) https?:/.test(l)
}

function splitHeader(l: string): Header {
  const colon = l.indexOf(':')
  return colon < 0 ? [l, ''] : [l.slice(0, colon), l.slice(colon + 1).trim()]
}
