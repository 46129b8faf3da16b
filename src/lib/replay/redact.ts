/**
 * Redaction: every transcript passes through `redactTranscript` before it is written, whoever
 * made it (probe, serve, an imported openconnect log). Known secret places are replaced by
 * named placeholders (format.ts); then every secret value found is also replaced wherever
 * else it appears (openconnect, for one, sends the webvpncontext value again as the webvpn
 * cookie), so a transcript can be attached to a bug report.
 */
import {parseServerXml, type ServerAuthDoc} from '../client/auth-xml.js'
import {type Header, PLACEHOLDERS, type Step, type Transcript, placeholder} from './format.js'

export interface KnownSecrets {
  user?: string
  password?: string
}

/** Secret values shorter than this are not searched for elsewhere (too many false hits). */
const MIN_GLOBAL_SECRET = 6

const SECRET_REQUEST_HEADERS: Record<string, string> = {
  'x-dtls-master-secret': 'master-secret',
  'x-anyconnect-strap-pubkey': 'strap-pubkey',
  'x-anyconnect-strap-dh-pubkey': 'strap-dh-pubkey',
  'x-anyconnect-strap-verify': 'strap-verify',
  authorization: 'authorization',
  'proxy-authorization': 'authorization',
}

const SECRET_RESPONSE_HEADERS: Record<string, string> = {
  'x-dtls-session-id': 'dtls-session-id',
  'x-dtls-app-id': 'dtls-app-id',
  'x-dtls-master-secret': 'master-secret',
}

/** Form fields whose names say they hold a secret, when the form's own types are unknown. */
const SECRET_FIELD_RE = /pass|secret|pin|otp|token|answer|code/i

class Redactor {
  /** Secret value → its placeholder, for the final sweep. */
  readonly found = new Map<string, string>()
  readonly used = new Set<string>()

  constructor(private readonly known: KnownSecrets) {
    if (known.password) this.found.set(known.password, placeholder('password'))
  }

  hide(value: string, name: string, arg?: string): string {
    const ph = placeholder(name, arg)
    this.used.add(name)
    if (value.length >= MIN_GLOBAL_SECRET && !value.includes('{{')) this.found.set(value, ph)
    return ph
  }

  requestHeaders(headers: Header[]): Header[] {
    return headers.map(([k, v]) => {
      const lower = k.toLowerCase()
      if (lower === 'host') return [k, this.hide(v, 'host')]
      if (lower === 'cookie') return [k, this.cookieHeader(v)]
      const name = SECRET_REQUEST_HEADERS[lower]
      return name ? [k, this.hide(v, name)] : [k, v]
    })
  }

  responseHeaders(headers: Header[]): Header[] {
    return headers.map(([k, v]) => {
      const lower = k.toLowerCase()
      if (lower === 'set-cookie') return [k, this.setCookie(v)]
      const name = SECRET_RESPONSE_HEADERS[lower]
      return name ? [k, this.hide(v, name)] : [k, v]
    })
  }

  private cookieHeader(v: string): string {
    return v
      .split(';')
      .map((pair) => {
        const eq = pair.indexOf('=')
        if (eq < 0) return pair.trim()
        const name = pair.slice(0, eq).trim()
        const value = pair.slice(eq + 1).trim()
        return value === '' ? `${name}=` : `${name}=${this.hide(value, 'cookie', name)}`
      })
      .join('; ')
  }

  private setCookie(v: string): string {
    const semi = v.indexOf(';')
    const pair = semi < 0 ? v : v.slice(0, semi)
    const rest = semi < 0 ? '' : v.slice(semi)
    const eq = pair.indexOf('=')
    if (eq < 0) return v
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    return value === '' ? v : `${name}=${this.hide(value, 'cookie', name)}${rest}`
  }

