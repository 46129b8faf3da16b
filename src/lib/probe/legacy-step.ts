/**
 * The probe's legacy form login, as openconnect `--no-xmlpost` logs in (auth-and-cstp.md
 * §2.13): GET / without X-Aggregate-Auth, then each form the gateway sends posted back
 * form-encoded to its action until `complete` sets the webvpn cookie. ocserv asks for the
 * username, then the password (with a webvpncontext cookie); anygate asks for both at once.
 *
 * It runs on its own `HttpClient` with the legacy header set: a second client, beside the one
 * `--as` names. Its CONNECT and DISCONNECT are the tunnel step's (run.ts).
 */
import {type ServerAuthDoc, credentialValues, encodeForm, formFields, parseServerXml} from '../client/auth-xml.js'
import type {HttpClient, HttpResponse} from '../client/http-client.js'

/** Forms answered before giving up (ocserv needs two; a few more for a group or a banner). */
const MAX_FORM_ROUNDS = 5

export interface LegacyForm {
  /** GET / answered 200 with a login form. */
  isServed: boolean
  doc?: ServerAuthDoc
  /** Why not, when not served. */
  error?: string
}

/** GET / as the legacy client sends it (a Content-Length of 0 included). */
export async function getLegacyForm(client: HttpClient): Promise<LegacyForm> {
  let res: HttpResponse
  try {
    res = await client.request('GET', '/')
  } catch (err) {
    return {isServed: false, error: (err as Error).message}
  }

  const doc = res.status === 200 ? safeParse(res.body) : undefined
  if (doc?.type === 'auth-request' && doc.form) return {isServed: true, doc}
  return {isServed: false, error: res.status === 200 ? 'no login form' : `status ${res.status} ${res.statusText}`}
}

export interface LegacyLoginResult {
  /** The field names posted in each round; values are never kept. */
  rounds: string[][]
  isComplete: boolean
  /** The session cookie; for the CONNECT only, never reported. */
  cookie?: string
  cookieFrom?: 'Set-Cookie' | 'session-token'
  error?: string
}

/** Answers the forms from `first` on until `complete`, or until the gateway refuses. */
export async function legacyLogin(
  client: HttpClient,
  first: ServerAuthDoc,
  creds: {user: string; password: string; group?: string},
): Promise<LegacyLoginResult> {
  const rounds: string[][] = []
  let doc = first
  let passwordSent = false

  for (let round = 0; doc.type === 'auth-request'; round++) {
    if (passwordSent && doc.error) return {rounds, isComplete: false, error: doc.error}
    if (!doc.form) return {rounds, isComplete: false, error: doc.error ?? 'an auth-request without a form'}
    if (round === MAX_FORM_ROUNDS) {
      return {rounds, isComplete: false, error: `no complete after ${MAX_FORM_ROUNDS} forms`}
    }

    const fields = formFields(doc, credentialValues(doc, creds.user, creds.password), creds.group)
    rounds.push(fields.map(([name]) => name))
    passwordSent ||= doc.form.inputs.some((i) => i.type === 'password')

    let res: HttpResponse
    try {
      res = await client.request('POST', doc.form.action, encodeForm(fields))
    } catch (err) {
      return {rounds, isComplete: false, error: (err as Error).message}
    }

    const next = res.status === 200 ? safeParse(res.body) : undefined
    if (!next) {
      const why = res.status === 200 ? 'an answer that is not the login XML' : `status ${res.status} ${res.statusText}`
      return {rounds, isComplete: false, error: why}
    }

    doc = next
  }

  if (doc.type !== 'complete') return {rounds, isComplete: false, error: `an answer of type ${doc.type || '(none)'}`}
  const fromHeader = client.cookies.get('webvpn')
  if (fromHeader) return {rounds, isComplete: true, cookie: fromHeader, cookieFrom: 'Set-Cookie'}
  if (doc.sessionToken) return {rounds, isComplete: true, cookie: doc.sessionToken, cookieFrom: 'session-token'}
  return {rounds, isComplete: true}
}

function safeParse(body: string): ServerAuthDoc | undefined {
  try {
    return parseServerXml(body)
  } catch {
    return undefined
  }
}
