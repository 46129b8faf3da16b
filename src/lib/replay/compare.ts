/**
 * Comparing a live answer with the recorded one, field by field: the status, each header
 * (Set-Cookie by cookie, the CONNECT headers also by what they mean), the XML structure
 * (element and attribute paths with their values) and the first tunnel frames.
 *
 * Values expected to change (tokens, pool addresses, dates, versions) are compared by shape;
 * a recorded value holding placeholders matches any live value of that form. The default
 * rules are below and in docs/transcript-format.md; a transcript's own rules come first.
 */
import {XMLParser, XMLValidator} from 'fast-xml-parser'

import type {CompareMode, CompareRule, Header, RecordedFrame, RecordedResponse} from './format.js'

export interface Difference {
  /** What part of the answer: `status`, `header`, `cookie`, `xml`, `body`, `connect`, `frames`. */
  where: string
  /** The header name, XML path or CONNECT property. */
  name: string
  /** Recorded; absent when the live answer has something the recorded one did not. */
  expected?: string
  /** Live; absent when it is missing. */
  actual?: string
  compare: CompareMode
}

/** Values that differ from one gateway, login or build to the next. */
export const DEFAULT_RULES: CompareRule[] = [
  {header: 'Date', compare: 'shape', why: 'the time of the answer'},
  {header: 'Content-Length', compare: 'ignore', why: 'the body is compared instead'},
  {header: 'Keep-Alive', compare: 'ignore', why: 'a server timer, not seen by clients'},
  {header: 'Server', compare: 'shape', why: 'the server build'},
  {header: 'X-CSTP-Server-Name', compare: 'shape', why: 'the server build'},
  {header: 'X-CSTP-Address', compare: 'shape', why: 'leased from a pool'},
  {header: 'X-CSTP-Address-IP6', compare: 'shape', why: 'leased from a pool'},
  {header: 'X-CSTP-Rekey-Time', compare: 'shape', why: 'servers add jitter'},
  {header: 'X-CSTP-Session-Timeout-Remaining', compare: 'shape', why: 'counts down'},
  {header: 'X-DTLS-Port', compare: 'shape', why: 'follows the listener'},
  {header: 'X-DTLS-Session-ID', compare: 'shape', why: 'random per session'},
  {header: 'X-DTLS-App-ID', compare: 'shape', why: 'random per session'},
  {xml: '/config-auth/version', compare: 'shape', why: 'the server build'},
  {xml: '/config-auth/session-token', compare: 'shape', why: 'random per session'},
  {xml: '/config-auth/session-id', compare: 'shape', why: 'random per session'},
  {xml: '/config-auth/opaque*', compare: 'shape', why: 'gateway state echoed by the client'},
  {xml: '/config-auth/config/vpn-base-config/server-cert-hash', compare: 'shape', why: 'the gateway certificate'},
]

export function modeFor(rules: CompareRule[], kind: 'header' | 'xml', name: string): CompareMode {
  const lower = name.toLowerCase()
  for (const r of rules) {
    const pattern = (kind === 'header' ? r.header : r.xml)?.toLowerCase()
    if (pattern === undefined) continue
    const hit = pattern.endsWith('*') ? lower.startsWith(pattern.slice(0, -1)) : lower === pattern
    if (hit) return r.compare
  }

  return 'value'
}

/** The shape of a value: what kind of thing it is, not which one. */
export function shapeOf(v: string): string {
  const s = v.trim()
  if (s === '') return 'empty'
  if (/^\d+$/.test(s)) return 'integer'
  if (/^(\d{1,3}\.){3}\d{1,3}$/.test(s)) return 'ipv4'
  if (/^(\d{1,3}\.){3}\d{1,3}\/[\d.]+$/.test(s)) return 'ipv4-network'
  if (/^[0-9a-f:]+$/i.test(s) && s.includes(':') && s.split(':').length > 2) return 'ipv6'
  if (/^[0-9a-f:]+\/\d+$/i.test(s) && s.includes(':')) return 'ipv6-network'
  if (/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(s)) return 'http-date'
  if (/^[0-9a-f]{8,}$/i.test(s)) return 'hex'
  if (/^[A-Za-z0-9+/_-]{12,}={0,2}$/.test(s)) return 'base64'
  return 'text'
}

