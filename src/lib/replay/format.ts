/**
 * The transcript format (docs/transcript-format.md): one client's exchange with one gateway,
 * as JSON, with every secret replaced by a named placeholder. `probe --record`, `serve
 * --record` and `replay import` write it; `reader.ts` reads it back with limits; the replayer
 * fills the placeholders from live answers.
 */

export const TRANSCRIPT_FORMAT = 'anygate-transcript'
export const TRANSCRIPT_VERSION = 1

/** Limits the reader enforces before and while parsing (a transcript may come from anyone). */
export const MAX_TRANSCRIPT_BYTES = 8 * 1024 * 1024
export const MAX_STEPS = 200
export const MAX_HEADERS = 200
export const MAX_HEADER_CHARS = 16 * 1024
export const MAX_BODY_CHARS = 1024 * 1024
export const MAX_FRAMES = 64
export const MAX_RULES = 200

export type Header = [string, string]

export interface RecordedRequest {
  method: string
  path: string
  /** Names as sent, in order. */
  headers: Header[]
  /** XML kept as text; placeholders inside. */
  body: string
}

export interface RecordedResponse {
  status: number
  statusText: string
  headers: Header[]
  body: string
}

/** One CSTP frame seen after a 200 CONNECT: who sent it, its type name and payload length. */
export interface RecordedFrame {
  from: 'client' | 'gateway'
  type: string
  length: number
  /**
   * Milliseconds after the CONNECT answer, when the recorder knows (serve and replay write it;
   * probe and imported logs do not, their frames all come in the tunnel's first moment).
   */
  at?: number
}

/** The largest `at` a transcript may give a frame: a day. */
export const MAX_FRAME_AT_MS = 86_400_000

export interface HttpStep {
  kind: 'http'
  request: RecordedRequest
  response: RecordedResponse
}

export interface ConnectStep {
  kind: 'connect'
  request: RecordedRequest
  response: RecordedResponse
  frames: RecordedFrame[]
}

export type Step = HttpStep | ConnectStep

export type CompareMode = 'value' | 'shape' | 'ignore'

/**
 * How one header or XML path is compared. `header` is a header name (any case); `xml` is an
 * element or attribute path as the comparison prints it (`/config-auth/version`,
 * `/config-auth/@type`); a trailing `*` matches any suffix.
 */
export interface CompareRule {
  header?: string
  xml?: string
  compare: CompareMode
  why?: string
}

export interface Transcript {
  format: typeof TRANSCRIPT_FORMAT
  version: typeof TRANSCRIPT_VERSION
  /** `probe`, `serve` or `openconnect-log`. */
  source: string
  recordedAt: string
  /** The gateway as recorded (informational; the replay target is given on the command line). */
  gateway?: string
  /** The client's User-Agent, when known. */
  client?: string
  /** What each placeholder stood for, in words; written by the redactor. */
  placeholders: Record<string, string>
  /** Extra rules for this transcript, applied before the defaults. */
  rules: CompareRule[]
  steps: Step[]
}

/** `{{name}}` or `{{cookie:NAME}}`. */
export const PLACEHOLDER_RE = /\{\{([a-z-]+)(?::([A-Za-z0-9_.-]{1,64}))?\}\}/g

/** Every placeholder name a transcript may use, with its meaning. */
export const PLACEHOLDERS: Record<string, string> = {
  user: 'the login name (filled from --user)',
  password: 'a password or other secret form field (filled from --password-stdin)',
  url: 'the URL the client was pointed at (filled from --target)',
  host: 'the Host header value (filled from --target)',
  opaque: 'the <opaque> element of the previous answer (echoed from the live answer)',
  'session-token': 'the <session-token> of a complete answer',
  'session-id': 'the <session-id> of a complete answer',
  cookie: 'a cookie value, by cookie name (filled from the live Set-Cookie)',
  'master-secret': 'X-DTLS-Master-Secret (a fresh random value on replay)',
  'strap-pubkey': 'X-AnyConnect-STRAP-Pubkey (a fresh key on replay)',
  'strap-dh-pubkey': 'X-AnyConnect-STRAP-DH-Pubkey (a fresh key on replay)',
  'strap-verify': 'X-AnyConnect-STRAP-Verify (random bytes of the same size on replay)',
  authorization: 'an Authorization header',
  'dtls-session-id': 'X-DTLS-Session-ID of a CONNECT answer',
  'dtls-app-id': 'X-DTLS-App-ID of a CONNECT answer',
  secret: 'any other value that was redacted',
}

export function placeholder(name: string, arg?: string): string {
  return arg ? `{{${name}:${arg}}}` : `{{${name}}}`
}

export function emptyTranscript(source: string, gateway?: string): Transcript {
  return {
    format: TRANSCRIPT_FORMAT,
    version: TRANSCRIPT_VERSION,
    source,
    recordedAt: new Date().toISOString(),
    gateway,
    placeholders: {},
    rules: [],
    steps: [],
  }
}

/** A transcript as the files hold it: two-space JSON and a final newline. */
export function serializeTranscript(t: Transcript): string {
  return JSON.stringify(t, null, 2) + '\n'
}
