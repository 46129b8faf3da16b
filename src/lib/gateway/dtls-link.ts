/**
 * One tunnel's DTLS side: the handshake in progress, the established channel, the client's
 * current UDP address, liveness, and the DTLS half of the data path.
 *
 * Flow: the UDP listener parses a datagram and hands its records here. Handshake records go
 * to the pending `ServerHandshake` (a new ClientHello starts one beside the running channel,
 * §8.3); when the client's Finished verifies, the new channel replaces the old one.
 * Application records are opened by the current channel: DATA to the TUN, DPD-REQ echoed with
 * the same payload (§9.2), KEEPALIVE noted. An authenticated record from a new address moves
 * the peer there (§8.2). Outbound, `sendPacket` seals a TUN frame in its own headroom;
 * `sendPackets` seals a whole TUN batch natively and sends it with one sendmmsg (AES-GCM
 * suites, when the listener offers its fd), leaving the rest to `sendPacket`.
 *
 * Liveness as ocserv (§9.3, §9.4): a DPD-REQ after 2×DPD of silence, the channel inactive
 * after 3×DPD or when the client sends DATA over CSTP; any valid record makes it active again.
 * While inactive the tunnel sends over CSTP.
 */
import {AcType, ContentType, HandshakeType} from '../dtls/constants.js'
import type {BatchTarget, DtlsChannel, RecordDrop} from '../dtls/channel.js'
import {decodeClientHello} from '../dtls/messages/client-hello.js'
import {decodeHandshakes} from '../dtls/messages/handshake.js'
import {type DtlsOffer, dtlsDataMtu} from '../dtls/negotiate.js'
import type {DtlsRecord} from '../dtls/record.js'
import {ServerHandshake} from '../dtls/server.js'
import {describeSuite} from '../dtls/suites.js'
import {AnygateError} from '../errors.js'
import type {Logger} from '../log/logger.js'
import type {Session} from '../session/store.js'
import type {TunDevice} from '../tun/device.js'

export interface Peer {
  address: string
  port: number
  /** `address|port`, the listener's map key. */
  key: string
  /** The address as a `struct sockaddr`, made by the listener on the first native send. */
  sockaddr?: Buffer
}

/** What the listener offers a link. */
export interface DatagramPort {
  send(peer: Peer, pieces: Buffer[]): boolean
  /**
   * Routes `peer`'s records to `link`. `isOnly` (after an authenticated record or handshake):
   * the link's other addresses are forgotten, so a later client there is not sent to it.
   */
  bindPeer(link: DtlsLink, peer: Peer, isOnly?: boolean): void
  drop(code: string, peer: Peer, detail?: string): void
  /** The fd and address a native batch is sent to; undefined: send through `send`. */
  batchTarget?(peer: Peer): BatchTarget | undefined
}

export interface DtlsLinkOptions {
  offer: DtlsOffer
  session: Session
  tun: TunDevice
  port: DatagramPort
  log: Logger
  /** Seconds. */
  dpd: number
  tickMs?: number
  /** Called for every authenticated application record (the tunnel's DPD and idle timers). */
  onTraffic?: () => void
}

/** New handshakes from one link are started at most this often. */
const MIN_HANDSHAKE_INTERVAL_MS = 250
/**
 * Retransmission of our own non-final flights (RFC 6347 §4.2.4): the first after 1 s, doubled
 * each time; after the last one the handshake is left to the client, which starts a new one.
 */
const RETRANSMIT_FIRST_MS = 1000
const RETRANSMIT_MAX_TRIES = 5

export class DtlsLink {
  readonly id: Buffer
  readonly peerKeys = new Set<string>()
  readonly counters = {packetsIn: 0, packetsOut: 0, fellBack: 0, sendDropped: 0, flightsResent: 0}
  private current?: {channel: DtlsChannel; peer: Peer}
  private pending?: {hs: ServerHandshake; peer: Peer}
  private done?: {hs: ServerHandshake; peer: Peer}
  private isActive = false
  private rxSeen = false
  private lastRx = Date.now()
  private dpdSentAt = 0
  private lastHandshakeAt = 0
  private retransmit?: NodeJS.Timeout
  private isClosed = false
  private readonly ticker: NodeJS.Timeout
  /**
   * Largest IP packet sent over DTLS; larger ones go over CSTP. The offer's until a handshake
   * ends, then what the chosen suite's overhead leaves (never more than the offer's, which
   * sized the TUN and the client's tunnel).
   */
  private dataMtu: number