const PLACEHOLDER_ANY = /\{\{[a-z-]+(?::[A-Za-z0-9_.-]+)?\}\}/g

/** A recorded value holding placeholders, as a pattern any live value of that form matches. */
function asPattern(recorded: string): RegExp | undefined {
  if (!recorded.includes('{{')) return undefined
  const parts = recorded.split(PLACEHOLDER_ANY).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[^]+')}$`)
}

export function valuesMatch(recorded: string, live: string, mode: CompareMode): boolean {
  if (mode === 'ignore') return true
  const pattern = asPattern(recorded)
  if (pattern) return pattern.test(live)
  if (mode === 'shape') return shapeOf(recorded) === shapeOf(live)
  return recorded === live
}

/** Status, headers and body of one answer. */
export function compareResponse(rec: RecordedResponse, live: RecordedResponse, rules: CompareRule[]): Difference[] {
  const out: Difference[] = []
  if (rec.status !== live.status) {
    out.push({where: 'status', name: 'status', expected: `${rec.status} ${rec.statusText}`, actual: `${live.status} ${live.statusText}`, compare: 'value'})
  }

  out.push(...compareHeaders(rec.headers, live.headers, rules))
  out.push(...compareBodies(rec.body, live.body, rules))
  return out
}

function grouped(headers: Header[]): Map<string, {name: string; values: string[]}> {
  const m = new Map<string, {name: string; values: string[]}>()
  for (const [k, v] of headers) {
    const key = k.toLowerCase()
    const entry = m.get(key) ?? {name: k, values: []}
    entry.values.push(v)
    m.set(key, entry)
  }

  return m
}

export function compareHeaders(rec: Header[], live: Header[], rules: CompareRule[]): Difference[] {
  const a = grouped(rec)
  const b = grouped(live)
  const out: Difference[] = []
  out.push(...compareConnection(a.get('connection')?.values[0], b.get('connection')?.values[0]))
  out.push(...compareCookies(a.get('set-cookie')?.values ?? [], b.get('set-cookie')?.values ?? []))

  for (const key of new Set([...a.keys(), ...b.keys()])) {
    if (key === 'set-cookie' || key === 'connection') continue
    const name = (a.get(key) ?? b.get(key))!.name
    const mode = modeFor(rules, 'header', name)
    if (mode === 'ignore') continue
    const x = a.get(key)?.values
    const y = b.get(key)?.values
    if (!x || !y) {
      out.push({where: 'header', name, expected: x?.join(' | '), actual: y?.join(' | '), compare: mode})
      continue
    }

    // Repeated headers (routes, DNS) are a set: order is not meaning.
    const xs = x.length > 1 ? [...x].sort() : x
    const ys = y.length > 1 ? [...y].sort() : y
    const same = xs.length === ys.length && xs.every((v, i) => valuesMatch(v, ys[i], mode))
    if (!same) out.push({where: 'header', name, expected: x.join(' | '), actual: y.join(' | '), compare: mode})
  }

  return out
}

/** HTTP/1.1 without a Connection header keeps the connection: only `close` means something. */
function compareConnection(rec: string | undefined, live: string | undefined): Difference[] {
  const isClose = (v?: string) => v?.toLowerCase() === 'close'
  if (isClose(rec) === isClose(live)) return []
  return [{where: 'header', name: 'Connection', expected: rec ?? '(keep-alive)', actual: live ?? '(keep-alive)', compare: 'value'}]
}

interface CookieFacts {
  isSet: boolean
  attrs: string
}

function cookieFacts(values: string[]): Map<string, CookieFacts[]> {
  const m = new Map<string, CookieFacts[]>()
  for (const v of values) {
    const [pair, ...attrs] = v.split(';').map((p) => p.trim())
    const eq = pair.indexOf('=')
    const name = eq < 0 ? pair : pair.slice(0, eq)
    const value = eq < 0 ? '' : pair.slice(eq + 1)
    // Attribute names, with the kind of value each has: `Max-Age=integer; Secure`.
    const attrShape = attrs
      .filter(Boolean)
      .map((a) => {
        const i = a.indexOf('=')
        const k = (i < 0 ? a : a.slice(0, i)).toLowerCase()
        if (i < 0) return k
        return k === 'path' ? `path=${a.slice(i + 1)}` : `${k}=${shapeOf(a.slice(i + 1))}`
      })
      .sort()
      .join('; ')
    m.set(name, [...(m.get(name) ?? []), {isSet: value !== '', attrs: attrShape}])
  }

  return m
}

