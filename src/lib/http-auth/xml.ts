/**
 * The aggregate-auth XML (auth-and-cstp.md §2.4-§2.9): client documents in, server documents
 * out. Parsing is by element, not substring, but tolerant: any element order, unknown elements
 * ignored, `<auth>` children read wherever openconnect or AnyConnect put them. Documents with a
 * DOCTYPE are refused before parsing, so no entity can expand.
 */
import {XMLParser, XMLValidator} from 'fast-xml-parser'

import {ProtocolError} from '../errors.js'

export interface ClientAuthMessage {
  /** `init`, `auth-reply`, `logout`…; `form` for the legacy URL-encoded login. */
  type: string
  username?: string
  password?: string
  groupSelect?: string
  /** The raw XML of the `<opaque>` the client echoed, if any. */
  hasOpaque: boolean
  version?: string
  deviceId?: string
}

const authError = (code: string, message: string) => new ProtocolError('auth', code, message, 400)

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  processEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
})

/** Decodes the five XML entities and numeric character references; leaves others verbatim. */
export function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d{1,7}|#x[0-9a-fA-F]{1,6});/g, (whole, name: string) => {
    switch (name) {
      case 'lt':
        return '<'
      case 'gt':
        return '>'
      case 'amp':
        return '&'
      case 'quot':
        return '"'
      case 'apos':
        return "'"
    }

    const code = name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10)
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole
  })
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * The option that means "the user's own default group" (their first group in the users file),
 * listed first and selected, so that a client that cannot ask (openconnect --non-inter) still
 * logs in; ocserv's `default-select-group` plays the same part.
 */
export const DEFAULT_GROUP = 'DEFAULT'

/** True when a body is XML rather than a form: decided by content, as real clients mislabel it. */
export function looksLikeXml(body: string): boolean {
  return body.trimStart().startsWith('<')
}

type Node = Record<string, unknown>

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return unescapeXml(v)
  if (v && typeof v === 'object' && '#text' in v) return text((v as Node)['#text'])
  if (Array.isArray(v)) return text(v[0])
  return undefined
}

/** Parses a client `<config-auth>` document. Throws AUTH_BAD_XML (400) on anything malformed. */
export function parseClientXml(body: string): ClientAuthMessage {
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) {
    throw authError('AUTH_XML_DOCTYPE', 'xml with a doctype or entity declaration refused')
  }

  const valid = XMLValidator.validate(body)
  if (valid !== true) throw authError('AUTH_BAD_XML', `malformed xml: ${valid.err.msg}`)

  const doc = parser.parse(body) as Node
  const root = doc['config-auth'] as Node | undefined
  if (!root || typeof root !== 'object') {
    throw authError('AUTH_BAD_XML', 'xml root is not <config-auth>')
  }

  const auth = (typeof root.auth === 'object' ? root.auth : {}) as Node
  const password = text(auth.password) ?? firstPasswordField(auth)
  return {
    type: String(root['@type'] ?? ''),
    username: text(auth.username),
    password,
    groupSelect: text(root['group-select']),
    hasOpaque: root.opaque !== undefined,
    version: text(root.version),
    deviceId: text(root['device-id']),
  }
}

/** ocserv takes the first field whose name ends in `password` (e.g. `secondary_password`). */
function firstPasswordField(auth: Node): string | undefined {
  const key = Object.keys(auth).find((k) => k.endsWith('password'))
  return key ? text(auth[key]) : undefined
}

/** Parses the legacy form login (`username=…&password=…&group_list=…`, auth-and-cstp.md §2.13). */
export function parseClientForm(body: string): ClientAuthMessage {
  const params = new URLSearchParams(body)
  let password: string | undefined
  for (const [k, v] of params) {
    if (k.includes('password')) {
      password = v
      break
    }
  }

  return {
    type: 'form',
    username: params.get('username') ?? undefined,
    password,
    groupSelect: params.get('group_list') ?? undefined,
    hasOpaque: false,
  }
}