  constructor(private readonly o: DtlsLinkOptions) {
    this.id = o.offer.agreement.id
    this.dataMtu = o.offer.mtu
    o.session.dtls = undefined
    const tickMs = o.tickMs ?? Math.min(10_000, Math.max(500, (o.dpd * 1000) / 3))
    this.ticker = setInterval(() => this.onTick(), tickMs)
    this.ticker.unref()
  }

  get mtu(): number {
    return this.dataMtu
  }

  /** True while outbound packets go over DTLS. */
  get isUp(): boolean {
    return this.isActive && this.current !== undefined
  }

  /** Whether `records` (from an unknown address) authenticate under the current channel. */
  authenticates(records: DtlsRecord[]): boolean {
    const rec = records.find((r) => r.type === ContentType.ApplicationData)
    if (!rec || !this.current) return false
    return Buffer.isBuffer(this.current.channel.open(rec, true))
  }

  /** The records of one datagram from `peer`. Never throws. */
  onDatagram(records: DtlsRecord[], peer: Peer) {
    if (this.isClosed) return
    for (const rec of records) {
      try {
        if (rec.type === ContentType.ApplicationData) this.onApplicationData(rec, peer)
        else if (rec.type === ContentType.Handshake || rec.type === ContentType.ChangeCipherSpec) this.onHandshakeRecord(rec, peer)
        else this.o.port.drop('DTLS_UNEXPECTED_RECORD', peer, `content type ${rec.type}`)
      } catch (err) {
        if (!(err instanceof AnygateError)) throw err
        this.o.port.drop(err.code, peer, err.message)
        if (this.pending?.peer.key === peer.key) this.pending = undefined
      }
    }
  }

  // Handshake: a new ClientHello starts a handshake beside the running channel (§8.3)
  private onHandshakeRecord(rec: DtlsRecord, peer: Peer) {
    const isHello = rec.epoch === 0 && rec.type === ContentType.Handshake && rec.fragment[0] === HandshakeType.ClientHello
    if (isHello) {
      const [msg] = decodeHandshakes(rec.fragment)
      const hello = decodeClientHello(msg.body)
      for (const h of [this.pending, this.done]) {
        if (h && h.hs.clientRandom.equals(hello.random)) {
          this.sendAll(peer, h.hs.onRecords([rec]).send)
          return
        }
      }

      const now = Date.now()
      if (now - this.lastHandshakeAt < MIN_HANDSHAKE_INTERVAL_MS) {
        this.o.port.drop('DTLS_HANDSHAKE_RATE', peer)
        return
      }

      // A hello that does not parse costs no rate slot and claims no address.
      const hs = new ServerHandshake(this.o.offer.agreement, hello, msg)
      this.lastHandshakeAt = now
      this.pending = {hs, peer}
      // Beside the current address, not instead: a hello proves nothing yet (its App-ID is
      // sent in clear), so the running channel keeps its route until the handshake finishes.
      this.o.port.bindPeer(this, peer)
      this.o.log.debug('dtls handshake', {remote: `${peer.address}:${peer.port}`, suite: hs.suite.label})
      this.sendAll(peer, hs.flight)
      this.armRetransmit(hs)
      return
    }

    // The rest of a handshake: the pending one, or a repeat of the one that finished
    const h = this.pending?.peer.key === peer.key ? this.pending : this.done?.peer.key === peer.key ? this.done : undefined
    if (!h) {
      this.o.port.drop('DTLS_UNEXPECTED_RECORD', peer, 'handshake record without a handshake')
      return
    }

    // Not yet: renegotiation inside an epoch (X-DTLS-Rekey-Method: ssl); we advertise new-tunnel.
    if (rec.epoch > 1) {
      this.o.port.drop('DTLS_UNEXPECTED_RECORD', peer, 'renegotiation')
      return
    }

    const step = h.hs.onRecords([rec])
    this.sendAll(peer, step.send)
    if (step.channel && h === this.pending) this.promote(h.hs, step.channel, peer)
  }

