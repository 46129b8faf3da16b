/**
 * The control protocol between a running `serve` and the `session` and `status` commands:
 * HTTP/1.1 over a UNIX socket, JSON bodies, every path under a version prefix. The wire format
 * is documented for people (and curl) in `docs/control-protocol.md`; these types are its
 * contract in code, shared by `control/server.ts` and `control/client.ts`.
 */

/** The version in every path; a change that breaks a reader gets a new one. */
export const CONTROL_PROTOCOL_VERSION = 1
export const CONTROL_PREFIX = `/v${CONTROL_PROTOCOL_VERSION}`

/** Largest request body the server reads; every request we define has none. */
export const MAX_CONTROL_BODY_BYTES = 4096

/** One session, as `GET /v1/sessions` lists it and `session list --json` prints it. */
export interface SessionInfo {
  /** Random per session, never derived from the cookie. */
  id: string
  user: string
  /** null when the user logged in without a group. */
  group: string | null
  /** `connected` while a tunnel is up; `idle` between login and CONNECT or after a drop. */
  state: 'connected' | 'idle'
  remoteAddress: string
  ipv4: string | null
  ipv6: string | null
  /** The TUN interface of the current or last tunnel. */
  device: string | null
  userAgent: string
  /** When the session began (login), ISO 8601 UTC. */
  connectedAt: string
  /** Bytes and packets of IP from the client (In) and to it (Out), over CSTP and DTLS. */
  bytesIn: number
  bytesOut: number
  packetsIn: number
  packetsOut: number
  /** Whether the DTLS channel is up. */
  dtls: boolean
  /** The DTLS cipher when the layer reports one. */
  dtlsCipher: string | null
  /** The tunnel MTU of the current or last tunnel. */
  mtu: number | null
}

export interface PoolUse {
  cidr: string
  /** Addresses leased to sessions. */
  used: number
  /** Addresses clients can get (the gateway's own is not counted). */
  size: number
}

/** `GET /v1/status`. */
export interface StatusInfo {
  version: string
  protocol: number
  pid: number
  /** ISO 8601 UTC. */
  startedAt: string
  uptimeSeconds: number
  listen: Array<{transport: 'tcp' | 'udp'; host: string; port: number}>
  controlSocket: string
  sessions: {total: number; connected: number}
  pools: {ipv4: PoolUse; ipv6: PoolUse | null}
  /** Addresses with a failed-login score, and how many of them are banned. */
  bans: {scored: number; banned: number}
  /**
   * The DTLS port's dropped datagrams since start, by code (`DTLS_BAD_MAC`, `DTLS_REPLAYED`, …),
   * and outbound packets dropped because the socket's queue was full; null with DTLS off.
   */
  dtls: {drops: Record<string, number>; sendDropped: number} | null
}

/** One address of `GET /v1/bans`: its failed-login score and whether it is banned. */
export type {BanInfo} from '../http-auth/ban.js'

/** The answer to `POST /v1/bans/{address}/remove`. */
export interface BanRemoveResult {
  removed: string
}

/** The answer to both disconnect requests. */
export interface DisconnectResult {
  disconnected: SessionInfo[]
}

/** Every non-2xx answer carries this body. */
export interface ControlErrorBody {
  error: {code: string; message: string}
}
