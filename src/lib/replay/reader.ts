/**
 * Reads a transcript file, which may come from anyone: the size is checked before reading,
 * the JSON before use, and every field against its type and limit. Each problem is one
 * `ConfigError` naming the place (`steps[3].response.headers[2]`) and the limit.
 */
import fs from 'node:fs'

import {configError} from '../errors.js'
import {
  type CompareRule,
  type Header,
  MAX_BODY_CHARS,
  MAX_FRAMES,
  MAX_FRAME_AT_MS,
  MAX_HEADER_CHARS,
  MAX_HEADERS,
  MAX_RULES,
  MAX_STEPS,
  MAX_TRANSCRIPT_BYTES,
  PLACEHOLDER_RE,
  PLACEHOLDERS,
  type RecordedFrame,
  type RecordedRequest,
  type RecordedResponse,
  type Step,
  TRANSCRIPT_FORMAT,
  TRANSCRIPT_VERSION,
  type Transcript,
} from './format.js'

const bad = (where: string, why: string) => configError('REPLAY_BAD_TRANSCRIPT', `bad transcript ${where}: ${why}`)

export function readTranscript(file: string): Transcript {
  let size: number
  try {
    size = fs.statSync(file).size
  } catch (err) {
    throw configError('REPLAY_NO_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }

  if (size > MAX_TRANSCRIPT_BYTES) {
    throw configError('REPLAY_TOO_LARGE', `${file} is ${size} bytes; a transcript may have at most ${MAX_TRANSCRIPT_BYTES}`)
  }

  return parseTranscript(fs.readFileSync(file, 'utf8'), file)
}

/** Validates `text` as a transcript; `name` is used in error messages. */
export function parseTranscript(text: string, name = 'transcript'): Transcript {
  if (text.length > MAX_TRANSCRIPT_BYTES) throw bad(name, `longer than ${MAX_TRANSCRIPT_BYTES} bytes`)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw configError('REPLAY_BAD_JSON', `${name} is not JSON: ${(err as Error).message}`)
  }

  const o = obj(raw, name)
  if (o.format !== TRANSCRIPT_FORMAT) throw bad(name, `"format" is ${JSON.stringify(o.format)}, expected "${TRANSCRIPT_FORMAT}"`)
  if (o.version !== TRANSCRIPT_VERSION) {
    throw configError('REPLAY_BAD_VERSION', `${name} is transcript version ${JSON.stringify(o.version)}; this anygate reads version ${TRANSCRIPT_VERSION}`)
  }

  const steps = arr(o.steps, 'steps', MAX_STEPS).map((s, i) => step(s, `steps[${i}]`))
  const t: Transcript = {
    format: TRANSCRIPT_FORMAT,
    version: TRANSCRIPT_VERSION,
    source: optStr(o.source, 'source') ?? 'unknown',
    recordedAt: optStr(o.recordedAt, 'recordedAt') ?? '',
    gateway: optStr(o.gateway, 'gateway'),
    client: optStr(o.client, 'client'),
    placeholders: strMap(o.placeholders ?? {}, 'placeholders'),
    rules: arr(o.rules ?? [], 'rules', MAX_RULES).map((r, i) => rule(r, `rules[${i}]`)),
    steps,
  }
  checkPlaceholders(t)
  return t
}

function step(v: unknown, where: string): Step {
  const o = obj(v, where)
  const request = req(o.request, `${where}.request`)
  const response = res(o.response, `${where}.response`)
  if (o.kind === 'http') return {kind: 'http', request, response}
  if (o.kind !== 'connect') throw bad(where, `"kind" must be "http" or "connect"`)
  const frames = arr(o.frames ?? [], `${where}.frames`, MAX_FRAMES).map((f, i) => frame(f, `${where}.frames[${i}]`))
  return {kind: 'connect', request, response, frames}
}

function req(v: unknown, where: string): RecordedRequest {
  const o = obj(v, where)
  const method = str(o.method, `${where}.method`, 16)
  if (!/^[A-Z]+$/.test(method)) throw bad(`${where}.method`, `not an HTTP method: ${JSON.stringify(method)}`)
  const path = str(o.path, `${where}.path`, 2048)
  if (!path.startsWith('/') || /[\s]/.test(path)) throw bad(`${where}.path`, `not a request path: ${JSON.stringify(path.slice(0, 80))}`)
  return {method, path, headers: headers(o.headers, `${where}.headers`), body: str(o.body ?? '', `${where}.body`, MAX_BODY_CHARS)}
}

function res(v: unknown, where: string): RecordedResponse {
  const o = obj(v, where)
  const status = o.status
  if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599) throw bad(`${where}.status`, `not an HTTP status: ${JSON.stringify(status)}`)
  return {
    status: status as number,
    statusText: str(o.statusText ?? '', `${where}.statusText`, 256),
    headers: headers(o.headers, `${where}.headers`),
    body: str(o.body ?? '', `${where}.body`, MAX_BODY_CHARS),
  }
}