function describeCookie(f: CookieFacts[] | undefined): string | undefined {
  return f?.map((c) => `${c.isSet ? 'set' : 'cleared'}${c.attrs ? `; ${c.attrs}` : ''}`).join(' | ')
}

/** Each cookie by name: set or cleared, and its attributes; the values are secrets anyway. */
export function compareCookies(rec: string[], live: string[]): Difference[] {
  const a = cookieFacts(rec)
  const b = cookieFacts(live)
  const out: Difference[] = []
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const x = describeCookie(a.get(name))
    const y = describeCookie(b.get(name))
    if (x !== y) out.push({where: 'cookie', name, expected: x, actual: y, compare: 'shape'})
  }

  return out
}

const xmlParser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  processEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
})

type OrderedNode = Record<string, unknown> & {':@'?: Record<string, string>}

/**
 * An XML body as path → value: `/config-auth/@type`, `/config-auth/auth/form/input[@name=username]/@label`.
 * Siblings with a `name` are keyed by it, so order does not matter; others by position when
 * repeated. Returns undefined when the text is not well-formed XML.
 */
export function flattenXml(body: string): Map<string, string> | undefined {
  if (!body.trimStart().startsWith('<') || /<!DOCTYPE|<!ENTITY/i.test(body)) return undefined
  if (XMLValidator.validate(body) !== true) return undefined
  const out = new Map<string, string>()
  walk(xmlParser.parse(body) as OrderedNode[], '', out)
  return out
}

function walk(nodes: OrderedNode[], base: string, out: Map<string, string>) {
  const seen = new Map<string, number>()
  for (const node of nodes) {
    const tag = Object.keys(node).find((k) => k !== ':@')
    if (!tag) continue
    if (tag === '#text') {
      const prev = out.get(base)
      out.set(base, prev === undefined ? String(node[tag]) : `${prev} ${String(node[tag])}`)
      continue
    }

    if (tag.startsWith('?') || tag === '#comment') continue
    const attrs = node[':@'] ?? {}
    const count = seen.get(tag) ?? 0
    seen.set(tag, count + 1)
    const key = attrs.name !== undefined ? `${tag}[@name=${attrs.name}]` : count > 0 ? `${tag}[${count + 1}]` : tag
    const path = `${base}/${key}`
    out.set(path, out.get(path) ?? '')
    for (const [k, v] of Object.entries(attrs)) if (k !== 'name') out.set(`${path}/@${k}`, String(v))
    walk((node[tag] as OrderedNode[]) ?? [], path, out)
  }
}

export function compareBodies(rec: string, live: string, rules: CompareRule[]): Difference[] {
  const a = flattenXml(rec)
  const b = flattenXml(live)
  if (a && b) return compareXml(a, b, rules)
  if (rec.trim() === '' && live.trim() === '') return []
  if (a || b) {
    return [{where: 'body', name: 'body', expected: a ? 'XML' : describeText(rec), actual: b ? 'XML' : describeText(live), compare: 'value'}]
  }

  return valuesMatch(rec.trim(), live.trim(), 'value') ? [] : [{where: 'body', name: 'body', expected: describeText(rec), actual: describeText(live), compare: 'value'}]
}

function describeText(s: string): string {
  const t = s.trim()
  if (t === '') return '(empty)'
  return t.length > 80 ? `${JSON.stringify(t.slice(0, 77))}…` : JSON.stringify(t)
}

function xmlMode(rules: CompareRule[], path: string): CompareMode {
  // Rules name paths without the [@name=…] keys, so `…/input/@label` covers every input.
  const plain = path.replace(/\[[^\]]*\]/g, '')
  return modeFor(rules, 'xml', plain)
}

