/**
 * The login exchange, free of sockets: a request (method, path, headers, body) in, a response
 * (status, headers, body) out. The gateway layer owns the HTTP transport.
 *
 * Flow (auth-and-cstp.md §2): `init` POST or GET → `auth-request` form with username and
 * password (and the group list where groups are configured) → `auth-reply` → `complete` with the
 * webvpn cookie, or the form again with "Login failed." until MAX_PASSWORD_TRIES, then 401.
 * A login context cookie (`webvpncontext`) counts the tries across requests and connections.
 */
import crypto from 'node:crypto'

import {
  CLIENT_CONFIG_COOKIE,
  CONTEXT_COOKIE,
  EXPIRED_COOKIE_ATTRS,
  FORM_ACTION,
  MAX_PASSWORD_TRIES,
  MSG_ENTER_CREDENTIALS,
  MSG_LOGIN_FAILED,
  MSG_SELECT_GROUP_DENIED,
  WEBVPN_COOKIE,
} from './constants.js'
import {getCookie, setCookie} from './cookies.js'
import {
  type ClientAuthMessage,
  buildAuthRequest,
  buildComplete,
  buildLogoutComplete,
  looksLikeXml,
  parseClientForm,
  parseClientXml,
} from './xml.js'
import type {GroupConfig} from '../config/schema.js'
import type {Logger} from '../log/logger.js'
import type {Session, SessionStore} from '../session/store.js'

export type VerifyResult =
  | {ok: true; groups: string[]}
  | {ok: false; reason: 'unknown' | 'locked' | 'bad-password' | 'no-password'}

export interface PasswordChecker {
  verify(user: string, password: string): Promise<VerifyResult>
}

export interface AuthRequest {
  method: string
  path: string
  cookieHeader?: string
  userAgent: string
  remote: string
  body: string
}

export interface AuthResponse {
  status: number
  statusText?: string
  headers: [string, string][]
  body: string
  /** Close the connection after answering (final failure). */
  close?: boolean
}

interface LoginContext {
  tries: number
  expiresAt: number
}

const MAX_CONTEXTS = 10_000
const MAX_USERNAME_LEN = 256
const MAX_PASSWORD_LEN = 1024

export interface LoginOptions {
  users: PasswordChecker
  sessions: SessionStore
  groups: GroupConfig[]
  banner?: string
  serverVersion: string
  /** SHA-1 of the server certificate DER, upper-case hex (auth-and-cstp.md §2.9). */
  serverCertSha1: string
  authTimeoutMs: number
  log: Logger
  /** Told of each failed login's source address (ban scoring); true when it is now banned. */
  onLoginFailed?: (remote: string) => boolean
}

export class LoginHandler {
  private readonly contexts = new Map<string, LoginContext>()

  constructor(private readonly o: LoginOptions) {}

  /** Offers `groups` and `banner` to the logins that follow (serve's SIGHUP). */
  setOffer(groups: GroupConfig[], banner: string | undefined) {
    this.o.groups = groups
    this.o.banner = banner
  }

  /** The certificate hash sent at login from now on (serve's SIGHUP with a new certificate). */
  setServerCertificate(sha1: string) {
    this.o.serverCertSha1 = sha1
  }

  /** Answers one login request. Throws ProtocolError (status 400) for malformed bodies. */
  async handle(req: AuthRequest): Promise<AuthResponse> {
    if (req.method === 'GET') return this.form(undefined)
    const msg = looksLikeXml(req.body) ? parseClientXml(req.body) : parseClientForm(req.body)

    if (msg.type === 'logout') return this.logout(req)
    const hasCredentials = msg.username !== undefined && msg.password !== undefined
    if (msg.type === 'init' || !hasCredentials) return this.form(msg.groupSelect)
    return this.login(req, msg)
  }

  private async login(req: AuthRequest, msg: ClientAuthMessage): Promise<AuthResponse> {
    const user = (msg.username ?? '').slice(0, MAX_USERNAME_LEN)
    const fields = {user, remote: req.remote}
    const ctxId = getCookie(req.cookieHeader, CONTEXT_COOKIE)
    const ctx = this.context(ctxId)

    const result =
      (msg.password ?? '').length > MAX_PASSWORD_LEN || user === ''
        ? ({ok: false, reason: 'bad-password'} as const)
        : await this.o.users.verify(user, msg.password ?? '')

    const group = result.ok ? this.chooseGroup(msg.groupSelect, result.groups) : undefined
    if (result.ok && group !== null) return this.success(req, user, group, ctxId)

    const reason = result.ok ? 'not-in-group' : result.reason
    // Tries are counted per login context and, across contexts, per address (ban scoring in
    // the gateway), so dropping the webvpncontext cookie does not reset the latter.
    ctx.entry.tries++
    this.o.log.info('login failed', {...fields, reason, tries: ctx.entry.tries})
    const isBanned = this.o.onLoginFailed?.(req.remote) ?? false
    if (isBanned || ctx.entry.tries >= MAX_PASSWORD_TRIES) {
      this.contexts.delete(ctx.id)
      return {status: 401, statusText: 'Authentication failed', headers: [], body: '', close: true}
    }

    const error = reason === 'not-in-group' ? MSG_SELECT_GROUP_DENIED : MSG_LOGIN_FAILED
    return this.formResponse(msg.groupSelect, error, ctx.id)
  }