  private promote(hs: ServerHandshake, channel: DtlsChannel, peer: Peer) {
    this.stopRetransmit()
    this.current = {channel, peer}
    this.done = this.pending
    this.pending = undefined
    this.o.port.bindPeer(this, peer, true)
    // A finished handshake is traffic: the DPD clock starts over for the new keys.
    this.lastRx = Date.now()
    this.dpdSentAt = 0
    this.setActive(true)
    const {baseMtu, remoteIsIpv6} = this.o.offer.link
    this.dataMtu = Math.min(this.o.offer.mtu, dtlsDataMtu(baseMtu, remoteIsIpv6, hs.suite))
    const cipher = describeSuite(hs.suite, hs.version)
    const remote = `${peer.address}:${peer.port}`
    this.o.session.dtls = {isUp: true, cipher, remote, mode: hs.isResumption ? 'resumption' : 'psk', since: new Date()}
    this.o.log.info('dtls up', {cipher, remote, dtlsMtu: this.mtu, native: channel.hasFastPath})
  }

  private setActive(isActive: boolean) {
    if (this.isActive === isActive) return
    this.isActive = isActive
    if (this.o.session.dtls) this.o.session.dtls.isUp = isActive && this.current !== undefined
  }

  // Data: one AnyConnect packet per record (§9.1)
  private onApplicationData(rec: DtlsRecord, peer: Peer) {
    const cur = this.current
    if (!cur) {
      this.o.port.drop('DTLS_NO_CHANNEL', peer)
      return
    }

    const pt = cur.channel.open(rec)
    if (typeof pt === 'string') {
      this.o.port.drop(pt as RecordDrop, peer)
      return
    }

    this.rxSeen = true
    this.o.onTraffic?.()
    if (!this.isActive) {
      this.setActive(true)
      this.o.log.info('dtls active', {remote: `${peer.address}:${peer.port}`})
    }

    if (peer.key !== cur.peer.key) {
      this.o.log.info('dtls peer moved', {from: `${cur.peer.address}:${cur.peer.port}`, remote: `${peer.address}:${peer.port}`})
      cur.peer = peer
      this.o.port.bindPeer(this, peer, true)
      if (this.o.session.dtls) this.o.session.dtls.remote = `${peer.address}:${peer.port}`
    }

    if (pt.length === 0) {
      this.o.port.drop('DTLS_EMPTY_RECORD', peer)
      return
    }

    switch (pt[0]) {
      case AcType.Data: {
        this.counters.packetsIn++
        this.o.session.packetsIn++
        this.o.session.bytesIn += pt.length - 1
        this.o.tun.write(pt.subarray(1))
        return
      }

      case AcType.DpdRequest: {
        // Echo with the identical payload: openconnect probes its MTU with it (§9.2, §14 item 7)
        pt[0] = AcType.DpdResponse
        this.o.port.send(cur.peer, [cur.channel.seal(ContentType.ApplicationData, pt)])
        return
      }

      case AcType.DpdResponse:
      case AcType.Keepalive:
        return
      case AcType.Disconnect:
        this.o.log.debug('dtls disconnect', {reason: pt.length > 1 ? `0x${pt[1].toString(16)}` : 'none'})
        this.setActive(false)
        return
      default:
        // Not yet: DTLS compression (lzs, oc-lz4); we send no X-DTLS-Content-Encoding (§9.6), so
        // COMPRESSED (0x08) is dropped and compressible traffic goes uncompressed.
        this.o.port.drop('DTLS_BAD_PACKET_TYPE', peer, `type 0x${pt[0].toString(16)}`)
    }
  }

  /**
   * Sends one TUN frame (`headroom` bytes, then an IP packet) over DTLS, sealed in place.
   * False when DTLS is not up or the packet is too big for it: the caller uses CSTP.
   */
  sendPacket(frame: Buffer, headroom: number): boolean {
    const cur = this.current
    if (!this.isActive || !cur || frame.length - headroom > this.mtu) return false
    const at = headroom - 1
    if (at < cur.channel.headLen) return false
    frame[at] = AcType.Data
    if (!this.o.port.send(cur.peer, cur.channel.sealInPlace(ContentType.ApplicationData, frame, at))) return false
    this.counters.packetsOut++
    this.o.session.packetsOut++
    this.o.session.bytesOut += frame.length - headroom
    return true
  }

