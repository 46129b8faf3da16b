/**
 * The UDP socket of the DTLS channel, on the same address and port as TLS (issue 4), and the
 * demultiplexing of dtls-and-datapath.md §8.3: one `dgram` socket, sessions found in user
 * space. A ClientHello is routed by the id in its session_id (or extension 48018), whoever sent
 * it; other records by the sender's address and port; a record from an unknown address goes
 * to the session whose keys authenticate it (same IP first), which then moves there. Never by
 * source address alone.
 *
 * Every bad datagram is dropped, counted by code and logged at debug; nothing a peer sends
 * escapes `socketOnMessage`.
 */
import dgram from 'node:dgram'
import net from 'node:net'

import type {DatagramPort, DtlsLink, Peer} from './dtls-link.js'
import type {BatchTarget} from '../dtls/channel.js'
import {ContentType} from '../dtls/constants.js'
import {nativeDatapath} from '../dtls/native.js'
import {peekHelloSessionId} from '../dtls/messages/client-hello.js'
import {parseRecords} from '../dtls/record.js'
import {AnygateError} from '../errors.js'
import type {Logger} from '../log/logger.js'

/**
 * Unknown-address records are tried against at most this many sessions (roaming, §8.3).
 * Not yet: an index for roaming clients; past 32 sessions a client that changed its IP (not just
 * its port) may not be found and waits for its DPD and a new handshake.
 */
const MAX_ROAM_CANDIDATES = 32
/** Datagrams queued in the socket above which outbound packets are dropped. */
const SEND_QUEUE_LIMIT = 4096

export class DtlsListener implements DatagramPort {
  readonly drops = new Map<string, number>()
  private readonly socket: dgram.Socket
  private readonly byId = new Map<string, DtlsLink>()
  private readonly byPeer = new Map<string, DtlsLink>()
  sendDropped = 0
  /** The socket's fd once bound (Linux), for native batch sends; -1 when unknown. */
  private fd = -1

  constructor(
    private readonly host: string,
    private readonly log: Logger,
  ) {
    const type = net.isIPv6(host) ? 'udp6' : 'udp4'
    this.socket = dgram.createSocket({type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20})
    this.socket.on('message', (msg, rinfo) => this.socketOnMessage(msg, rinfo))
    this.socket.on('error', (err) => this.log.debug('udp error', {reason: err.message}))
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject)
      this.socket.bind(port, this.host, () => {
        this.socket.off('error', reject)
        this.fd = socketFd(this.socket)
        resolve()
      })
    })
  }

  /** The bound UDP port. */
  get port(): number {
    return this.socket.address().port
  }

  add(link: DtlsLink) {
    this.byId.set(link.id.toString('hex'), link)
  }

  remove(link: DtlsLink) {
    link.close()
    this.byId.delete(link.id.toString('hex'))
    for (const key of link.peerKeys) if (this.byPeer.get(key) === link) this.byPeer.delete(key)
    link.peerKeys.clear()
  }

  bindPeer(link: DtlsLink, peer: Peer, isOnly = false) {
    if (isOnly) {
      for (const key of link.peerKeys) if (key !== peer.key && this.byPeer.get(key) === link) this.byPeer.delete(key)
      link.peerKeys.clear()
    }

    // An address another link held (a client that left it) now belongs to this one alone.
    const previous = this.byPeer.get(peer.key)
    if (previous && previous !== link) previous.peerKeys.delete(peer.key)
    this.byPeer.set(peer.key, link)
    link.peerKeys.add(peer.key)
  }

  send(peer: Peer, pieces: Buffer[]): boolean {
    if (this.socket.getSendQueueCount() > SEND_QUEUE_LIMIT) {
      this.sendDropped++
      return false
    }

    this.socket.send(pieces, peer.port, peer.address)
    return true
  }

  /**
   * The fd and `peer` as a sockaddr, for a native batch send. Undefined when the addon is off
   * or libuv still holds queued datagrams, which a direct send would overtake.
   */
  batchTarget(peer: Peer): BatchTarget | undefined {
    const addon = nativeDatapath()
    if (!addon || this.fd < 0 || this.socket.getSendQueueCount() > 0) return undefined
    peer.sockaddr ??= addon.sockaddr(peer.address, peer.port)
    return {fd: this.fd, sockaddr: peer.sockaddr}
  }

  drop(code: string, peer: Peer, detail?: string) {
    this.drops.set(code, (this.drops.get(code) ?? 0) + 1)
    this.log.debug('dtls drop', {code, remote: `${peer.address}:${peer.port}`, reason: detail})
  }

  /** Drops counted since start, by code. */
  dropCounts(): Record<string, number> {
    return Object.fromEntries(this.drops)
  }

  private socketOnMessage(msg: Buffer, rinfo: dgram.RemoteInfo) {
    const peer: Peer = {address: rinfo.address, port: rinfo.port, key: `${rinfo.address}|${rinfo.port}`}
    try {
      this.route(msg, peer)
    } catch (err) {
      if (!(err instanceof AnygateError)) {
        this.log.error('dtls datagram failed', {remote: `${peer.address}:${peer.port}`, reason: (err as Error).message})
        return
      }

      this.drop(err.code, peer, err.message)
    }
  }

  private route(msg: Buffer, peer: Peer) {
    const records = parseRecords(msg)
    if (records.length === 0) {
      this.drop('DTLS_RECORD_TOO_SHORT', peer, 'empty datagram')
      return
    }

    // A ClientHello names its session (§8.1)
    const first = records[0]
    if (first.type === ContentType.Handshake && first.epoch === 0) {
      const id = peekHelloSessionId(msg)
      if (id) {
        const link = this.byId.get(id.toString('hex'))
        if (link) link.onDatagram(records, peer)
        else this.drop('DTLS_UNKNOWN_SESSION', peer)
        return
      }
    }

    const known = this.byPeer.get(peer.key)
    if (known) {
      known.onDatagram(records, peer)
      return
    }

    // Unknown address: the session whose keys authenticate the record (§8.2, §8.3)
    const links = [...this.byId.values()]
    const sameIp = links.filter((l) => [...l.peerKeys].some((k) => k.startsWith(`${peer.address}|`)))
    const candidates = [...sameIp, ...links.filter((l) => !sameIp.includes(l))].slice(0, MAX_ROAM_CANDIDATES)
    for (const link of candidates) {
      if (link.authenticates(records)) {
        link.onDatagram(records, peer)
        return
      }
    }

    this.drop('DTLS_UNKNOWN_PEER', peer)
  }

  close() {
    for (const link of this.byId.values()) this.remove(link)
    this.socket.close()
  }
}

/**
 * The fd under a bound dgram socket, read from its internal state rather than the deprecated
 * `_handle` getter (DEP0112); -1 when Node keeps it elsewhere (then batches go through `send`).
 */
function socketFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')
  if (!state) return -1
  const internal = (socket as unknown as Record<symbol, {handle?: {fd?: unknown}} | undefined>)[state]
  const fd = internal?.handle?.fd
  return typeof fd === 'number' ? fd : -1
}