  /**
   * The group the session gets: the selected one (by name or by label, as some AnyConnect
   * versions send the label) when the user is a member, else the user's first group. null
   * means the user picked a group they are not in (ocserv refuses that too, §2.6).
   */
  private chooseGroup(selected: string | undefined, userGroups: string[]): string | undefined | null {
    if (this.o.groups.length === 0) return userGroups[0]
    const match = this.o.groups.find((g) => g.name === selected || g.label === selected)
    // DEFAULT (the form's first option), nothing, or a name we do not offer: the user's own.
    if (!selected || !match) return userGroups[0]

    if (userGroups.length === 0) return undefined
    return userGroups.includes(match.name) ? match.name : null
  }

  private success(req: AuthRequest, user: string, group: string | undefined, ctxId?: string) {
    if (ctxId) this.contexts.delete(ctxId)
    const {session, cookie} = this.o.sessions.create(user, group, req.remote, req.userAgent)
    this.o.log.info('login', {session: session.id, user, group, remote: req.remote})

    const body = buildComplete({
      sessionId: String(parseInt(session.id.slice(0, 8), 16)),
      token: cookie,
      banner: this.o.banner,
      serverCertSha1: this.o.serverCertSha1,
      serverVersion: this.o.serverVersion,
    })
    const headers: [string, string][] = [
      ['Set-Cookie', setCookie(CONTEXT_COOKIE, '', EXPIRED_COOKIE_ATTRS)],
      ['Set-Cookie', setCookie(WEBVPN_COOKIE, cookie)],
      ['Set-Cookie', setCookie(CLIENT_CONFIG_COOKIE, '', EXPIRED_COOKIE_ATTRS)],
      [
        'Set-Cookie',
        setCookie(CLIENT_CONFIG_COOKIE, `bu:/&p:t&iu:1/&sh:${this.o.serverCertSha1}`, 'path=/; Secure; HttpOnly'),
      ],
    ]
    return {status: 200, headers, body}
  }

  /** A `logout` document ends the session its token names (AnyLink's handling; §2.16). */
  private logout(req: AuthRequest): AuthResponse {
    const cookie = getCookie(req.cookieHeader, WEBVPN_COOKIE)
    const session: Session | undefined = cookie ? this.o.sessions.findByCookie(cookie) : undefined
    if (session) {
      this.o.log.info('logout', {session: session.id, user: session.user, remote: req.remote})
      session.tunnel?.close('logout', true)
      this.o.sessions.invalidate(session)
    }

    return {status: 200, headers: [], body: buildLogoutComplete(this.o.serverVersion)}
  }

  private form(selectedGroup: string | undefined): AuthResponse {
    const ctx = this.context(undefined)
    return this.formResponse(selectedGroup, undefined, ctx.id)
  }

  private formResponse(selectedGroup: string | undefined, error: string | undefined, ctxId: string) {
    const body = buildAuthRequest({
      message: MSG_ENTER_CREDENTIALS,
      error,
      banner: this.o.banner,
      groups: this.o.groups,
      selectedGroup,
      action: FORM_ACTION,
      serverVersion: this.o.serverVersion,
    })
    const maxAge = Math.ceil(this.o.authTimeoutMs / 1000)
    const headers: [string, string][] = [
      ['Set-Cookie', setCookie(CONTEXT_COOKIE, ctxId, `Max-Age=${maxAge}; Secure; HttpOnly`)],
    ]
    return {status: 200, headers, body}
  }

  /** The login context named by the cookie, or a new one. */
  private context(id: string | undefined): {id: string; entry: LoginContext} {
    const now = Date.now()
    const known = id ? this.contexts.get(id) : undefined
    if (id && known && known.expiresAt > now) return {id, entry: known}

    if (this.contexts.size >= MAX_CONTEXTS) this.sweep(now)
    const fresh = crypto.randomBytes(24).toString('base64url')
    const entry = {tries: 0, expiresAt: now + this.o.authTimeoutMs}
    this.contexts.set(fresh, entry)
    return {id: fresh, entry}
  }

  private sweep(now: number) {
    for (const [k, v] of this.contexts) if (v.expiresAt <= now) this.contexts.delete(k)
    // Still full: drop the oldest (Map keeps insertion order).
    for (const k of this.contexts.keys()) {
      if (this.contexts.size < MAX_CONTEXTS) break
      this.contexts.delete(k)
    }
  }
}