  /**
   * Sends a TUN batch over DTLS with one native seal and sendmmsg. Returns the frames left for
   * `sendPacket` (and then CSTP): all of them when the fast path does not apply, else those
   * larger than the DTLS MTU. A datagram the socket refuses (buffer full) is dropped and
   * counted, as UDP would.
   */
  sendPackets(frames: Buffer[], headroom: number): Buffer[] {
    const cur = this.current
    if (!this.isActive || !cur || !cur.channel.hasFastPath) return frames
    const target = this.o.port.batchTarget?.(cur.peer)
    if (!target) return frames

    // Too big for DTLS: left for CSTP
    let batch = frames
    let left: Buffer[] = []
    if (frames.some((f) => f.length - headroom > this.mtu)) {
      batch = frames.filter((f) => f.length - headroom <= this.mtu)
      left = frames.filter((f) => f.length - headroom > this.mtu)
    }

    if (batch.length === 0) return left
    const sent = cur.channel.sealBatch(target, batch, headroom, ContentType.ApplicationData, AcType.Data)
    if (sent === undefined) return frames

    // Count what went
    const n = Math.max(0, sent)
    let bytes = 0
    for (let i = 0; i < n; i++) bytes += batch[i].length - headroom
    this.counters.packetsOut += n
    this.counters.sendDropped += batch.length - n
    this.o.session.packetsOut += n
    this.o.session.bytesOut += bytes
    return left
  }

  /** The client sent DATA over CSTP: it no longer uses DTLS (ocserv, §9.4). */
  cstpDataReceived() {
    if (!this.isActive) return
    this.counters.fellBack++
    this.setActive(false)
  }

  private sendAll(peer: Peer, datagrams: Buffer[]) {
    for (const d of datagrams) this.o.port.send(peer, [d])
  }

  /**
   * Resends the pending handshake's flight until the client answers it (RFC 6347 §4.2.4). Our
   * first flight is never the last one: after the PSK ServerHelloDone and after the resumption
   * Finished (the server finishes first, §4) the client still owes its flight, and if that is
   * lost a client already sending data would wait for a timer we never ran. Our final flight
   * (the PSK Finished) is only resent when the client repeats its own, from `done`.
   */
  private armRetransmit(hs: ServerHandshake) {
    this.stopRetransmit()
    const fire = (tries: number) => {
      const pending = this.pending
      if (this.isClosed || pending?.hs !== hs || hs.isDone) return
      this.sendAll(pending.peer, hs.flight)
      this.counters.flightsResent++
      if (tries < RETRANSMIT_MAX_TRIES) schedule(tries + 1)
      else this.retransmit = undefined
    }

    const schedule = (tries: number) => {
      const timer = setTimeout(() => fire(tries), RETRANSMIT_FIRST_MS * 2 ** (tries - 1))
      timer.unref()
      this.retransmit = timer
    }

    schedule(1)
  }

  private stopRetransmit() {
    clearTimeout(this.retransmit)
    this.retransmit = undefined
  }

  private onTick() {
    const now = Date.now()
    if (this.rxSeen) {
      this.lastRx = now
      this.rxSeen = false
    }

    const cur = this.current
    if (!cur || !this.isActive) return
    const silentMs = now - this.lastRx
    const dpdMs = this.o.dpd * 1000
    // As the CSTP tunnel: inactive only after a DPD-REQ went unanswered for a DPD, never on
    // silence alone (a delayed ticker could otherwise skip the request).
    const unanswered = this.dpdSentAt > this.lastRx && now - this.dpdSentAt >= dpdMs
    if (silentMs >= 3 * dpdMs && unanswered) {
      this.setActive(false)
      this.o.log.info('dtls inactive', {reason: 'dpd timeout', remote: `${cur.peer.address}:${cur.peer.port}`})
      return
    }

    if (silentMs >= 2 * dpdMs && now - this.dpdSentAt >= dpdMs) {
      this.dpdSentAt = now
      this.o.port.send(cur.peer, [cur.channel.seal(ContentType.ApplicationData, Buffer.from([AcType.DpdRequest]))])
    }
  }

  close() {
    if (this.isClosed) return
    this.isClosed = true
    clearInterval(this.ticker)
    this.stopRetransmit()
    if (this.current || this.done) {
      const {packetsIn, packetsOut, fellBack, sendDropped} = this.counters
      this.o.log.info('dtls down', {packetsIn, packetsOut, fellBack, dropped: sendDropped || undefined})
    }

    this.current = undefined
    this.pending = undefined
    this.done = undefined
    if (this.o.session.dtls) this.o.session.dtls.isUp = false
  }
}