function headers(v: unknown, where: string): Header[] {
  return arr(v, where, MAX_HEADERS).map((h, i) => {
    if (!Array.isArray(h) || h.length !== 2) throw bad(`${where}[${i}]`, 'a header is [name, value]')
    const name = str(h[0], `${where}[${i}][0]`, 256)
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw bad(`${where}[${i}]`, `not a header name: ${JSON.stringify(name.slice(0, 40))}`)
    const value = str(h[1], `${where}[${i}][1]`, MAX_HEADER_CHARS)
    if (/[\r\n]/.test(value)) throw bad(`${where}[${i}]`, 'a header value holds a line break')
    return [name, value]
  })
}

function frame(v: unknown, where: string): RecordedFrame {
  const o = obj(v, where)
  if (o.from !== 'client' && o.from !== 'gateway') throw bad(`${where}.from`, 'must be "client" or "gateway"')
  const length = o.length
  if (!Number.isInteger(length) || (length as number) < 0 || (length as number) > 0xffff) throw bad(`${where}.length`, 'must be 0-65535')
  const at = o.at
  if (at !== undefined && (!Number.isInteger(at) || (at as number) < 0 || (at as number) > MAX_FRAME_AT_MS)) {
    throw bad(`${where}.at`, `must be 0-${MAX_FRAME_AT_MS} (milliseconds)`)
  }

  const f: RecordedFrame = {from: o.from, type: str(o.type, `${where}.type`, 32), length: length as number}
  if (at !== undefined) f.at = at as number
  return f
}

function rule(v: unknown, where: string): CompareRule {
  const o = obj(v, where)
  if (o.compare !== 'value' && o.compare !== 'shape' && o.compare !== 'ignore') throw bad(`${where}.compare`, 'must be "value", "shape" or "ignore"')
  const header = optStr(o.header, `${where}.header`)
  const xml = optStr(o.xml, `${where}.xml`)
  if ((header === undefined) === (xml === undefined)) throw bad(where, 'give exactly one of "header" and "xml"')
  return {header, xml, compare: o.compare, why: optStr(o.why, `${where}.why`)}
}

/** Every `{{…}}` must be one the replayer knows how to fill. */
function checkPlaceholders(t: Transcript) {
  t.steps.forEach((s, i) => {
    const texts = [s.request.path, s.request.body, s.response.body, ...s.request.headers.flat(), ...s.response.headers.flat()]
    for (const text of texts) {
      for (const m of text.matchAll(PLACEHOLDER_RE)) {
        const [, name, arg] = m
        if (!(name in PLACEHOLDERS) || (name === 'cookie') !== (arg !== undefined)) {
          throw configError('REPLAY_UNKNOWN_PLACEHOLDER', `unknown placeholder ${m[0]} in steps[${i}]; known: ${Object.keys(PLACEHOLDERS).join(', ')}`)
        }
      }
    }
  })
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(where, 'expected an object')
  return v as Record<string, unknown>
}

function arr(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw bad(where, 'expected an array')
  if (v.length > max) throw bad(where, `${v.length} entries, at most ${max}`)
  return v
}

function str(v: unknown, where: string, max: number): string {
  if (typeof v !== 'string') throw bad(where, 'expected a string')
  if (v.length > max) throw bad(where, `${v.length} characters, at most ${max}`)
  return v
}

function optStr(v: unknown, where: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, where, 4096)
}

function strMap(v: unknown, where: string): Record<string, string> {
  const o = obj(v, where)
  const out: Record<string, string> = {}
  for (const [k, val] of Object.entries(o).slice(0, 100)) out[k] = str(val, `${where}.${k}`, 1024)
  return out
}