export interface LoginFormOptions {
  message: string
  error?: string
  banner?: string
  groups: {name: string; label: string}[]
  selectedGroup?: string
  /** Where the client posts the reply. */
  action: string
  serverVersion: string
}

/**
 * The `auth-request` form. Username and password come in one form, as an ASA and ocserv 1.4+
 * ask them (auth-and-cstp.md §2.8), so a login takes one round trip. The `<error>` element is
 * ASA's way of saying a try failed (§2.10); openconnect shows it and asks again.
 */
export function buildAuthRequest(o: LoginFormOptions): string {
  // Clients send the value or, some AnyConnect versions, the label (auth-and-cstp.md §2.6).
  const chosen = o.groups.find((g) => g.name === o.selectedGroup || g.label === o.selectedGroup)
  const groups = orderGroups(o.groups, chosen?.name)
  const options = [
    ...(chosen ? [] : [{name: DEFAULT_GROUP, label: 'Default'}]),
    ...groups,
  ].map((g, i) => {
    const selected = i === 0 ? ' selected="true"' : ''
    return `<option value="${escapeXml(g.name)}"${selected}>${escapeXml(g.label)}</option>`
  })
  const select =
    groups.length === 0
      ? ''
      : `<select name="group_list" label="Group:">\n${options.join('\n')}\n</select>\n`

  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<config-auth client="vpn" type="auth-request" aggregate-auth-version="2">',
    `<version who="sg">${escapeXml(o.serverVersion)}</version>`,
    '<auth id="main">',
    `<title>Login</title>`,
    o.banner ? `<banner>${escapeXml(o.banner)}</banner>` : '',
    `<message>${escapeXml(o.message)}</message>`,
    o.error ? `<error id="1">${escapeXml(o.error)}</error>` : '',
    `<form method="post" action="${escapeXml(o.action)}">`,
    '<input type="text" name="username" label="Username:" />',
    '<input type="password" name="password" label="Password:" />',
    select + '</form>',
    '</auth>',
    '</config-auth>',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n')
}

/** The chosen group first: some clients submit the group separately and expect that (§2.6). */
function orderGroups<T extends {name: string}>(groups: T[], selected?: string): T[] {
  const chosen = groups.find((g) => g.name === selected)
  return chosen ? [chosen, ...groups.filter((g) => g !== chosen)] : groups
}

export interface CompleteOptions {
  sessionId: string
  token: string
  banner?: string
  serverCertSha1: string
  serverVersion: string
}

/**
 * The `complete` answer. The cookie goes both in `Set-Cookie: webvpn` (ocserv's way) and in
 * `<session-token>` (ASA's), with the same value: openconnect takes either, and which one Cisco
 * Secure Client prefers is UNCONFIRMED (auth-and-cstp.md §2.9, §8.4), so both are sent.
 * `server-cert-hash` lets Cisco clients pin the gateway certificate.
 */
export function buildComplete(o: CompleteOptions): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<config-auth client="vpn" type="complete" aggregate-auth-version="2">',
    `<version who="sg">${escapeXml(o.serverVersion)}</version>`,
    `<session-id>${escapeXml(o.sessionId)}</session-id>`,
    `<session-token>${escapeXml(o.token)}</session-token>`,
    '<auth id="success">',
    `<title>Success</title>`,
    o.banner ? `<banner>${escapeXml(o.banner)}</banner>` : '',
    '<message id="0" param1="" param2=""></message>',
    '</auth>',
    '<capabilities><crypto-supported>ssl-dhe</crypto-supported></capabilities>',
    '<config client="vpn" type="private">',
    '<vpn-base-config>',
    `<server-cert-hash>${o.serverCertSha1}</server-cert-hash>`,
    '</vpn-base-config>',
    '<opaque is-for="vpn-client"></opaque>',
    '</config>',
    '</config-auth>',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n')
}

/** The reply to a `logout` document. */
export function buildLogoutComplete(serverVersion: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<config-auth client="vpn" type="complete" aggregate-auth-version="2">',
    `<version who="sg">${escapeXml(serverVersion)}</version>`,
    '<logout-url></logout-url>',
    '</config-auth>',
    '',
  ].join('\n')
}
