/**
 * The client side of the aggregate-auth XML (auth-and-cstp.md §2.4-§2.9): the `init` document
 * as Cisco Secure Client or openconnect sends it, reading the gateway's `auth-request` form and
 * `complete`, and the `auth-reply` built from a form.
 */
import {XMLParser, XMLValidator} from 'fast-xml-parser'

import {escapeXml, unescapeXml} from '../http-auth/xml.js'
import {ProtocolError} from '../errors.js'

export type ClientFamily = 'cisco' | 'openconnect'

export interface FormInput {
  type: string
  name: string
  label?: string
  value?: string
}

export interface FormSelect {
  name: string
  label?: string
  options: {value: string; label: string; selected: boolean}[]
}

export interface ServerAuthDoc {
  /** `auth-request`, `complete`, … */
  type: string
  aggregateAuthVersion?: string
  serverVersion?: string
  authId?: string
  title?: string
  message?: string
  banner?: string
  error?: string
  form?: {action: string; method: string; inputs: FormInput[]; selects: FormSelect[]}
  sessionToken?: string
  /** The `<opaque>` element as sent, to echo back verbatim. */
  opaqueXml?: string
  serverCertHash?: string
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  processEntities: false,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => ['input', 'select', 'option'].includes(name),
})

type Node = Record<string, unknown>
const str = (v: unknown): string | undefined => {
  if (typeof v === 'string') return unescapeXml(v)
  if (v && typeof v === 'object' && '#text' in v) return str((v as Node)['#text'])
  return undefined
}

const attr = (n: unknown, name: string): string | undefined => {
  if (!n || typeof n !== 'object') return undefined
  const v = (n as Node)[`@${name}`]
  return typeof v === 'string' ? unescapeXml(v) : undefined
}

/** Reads a gateway's XML answer. Throws CLIENT_BAD_XML when it is not aggregate-auth XML. */
export function parseServerXml(body: string): ServerAuthDoc {
  const bad = (why: string) => new ProtocolError('auth', 'CLIENT_BAD_XML', why)
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) throw bad('the answer declares a doctype or entities')
  const valid = XMLValidator.validate(body)
  if (valid !== true) throw bad(`malformed xml: ${valid.err.msg}`)

  const doc = parser.parse(body) as Node
  const root = (doc['config-auth'] ?? (doc.auth ? {auth: doc.auth} : undefined)) as Node | undefined
  if (!root) throw bad('the answer is not <config-auth>')

  const auth = (root.auth ?? {}) as Node
  const form = auth.form as Node | undefined
  const version = root.version
  const opaque = /<opaque[\s>][\s\S]*?<\/opaque>/.exec(body)?.[0]
  const baseConfig = ((root.config as Node | undefined)?.['vpn-base-config'] ?? {}) as Node

  return {
    type: attr(root, 'type') ?? '',
    aggregateAuthVersion: attr(root, 'aggregate-auth-version'),
    serverVersion: str(version),
    authId: attr(auth, 'id'),
    title: str(auth.title),
    message: str(auth.message),
    banner: str(auth.banner),
    error: str(auth.error),
    form: form ? readForm(form) : undefined,
    sessionToken: str(root['session-token']),
    opaqueXml: opaque,
    serverCertHash: str(baseConfig['server-cert-hash']),
  }
}

function readForm(form: Node) {
  const inputs = ((form.input as Node[] | undefined) ?? []).map((i) => ({
    type: attr(i, 'type') ?? 'text',
    name: attr(i, 'name') ?? '',
    label: attr(i, 'label'),
    value: attr(i, 'value'),
  }))
  const selects = ((form.select as Node[] | undefined) ?? []).map((s) => ({
    name: attr(s, 'name') ?? '',
    label: attr(s, 'label'),
    options: ((s.option as unknown[] | undefined) ?? []).map((o) => {
      const label = str(o) ?? ''
      return {value: attr(o, 'value') ?? label, label, selected: attr(o, 'selected') === 'true'}
    }),
  }))
  return {action: attr(form, 'action') || '/', method: attr(form, 'method') || 'POST', inputs, selects}
}

/** Identity of each client family on the wire (auth-and-cstp.md §2.2, §2.3). */
export const CLIENT_IDENTITY = {
  openconnect: {
    authAgent: 'AnyConnect-compatible OpenConnect VPN Agent v9.12',
    tunnelAgent: 'AnyConnect-compatible OpenConnect VPN Agent v9.12',
    version: 'v9.12',
    contentType: 'application/xml; charset=utf-8',
  },
  // Cisco Secure Client keeps AnyConnect's User-Agent forms (UNCONFIRMED for 5.x, §2.3) and
  // posts its XML labelled as a form (openconnect-sso, imitating it, does the same).
  cisco: {
    authAgent: 'AnyConnect Linux_64 4.10.07061',
    tunnelAgent: 'Cisco AnyConnect VPN Agent for Linux 4.10.07061',
    version: '4.10.07061',
    contentType: 'application/x-www-form-urlencoded',
  },
} as const

