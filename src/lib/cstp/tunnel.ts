/**
 * One CSTP tunnel: the loop between a client's TLS socket and its session's TUN interface.
 *
 * Flow: TUN → `tunOnPackets` writes the CSTP header into each frame's headroom and sends the
 * frame as one TLS write (one record, auth-and-cstp.md §4.3). TLS → `CstpDecoder` → `onFrame`:
 * DATA goes to the TUN, DPD-REQ is echoed with the same payload, KEEPALIVE is noted, DISCONNECT
 * ends the tunnel. A periodic tick turns "something arrived" flags into timestamps and runs the
 * DPD, idle and session timeouts, so the per-packet cost is a flag store.
 *
 * The tunnel owns the socket and the TUN device and closes both; what becomes of the session
 * (cookie kept or invalidated) is the caller's, told through `onClosed`. An optional `tap`
 * (`serve --record`) is shown each frame's type and length until it declines more, then
 * dropped, so the data path pays one property check while it lasts and nothing after.
 */
import type {TLSSocket} from 'node:tls'

import {CSTP_HEADER_LEN, CSTP_TYPE_OFFSET, CstpType, DisconnectReason, cstpTypeName} from './constants.js'
import {CstpDecoder} from './decoder.js'
import {encodeCstpFrame, encodeDisconnect, writeCstpHeader} from './encoder.js'
import {ProtocolError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import type {Session, SessionTunnel} from '../session/store.js'
import type {TunDevice} from '../tun/device.js'

/** Above this many bytes queued on the TLS socket, packets from the TUN are dropped. */
export const SEND_QUEUE_LIMIT = 1024 * 1024

export interface TunnelCounters {
  /** Packets from the TUN dropped because the client's socket was backed up. */
  sendDropped: number
}

export interface CstpTunnelOptions {
  socket: TLSSocket
  session: Session
  tun: TunDevice
  mtu: number
  /** Seconds. */
  dpd: number
  idleTimeout: number
  /** ms since epoch when the session must end, or undefined. */
  sessionDeadline?: number
  log: Logger
  /**
   * Called once when the tunnel has ended. `invalidate` says the cookie must die with it (user
   * logout, admin disconnect, session timeout).
   */
  onClosed: (reason: string, invalidate: boolean) => void
  /** Check interval in ms; default derived from the DPD. */
  tickMs?: number
  /** The session's DTLS side, when the CONNECT agreed one (dtls-and-datapath.md §9.4). */
  dtls?: DatagramPath
  /** Shown the first CSTP frames both ways (`serve --record`); never their payloads. */
  tap?: FrameTap
}

/**
 * Watches the first frames of a tunnel. Called synchronously, in wire order per direction,
 * for every CSTP frame the client sent that decoded and every frame the gateway wrote to the
 * socket; frames that go over DTLS are not shown. Returning false detaches it for good.
 */
export interface FrameTap {
  frame(from: 'client' | 'gateway', type: number, length: number): boolean
}

/** What the tunnel needs of a UDP channel: packets go there first, CSTP when it says no. */
export interface DatagramPath {
  /** Sends one TUN frame sealed in its headroom; false: use CSTP for this one. */
  sendPacket(frame: Buffer, headroom: number): boolean
  /** Sends what it can of a batch at once; returns the frames left for `sendPacket`/CSTP. */
  sendPackets?(frames: Buffer[], headroom: number): Buffer[]
  /** The client sent DATA over CSTP, so it stopped using the datagram channel. */
  cstpDataReceived(): void
  close(): void
}

export class CstpTunnel implements SessionTunnel {
  readonly counters: TunnelCounters = {sendDropped: 0}
  private readonly decoder: CstpDecoder
  private readonly ticker: NodeJS.Timeout
  private isClosed = false
  private rxSeen = false
  private dataSeen = false
  private lastRx = Date.now()
  private lastData = Date.now()
  private dpdSentAt = 0
  private tap?: FrameTap

  constructor(private readonly o: CstpTunnelOptions) {
    this.tap = o.tap
    this.decoder = new CstpDecoder(o.mtu, (type, payload) => this.onFrame(type, payload))
    const tickMs = o.tickMs ?? Math.min(10_000, Math.max(1000, (o.dpd * 1000) / 3))
    this.ticker = setInterval(() => this.onTick(), tickMs)
    this.ticker.unref()
  }

  /** Starts both directions. `head` is any bytes the HTTP parser read past the CONNECT. */
  start(head?: Buffer) {
    const {socket, tun} = this.o
    // Node's TLS layer merges a writev batch into one record; one frame per record is
    // required (auth-and-cstp.md §4.3), so queued frames must go out one write at a time.
    ;(socket as unknown as {_writev: unknown})._writev = null
    socket.setNoDelay(true)

    socket.on('data', (chunk: Buffer) => this.socketOnData(chunk))
    socket.on('error', (err) => this.close(`socket error: ${err.message}`, false, false))
    socket.on('close', () => this.close('connection closed', false, false))
    tun.start(
      (frames, headroom) => this.tunOnPackets(frames, headroom),
      (err) => {
        this.o.log.error('tun failed', {tun: tun.name, reason: err.message})
        this.close('tun failed', true, false)
      },
    )
    if (head && head.length > 0) this.socketOnData(head)
  }

  /** Traffic arrived over DTLS: it counts for the DPD and idle timers as CSTP traffic does. */
  dataReceived() {
    this.rxSeen = true
    this.dataSeen = true
  }

  get closed(): boolean {
    return this.isClosed
  }

  private socketOnData(chunk: Buffer) {
    this.rxSeen = true
    try {
      this.decoder.push(chunk)
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err
      this.o.log.warn('bad cstp frame', {code: err.code, reason: err.message})
      this.close(`protocol error: ${err.code}`, true, false)
    }
  }

  private onFrame(type: number, payload: Buffer) {
    if (this.isClosed) return
    if (this.tap) this.tapFrame('client', type, payload.length)

    switch (type) {
      case CstpType.Data: {
        this.dataSeen = true
        this.o.dtls?.cstpDataReceived()
        this.o.session.packetsIn++
        this.o.session.bytesIn += payload.length
        this.o.tun.write(payload)
        return
      }

      case CstpType.DpdRequest:
        this.send(encodeCstpFrame(CstpType.DpdResponse, payload))
        return
      case CstpType.DpdResponse:
      case CstpType.Keepalive:
        return
      case CstpType.Disconnect:
        this.onClientDisconnect(payload)
        return
      case CstpType.Compressed:
        // Not yet: compression (lzs, oc-lz4); we never offer it, so a compressed frame is a
        // protocol error, as in ocserv.
        this.o.log.warn('bad cstp frame', {code: 'CSTP_NOT_NEGOTIATED', reason: 'compressed frame without compression'})
        this.close('protocol error: CSTP_NOT_NEGOTIATED', true, false)
        return
      default:
        this.o.log.debug('cstp frame ignored', {type: cstpTypeName(type), bytes: payload.length})
    }
  }

  /** auth-and-cstp.md §4.5: 0xb0 and 0x70 end the session; anything else keeps the cookie. */
  private onClientDisconnect(payload: Buffer) {
    const reason = payload.length > 0 ? payload[0] : undefined
    const text = payload.length > 1 ? payload.toString('latin1', 1).replace(/[^\x20-\x7e]/g, '?') : ''
    const isLogout = reason === DisconnectReason.UserLogout || reason === DisconnectReason.ClientError
    const hex = reason === undefined ? 'none' : `0x${reason.toString(16)}`
    this.close(`client disconnect ${hex}${text ? ` '${text}'` : ''}`, false, isLogout)
  }

  private tunOnPackets(frames: Buffer[], headroom: number) {
    const {socket, session, dtls} = this.o
    // CSTP uses the last 8 headroom bytes; DTLS seals in the whole headroom
    const cstpAt = headroom - CSTP_HEADER_LEN
    if (this.isClosed) return
    this.dataSeen = true

    const rest = dtls?.sendPackets ? dtls.sendPackets(frames, headroom) : frames
    for (const whole of rest) {
      if (dtls?.sendPacket(whole, headroom)) continue
      const frame = cstpAt === 0 ? whole : whole.subarray(cstpAt)
      if (socket.writableLength > SEND_QUEUE_LIMIT) {
        this.counters.sendDropped++
        continue
      }

      const len = frame.length - CSTP_HEADER_LEN
      writeCstpHeader(frame, CstpType.Data, len)
      socket.write(frame)
      session.packetsOut++
      session.bytesOut += len
      if (this.tap) this.tapFrame('gateway', CstpType.Data, len)
    }
  }

  private send(frame: Buffer) {
    if (this.isClosed || !this.o.socket.writable) return
    this.o.socket.write(frame)
    if (this.tap) this.tapFrame('gateway', frame[CSTP_TYPE_OFFSET], frame.length - CSTP_HEADER_LEN)
  }

  private tapFrame(from: 'client' | 'gateway', type: number, length: number) {
    if (!this.tap!.frame(from, type, length)) this.tap = undefined
  }

  // Timers: DPD as ocserv (auth-and-cstp.md §4.4): a DPD-REQ after 2×DPD of silence, dead after 3×DPD.
  private onTick() {
    const now = Date.now()
    if (this.rxSeen) {
      this.lastRx = now
      this.rxSeen = false
    }

    if (this.dataSeen) {
      this.lastData = now
      this.dataSeen = false
    }

    const {dpd, idleTimeout, sessionDeadline} = this.o
    if (sessionDeadline !== undefined && now >= sessionDeadline) {
      this.close('session timeout', true, true)
      return
    }

    // Dead only when a DPD-REQ went out at least one DPD ago and nothing came back since. The
    // ticker is coarse (a third of the DPD, at least 1 s) and a busy host delays it, so silence
    // alone could pass 3×DPD before any request was sent; a peer is never declared dead unasked.
    const silentMs = now - this.lastRx
    const dpdMs = dpd * 1000
    const unanswered = this.dpdSentAt > this.lastRx && now - this.dpdSentAt >= dpdMs
    if (silentMs >= 3 * dpdMs && unanswered) {
      this.close('dpd timeout', false, false)
      return
    }

    if (idleTimeout > 0 && now - this.lastData > idleTimeout * 1000) {
      this.close('idle timeout', true, false)
      return
    }

    if (silentMs >= 2 * dpdMs && now - this.dpdSentAt >= dpdMs) {
      this.dpdSentAt = now
      this.send(encodeCstpFrame(CstpType.DpdRequest))
    }
  }

  /**
   * Ends the tunnel once: optionally tells the client (an empty DISCONNECT, as ocserv), closes
   * the socket and the TUN, logs "tunnel down", and reports to the owner.
   */
  close(reason: string, notifyClient: boolean, invalidate = notifyClient) {
    if (this.isClosed) return
    this.isClosed = true
    clearInterval(this.ticker)
    const {socket, tun, session, log} = this.o

    if (notifyClient && socket.writable) {
      const bye = encodeDisconnect()
      socket.write(bye)
      if (this.tap) this.tapFrame('gateway', CstpType.Disconnect, bye.length - CSTP_HEADER_LEN)
      socket.end()
      socket.setTimeout(5000, () => socket.destroy())
    } else {
      socket.destroy()
    }

    tun.close()
    this.o.dtls?.close()
    log.info('tunnel down', {
      reason,
      vpnAddr: session.ipv4 ?? session.ipv6,
      tun: tun.name,
      bytesIn: session.bytesIn,
      bytesOut: session.bytesOut,
      dropped: this.counters.sendDropped || undefined,
    })
    this.o.onClosed(reason, invalidate)
  }
}
