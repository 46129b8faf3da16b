/**
 * The probe's DTLS step: the handshake the gateway offered at CONNECT (PSK-NEGOTIATE or a
 * legacy resumption), over UDP to the offered port, then one DPD round trip over DTLS.
 * Retransmits its flight every second until the timeout (RFC 6347 §4.2.4).
 */
import crypto from 'node:crypto'
import dgram from 'node:dgram'
import net from 'node:net'
import type {TLSSocket} from 'node:tls'

import {type ClientAgreement, ClientHandshake} from '../dtls/client.js'
import type {DtlsChannel} from '../dtls/channel.js'
import {ContentType, DtlsVersion} from '../dtls/constants.js'
import {parseRecords} from '../dtls/record.js'
import {DTLS12_NAMES, DTLS_NAMES, PSK_NEGOTIATE} from '../dtls/suites.js'
import {CstpType} from '../cstp/constants.js'

const RETRANSMIT_MS = 1000

export interface DtlsResult {
  established: boolean
  cipher?: string
  handshakeMs?: number
  dpdRttMs?: number
  error?: string
}

/** What the CONNECT answer offered, turned into an agreement; undefined when we cannot run it. */
export function agreementFrom(
  headers: [string, string][],
  sentMasterSecret: string,
  tls: TLSSocket,
): ClientAgreement | string {
  const one = (n: string) => headers.find(([k]) => k === n)?.[1]
  const appId = one('X-DTLS-App-ID')
  const sessionId = one('X-DTLS-Session-ID')
  const legacy = one('X-DTLS-CipherSuite')
  const dtls12 = one('X-DTLS12-CipherSuite')

  if (appId && legacy === PSK_NEGOTIATE) {
    if (!/^([0-9a-fA-F]{2}){1,32}$/.test(appId)) return `bad X-DTLS-App-ID ${appId.slice(0, 70)}`
    // @ts-expect-error The exporter takes no context in PSK-NEGOTIATE; Node's types want one.
    const psk: Buffer = tls.exportKeyingMaterial(32, 'EXPORTER-openconnect-psk')
    return {mode: 'psk', appId: Buffer.from(appId, 'hex'), psk}
  }

  if (!sessionId || !/^[0-9a-fA-F]{64}$/.test(sessionId)) return 'no usable X-DTLS-Session-ID'
  const masterSecret = Buffer.from(sentMasterSecret, 'hex')
  if (dtls12 && DTLS12_NAMES[dtls12] !== undefined) {
    return {mode: 'resume', sessionId: Buffer.from(sessionId, 'hex'), masterSecret, suite: DTLS12_NAMES[dtls12], version: DtlsVersion.Dtls12}
  }

  const named = legacy ? DTLS_NAMES[legacy] : undefined
  if (!named) return `unknown DTLS cipher ${dtls12 ?? legacy ?? '(none)'}`
  return {mode: 'resume', sessionId: Buffer.from(sessionId, 'hex'), masterSecret, suite: named.suite, version: named.version}
}

export async function runDtls(host: string, port: number, agreement: ClientAgreement, timeoutMs: number): Promise<DtlsResult> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4')
  const started = performance.now()
  const hs = new ClientHandshake(agreement)
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.connect(port, host, () => resolve())
    })
    const channel = await handshake(socket, hs, timeoutMs)
    const handshakeMs = performance.now() - started
    const rtt = await dpd(socket, channel, timeoutMs).then(
      (ms) => ({dpdRttMs: ms}),
      (err: Error) => ({error: err.message}),
    )
    return {established: true, cipher: hs.suiteName, handshakeMs, ...rtt}
  } catch (err) {
    return {established: false, cipher: hs.suiteName, error: (err as Error).message}
  } finally {
    socket.close()
  }
}

function handshake(socket: dgram.Socket, hs: ClientHandshake, timeoutMs: number): Promise<DtlsChannel> {
  return new Promise((resolve, reject) => {
    const send = (datagrams: Buffer[]) => datagrams.forEach((d) => socket.send(d))
    const resend = setInterval(() => send(hs.flight), RETRANSMIT_MS)
    const timer = setTimeout(() => done(new Error(`no DTLS handshake within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (msg: Buffer) => {
      try {
        const step = hs.onRecords(parseRecords(msg))
        send(step.send)
        if (step.channel) done(undefined, step.channel)
      } catch (err) {
        done(err as Error)
      }
    }

    function done(err?: Error, channel?: DtlsChannel) {
      clearInterval(resend)
      clearTimeout(timer)
      socket.off('message', onMessage)
      if (err) reject(err)
      else resolve(channel!)
    }

    socket.on('message', onMessage)
    socket.on('error', (err) => done(err))
    send(hs.flight)
  })
}

/** A DPD request with a random payload; the answer must echo it (dtls-and-datapath.md §9.2). */
function dpd(socket: dgram.Socket, channel: DtlsChannel, timeoutMs: number): Promise<number> {
  const payload = Buffer.concat([Buffer.from([CstpType.DpdRequest]), crypto.randomBytes(16)])
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no DTLS DPD answer within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (msg: Buffer) => {
      try {
        for (const rec of parseRecords(msg)) {
          if (rec.type !== ContentType.ApplicationData) continue
          const pt = channel.open(rec)
          if (typeof pt === 'string') continue
          if (pt[0] === CstpType.DpdResponse && pt.subarray(1).equals(payload.subarray(1))) done(undefined, performance.now() - started)
        }
      } catch {
        // a malformed datagram is not the answer; keep waiting
      }
    }

    function done(err?: Error, ms?: number) {
      clearTimeout(timer)
      socket.off('message', onMessage)
      if (err) reject(err)
      else resolve(ms!)
    }

    socket.on('message', onMessage)
    socket.send(channel.seal(ContentType.ApplicationData, payload))
  })
}