export function authHeaders(as: ClientFamily): [string, string][] {
  const id = CLIENT_IDENTITY[as]
  const common: [string, string][] = [
    ['User-Agent', id.authAgent],
    ['Accept', '*/*'],
    ['Accept-Encoding', 'identity'],
    ['X-Transcend-Version', '1'],
    ['X-Aggregate-Auth', '1'],
  ]
  if (as === 'cisco') common.push(['X-AnyConnect-Platform', 'linux-64'])
  else common.push(['X-Support-HTTP-Auth', 'true'])
  return common
}

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded'

/**
 * The headers of openconnect's legacy form login (`--no-xmlpost`, auth-and-cstp.md §2.13): no
 * X-Aggregate-Auth, and the form content type on every request, the first GET included.
 */
export function legacyHeaders(): [string, string][] {
  return [
    ['User-Agent', CLIENT_IDENTITY.openconnect.authAgent],
    ['Accept', '*/*'],
    ['Accept-Encoding', 'identity'],
    ['X-Transcend-Version', '1'],
    ['X-Support-HTTP-Auth', 'true'],
    ['Content-Type', FORM_CONTENT_TYPE],
  ]
}

/** The credentials for a form: the password in every password input, the user in `username`. */
export function credentialValues(doc: ServerAuthDoc, user: string, password: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const input of doc.form?.inputs ?? []) {
    if (input.type === 'password') values[input.name] = password
    else if (input.name === 'username') values[input.name] = user
  }

  return values
}

/**
 * A form's answer as name-value pairs, in the order openconnect's legacy login posts them
 * (§2.13): the group list first, then every input in the form's order.
 */
export function formFields(doc: ServerAuthDoc, values: Record<string, string>, group?: string): [string, string][] {
  const pairs: [string, string][] = []
  for (const select of doc.form?.selects ?? []) {
    const chosen = pickOption(select, select.name === 'group_list' ? group : undefined)
    if (select.name && chosen !== undefined) pairs.push([select.name, chosen])
  }

  for (const input of doc.form?.inputs ?? []) {
    if (!input.name || input.type === 'submit' || input.type === 'reset') continue
    pairs.push([input.name, values[input.name] ?? input.value ?? ''])
  }

  return pairs
}

/** `name=value&…`, percent-encoded (a space as %20, as openconnect writes it). */
export function encodeForm(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
}

export function buildInit(as: ClientFamily, url: string, groupSelect?: string): string {
  const id = CLIENT_IDENTITY[as]
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<config-auth client="vpn" type="init" aggregate-auth-version="2">',
    `<version who="vpn">${escapeXml(id.version)}</version>`,
    '<device-id>linux-64</device-id>',
    groupSelect ? `<group-select>${escapeXml(groupSelect)}</group-select>` : '',
    '<capabilities><auth-method>single-sign-on-v2</auth-method></capabilities>',
    `<group-access>${escapeXml(url)}</group-access>`,
    '</config-auth>',
  ]
    .filter(Boolean)
    .join('\n')
}

/** The `auth-reply` for a form, with the gateway's opaque echoed and the group at the root. */
export function buildReply(as: ClientFamily, doc: ServerAuthDoc, values: Record<string, string>, group?: string): string {
  const fields = (doc.form?.inputs ?? [])
    .filter((i) => i.name && i.type !== 'submit' && i.type !== 'reset')
    .map((i) => `<${i.name}>${escapeXml(values[i.name] ?? i.value ?? '')}</${i.name}>`)
  const groupSelect = doc.form?.selects.find((s) => s.name === 'group_list')
  const chosen = groupSelect ? pickOption(groupSelect, group) : undefined
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<config-auth client="vpn" type="auth-reply" aggregate-auth-version="2">',
    `<version who="vpn">${escapeXml(CLIENT_IDENTITY[as].version)}</version>`,
    '<device-id>linux-64</device-id>',
    doc.opaqueXml ?? '',
    `<auth>${fields.join('')}</auth>`,
    chosen ? `<group-select>${escapeXml(chosen)}</group-select>` : '',
    '</config-auth>',
  ]
    .filter(Boolean)
    .join('\n')
}

/** The option for `group` (by value or label), else the selected one, else the first. */
export function pickOption(select: FormSelect, group?: string): string | undefined {
  const g = group?.toLowerCase()
  const match = select.options.find((o) => o.value.toLowerCase() === g || o.label.toLowerCase() === g)
  return (match ?? select.options.find((o) => o.selected) ?? select.options[0])?.value
}