function compareXml(a: Map<string, string>, b: Map<string, string>, rules: CompareRule[]): Difference[] {
  const out: Difference[] = []
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const mode = xmlMode(rules, path)
    if (mode === 'ignore') continue
    const x = a.get(path)
    const y = b.get(path)
    if (x !== undefined && y !== undefined && valuesMatch(x, y, mode)) continue
    // An element missing reports once, not once per attribute and child below it.
    const parentMissing = [...out].some((d) => path.startsWith(`${d.name}/`) && (d.expected === undefined || d.actual === undefined))
    if (parentMissing) continue
    out.push({where: 'xml', name: path, expected: x, actual: y, compare: mode})
  }

  return out
}

/** What a CONNECT answer grants, in the words an administrator uses. */
export function connectMeaning(headers: Header[]): Record<string, string> {
  const all = (n: string) => headers.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, v]) => v)
  const list = (...names: string[]) => names.flatMap(all).sort().join(', ') || '(none)'
  const v4 = all('X-CSTP-Address').some((a) => !a.includes(':'))
  const v6 = all('X-CSTP-Address-IP6').length > 0 || all('X-CSTP-Address').some((a) => a.includes(':'))
  const families = [v4 && 'IPv4', v6 && 'IPv6'].filter(Boolean).join('+') || '(none)'
  return {
    'address family': families,
    netmask: all('X-CSTP-Netmask')[0] ?? '(none)',
    routes: all('X-CSTP-Split-Include').length + all('X-CSTP-Split-Include-IP6').length === 0 ? 'all traffic' : list('X-CSTP-Split-Include', 'X-CSTP-Split-Include-IP6'),
    excludes: list('X-CSTP-Split-Exclude', 'X-CSTP-Split-Exclude-IP6'),
    dns: list('X-CSTP-DNS', 'X-CSTP-DNS-IP6'),
    mtu: all('X-CSTP-MTU')[0] ?? '(none)',
    'base mtu': all('X-CSTP-Base-MTU')[0] ?? '(none)',
    'dtls offer': all('X-DTLS-Port').length === 0 ? 'none' : `cipher ${all('X-DTLS12-CipherSuite')[0] ?? all('X-DTLS-CipherSuite')[0] ?? '?'}`,
    dpd: all('X-CSTP-DPD')[0] ?? '(none)',
    keepalive: all('X-CSTP-Keepalive')[0] ?? '(none)',
  }
}

export function compareConnect(rec: Header[], live: Header[]): Difference[] {
  const a = connectMeaning(rec)
  const b = connectMeaning(live)
  return Object.keys(a)
    .filter((k) => a[k] !== b[k])
    .map((k) => ({where: 'connect', name: k, expected: a[k], actual: b[k], compare: 'value' as const}))
}

/** How long a replay reads the gateway's first tunnel frames, by default. */
export const FRAME_WAIT_MS = 1000

/**
 * The gateway's control frames (DPD, keepalive, DISCONNECT…) in the tunnel's first moments, as
 * a set of types; DATA frames depend on the hosts' own traffic and are not compared. A replay
 * sends the client's recorded DPD requests and keepalives at once and reads the gateway for
 * `windowMs`, so a recorded frame counts when it came within `windowMs` of the CONNECT answer
 * or its time is unknown, and a DPD response whenever it came: it answers a request the replay
 * has just sent again. Later frames (a DPD request or keepalive after minutes of quiet, a
 * DISCONNECT when serve stopped) follow timers and events a replay does not reproduce.
 */
export function compareFrames(rec: RecordedFrame[], live: RecordedFrame[], windowMs = FRAME_WAIT_MS): Difference[] {
  const counts = (f: RecordedFrame) => f.at === undefined || f.at < windowMs || f.type === 'DpdResponse'
  const kinds = (fs: RecordedFrame[]) =>
    [...new Set(fs.filter((f) => f.from === 'gateway' && f.type !== 'Data' && counts(f)).map((f) => f.type))].sort().join(', ') || '(none)'
  const x = kinds(rec)
  const y = kinds(live)
  return x === y ? [] : [{where: 'frames', name: 'gateway control frames', expected: x, actual: y, compare: 'value'}]
}