  /** A client body: the echoed opaque, the URL, the session token and the form's fields. */
  requestBody(body: string, form: ServerAuthDoc['form'] | undefined): string {
    if (body.trimStart().startsWith('<')) return this.requestXml(body, form)
    if (!body.includes('=')) return body
    // A legacy form post (auth-and-cstp.md §2.13): name=value&…
    return body
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=')
        if (eq < 0) return pair
        const name = decodeURIComponent(pair.slice(0, eq).replace(/\+/g, ' '))
        const value = decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '))
        return `${pair.slice(0, eq)}=${this.field(name, value, form)}`
      })
      .join('&')
  }

  private requestXml(body: string, form: ServerAuthDoc['form'] | undefined): string {
    let out = body.replace(/<opaque[\s>][\s\S]*?<\/opaque>/g, (m) => this.hide(m, 'opaque'))
    out = out.replace(/<group-access>([^<]*)<\/group-access>/g, (_m, v: string) => `<group-access>${this.hide(v, 'url')}</group-access>`)
    out = this.elementText(out, 'session-token')
    return out.replace(/<auth>([\s\S]*?)<\/auth>/, (_m, inner: string) => {
      const fields = inner.replace(/<([A-Za-z_][\w.-]*)>([^<]*)<\/\1>/g, (_f, name: string, value: string) => {
        return `<${name}>${this.field(name, value, form)}</${name}>`
      })
      return `<auth>${fields}</auth>`
    })
  }

  private field(name: string, value: string, form: ServerAuthDoc['form'] | undefined): string {
    if (value === '') return value
    const input = form?.inputs.find((i) => i.name === name)
    if (input?.type === 'password' || (!input && SECRET_FIELD_RE.test(name))) return this.hide(value, 'password')
    if (name === 'username' || (this.known.user !== undefined && value === this.known.user)) {
      this.used.add('user')
      return placeholder('user')
    }

    return value
  }

  /** A gateway body: tokens and ids, and the inside of `<opaque>`. */
  responseBody(body: string): string {
    let out = body.replace(/(<opaque\b[^>]*>)([\s\S]*?)(<\/opaque>)/g, (_m, open: string, inner: string, close: string) => {
      return inner.trim() === '' ? `${open}${inner}${close}` : `${open}${this.hide(inner, 'opaque')}${close}`
    })
    out = this.elementText(out, 'session-token')
    return this.elementText(out, 'session-id')
  }

  private elementText(body: string, element: string): string {
    const re = new RegExp(`(<${element}>)([^<]+)(</${element}>)`, 'g')
    return body.replace(re, (_m, open: string, v: string, close: string) => `${open}${this.hide(v, element)}${close}`)
  }

  /** Every secret found, replaced wherever else it appears. */
  sweep(s: string): string {
    let out = s
    for (const [value, ph] of this.found) {
      // `s` is JSON text: look for the value as JSON writes it.
      const encoded = JSON.stringify(value).slice(1, -1)
      if (out.includes(encoded)) {
        out = out.split(encoded).join(ph)
        this.used.add(/^\{\{([a-z-]+)/.exec(ph)![1])
      }
    }

    return out
  }
}

function safeForm(body: string): ServerAuthDoc['form'] | undefined {
  if (!body.trimStart().startsWith('<')) return undefined
  try {
    return parseServerXml(body).form
  } catch {
    return undefined
  }
}

/**
 * A copy of `t` with its secrets replaced by placeholders and `placeholders` listing the names
 * used. `known` adds values to hide everywhere (the password a recorder was given).
 */
export function redactTranscript(t: Transcript, known: KnownSecrets = {}): Transcript {
  const r = new Redactor(known)
  let form: ServerAuthDoc['form'] | undefined
  const first: Step[] = t.steps.map((s) => {
    const request = {...s.request, headers: r.requestHeaders(s.request.headers), body: r.requestBody(s.request.body, form)}
    const response = {...s.response, headers: r.responseHeaders(s.response.headers), body: r.responseBody(s.response.body)}
    form = safeForm(s.response.body) ?? form
    return {...s, request, response}
  })

  // The sweep goes over the serialized steps: one pass catches headers, paths and bodies.
  const steps = JSON.parse(r.sweep(JSON.stringify(first))) as Step[]
  const placeholders: Record<string, string> = {}
  for (const name of [...r.used].sort()) placeholders[name] = PLACEHOLDERS[name] ?? name
  return {...t, placeholders, steps}
}
