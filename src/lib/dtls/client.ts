/**
 * The client side of the AnyConnect DTLS handshakes, for `probe`: the mirror of `server.ts`,
 * a state machine over records with no sockets and no timers.
 *
 * Flow, PSK-NEGOTIATE: ClientHello (session_id = App-ID) → ServerHello + ServerHelloDone →
 * ClientKeyExchange("psk") + CCS + Finished → CCS + Finished → established.
 * Flow, resumption (DTLS 1.2 and 0.9): ClientHello (session_id = X-DTLS-Session-ID, the one
 * agreed suite) → ServerHello + CCS + Finished → CCS + Finished → established; the master
 * secret is the X-DTLS-Master-Secret the client sent (dtls-and-datapath.md §4.1).
 * A HelloVerifyRequest is answered in DTLS 1.2 (the hash restarts at the second hello, RFC
 * 6347 §4.2.1) and refused in DTLS 0.9, where clients disagree on the hash (§6).
 */
import crypto from 'node:crypto'

import {DtlsChannel} from './channel.js'
import {ContentType, DtlsVersion, EXT_RENEGOTIATION_INFO, HandshakeType, RANDOM_LEN} from './constants.js'
import {type KeyBlock, keyBlock, masterSecret, openRecord, prfKind, pskPremaster, sealRecordWhole, transcriptHash, verifyData, writeRecordHeader} from './crypto.js'
import {encodeChangeCipherSpec, isChangeCipherSpec} from './messages/change-cipher-spec.js'
import {encodeClientHello} from './messages/client-hello.js'
import {encodePskClientKeyExchange} from './messages/client-key-exchange.js'
import {isFinishedValid} from './messages/finished.js'
import {decodeHandshakes, encodeHandshake} from './messages/handshake.js'
import {decodeHelloVerifyRequest, decodeServerHello} from './messages/server-hello.js'
import {type DtlsRecord, dtlsError} from './record.js'
import {type CipherSuite, PSK_SUITE_IDS, SUITES} from './suites.js'

export type ClientAgreement =
  | {mode: 'psk'; appId: Buffer; psk: Buffer}
  | {mode: 'resume'; sessionId: Buffer; masterSecret: Buffer; suite: number; version: DtlsVersion}

export interface ClientStep {
  send: Buffer[]
  channel?: DtlsChannel
}

const PSK_IDENTITY = Buffer.from('psk')

export class ClientHandshake {
  private readonly random = crypto.randomBytes(RANDOM_LEN)
  private readonly version: DtlsVersion
  private transcript: Buffer[] = []
  private lastFlight: Buffer[] = []
  private writeSeq0 = 0
  private msgSeq = 0
  private suite?: CipherSuite
  private serverRandom?: Buffer
  private keys?: KeyBlock
  private master?: Buffer
  private hasServerCcs = false
  private channel?: DtlsChannel

  constructor(private readonly agreement: ClientAgreement) {
    this.version = agreement.mode === 'psk' ? DtlsVersion.Dtls12 : agreement.version
    this.lastFlight = [this.hello(Buffer.alloc(0))]
  }

  /** The flight to send now, and again when no answer comes. */
  get flight(): Buffer[] {
    return this.lastFlight
  }

  get suiteName(): string | undefined {
    return this.suite?.label
  }

  private hello(cookie: Buffer): Buffer {
    const a = this.agreement
    const body = encodeClientHello({
      clientVersion: this.version,
      random: this.random,
      sessionId: a.mode === 'psk' ? a.appId : a.sessionId,
      cookie,
      cipherSuites: a.mode === 'psk' ? [...PSK_SUITE_IDS] : [a.suite],
      extensions: new Map(this.version === DtlsVersion.Dtls09 ? [] : [[EXT_RENEGOTIATION_INFO, Buffer.from([0])]]),
    })
    return this.plainRecord(ContentType.Handshake, this.message(HandshakeType.ClientHello, body))
  }

  private message(type: number, body: Buffer): Buffer {
    const msg = encodeHandshake(type, this.msgSeq++, body)
    this.addToTranscript(msg)
    return msg
  }

  // DTLS 1.2 hashes whole messages; DTLS 0.9 bodies only (§5.1).
  private addToTranscript(message: Buffer) {
    this.transcript.push(this.version === DtlsVersion.Dtls09 ? message.subarray(12) : message)
  }

  private plainRecord(type: number, body: Buffer): Buffer {
    const out = Buffer.allocUnsafe(13 + body.length)
    // openconnect sends its first hello with record version DTLS 1.0 (§3.2)
    const recordVersion = this.version === DtlsVersion.Dtls12 ? DtlsVersion.Dtls10 : this.version
    writeRecordHeader(out, 0, type, this.writeSeq0 === 0 ? recordVersion : this.version, 0, this.writeSeq0++, body.length)
    body.copy(out, 13)
    return out
  }

  /** Feeds the records of one server datagram. Throws ProtocolError (dtls) on a bad flight. */
  onRecords(records: DtlsRecord[]): ClientStep {
    const send: Buffer[] = []
    for (const rec of records) {
      if (this.channel) break
      if (rec.epoch === 0 && rec.type === ContentType.Handshake) {
        for (const m of decodeHandshakes(rec.fragment)) this.onPlain(m.msgType, m.body, Buffer.from(m.raw), send)
        continue
      }

      if (rec.epoch === 0 && rec.type === ContentType.ChangeCipherSpec) {
        if (!isChangeCipherSpec(rec.fragment, this.version)) throw dtlsError('DTLS_BAD_CCS', 'malformed change cipher spec')
        this.hasServerCcs = true
        continue
      }

      if (rec.epoch === 1 && rec.type === ContentType.Handshake && this.hasServerCcs && this.keys) this.onServerFinished(rec, send)
    }

    return {send, channel: this.channel}
  }

  private onPlain(type: number, body: Buffer, raw: Buffer, send: Buffer[]) {
    if (type === HandshakeType.HelloVerifyRequest) {
      if (this.version === DtlsVersion.Dtls09) throw dtlsError('DTLS_UNEXPECTED_MESSAGE', 'hello verify request in DTLS 0.9')
      this.transcript = []
      this.lastFlight = [this.hello(decodeHelloVerifyRequest(body))]
      send.push(...this.lastFlight)
      return
    }

    if (type === HandshakeType.ServerHello) {
      if (this.serverRandom) return
      this.onServerHello(body, raw)
      return
    }

    if (type === HandshakeType.ServerHelloDone && this.agreement.mode === 'psk' && !this.keys) {
      this.addToTranscript(raw)
      this.lastFlight = [this.pskKeyExchange()]
      send.push(...this.lastFlight)
      return
    }

    throw dtlsError('DTLS_UNEXPECTED_MESSAGE', `handshake message ${type} out of order`)
  }

  private onServerHello(body: Buffer, raw: Buffer) {
    const sh = decodeServerHello(body)
    const a = this.agreement
    if (sh.serverVersion !== this.version) throw dtlsError('DTLS_BAD_VERSION', `server chose version 0x${sh.serverVersion.toString(16)}`)
    const offered = a.mode === 'psk' ? PSK_SUITE_IDS.includes(sh.cipherSuite) : sh.cipherSuite === a.suite
    if (!offered || !SUITES[sh.cipherSuite]) throw dtlsError('DTLS_NO_SHARED_CIPHER', `server chose suite 0x${sh.cipherSuite.toString(16)}`)
    if (a.mode === 'resume' && !sh.sessionId.equals(a.sessionId)) {
      throw dtlsError('DTLS_RESUME_MISMATCH', 'server did not resume the agreed session')
    }

    this.addToTranscript(raw)
    this.suite = SUITES[sh.cipherSuite]
    this.serverRandom = Buffer.from(sh.random)
    if (a.mode === 'resume') {
      this.master = a.masterSecret
      this.keys = keyBlock(prfKind(this.suite, this.version), this.suite, this.master, this.random, this.serverRandom)
    }
  }

  /** ClientKeyExchange, CCS and Finished, in one datagram. */
  private pskKeyExchange(): Buffer {
    const a = this.agreement as Extract<ClientAgreement, {mode: 'psk'}>
    const kind = prfKind(this.suite!, this.version)
    const cke = this.plainRecord(ContentType.Handshake, this.message(HandshakeType.ClientKeyExchange, encodePskClientKeyExchange(PSK_IDENTITY)))
    this.master = masterSecret(kind, pskPremaster(a.psk), this.random, this.serverRandom!)
    this.keys = keyBlock(kind, this.suite!, this.master, this.random, this.serverRandom!)
    return Buffer.concat([cke, ...this.ccsAndFinished()])
  }

  private ccsAndFinished(): Buffer[] {
    const kind = prfKind(this.suite!, this.version)
    const ccs = this.plainRecord(ContentType.ChangeCipherSpec, encodeChangeCipherSpec(this.version, this.msgSeq))
    if (this.version === DtlsVersion.Dtls09) this.msgSeq++
    const vd = verifyData(kind, this.master!, 'client finished', transcriptHash(kind, this.transcript))
    const fin = this.message(HandshakeType.Finished, vd)
    const iv = this.suite!.macLen > 0 ? crypto.randomBytes(this.suite!.ivLen) : undefined
    return [ccs, sealRecordWhole(this.suite!, this.version, this.keys!.client, ContentType.Handshake, 1, 0, fin, iv)]
  }

  private onServerFinished(rec: DtlsRecord, send: Buffer[]) {
    const suite = this.suite!
    const kind = prfKind(suite, this.version)
    const pt = openRecord(suite, this.version, this.keys!.server, rec.type, rec.epoch, rec.seq, rec.fragment)
    if (typeof pt === 'string') throw dtlsError(pt, 'server finished record does not authenticate')
    const [fin] = decodeHandshakes(pt)
    if (!fin || fin.msgType !== HandshakeType.Finished) throw dtlsError('DTLS_UNEXPECTED_MESSAGE', 'expected finished')
    const expected = verifyData(kind, this.master!, 'server finished', transcriptHash(kind, this.transcript))
    if (!isFinishedValid(fin.body, expected)) throw dtlsError('DTLS_BAD_FINISHED', 'server verify_data does not match')

    if (this.agreement.mode === 'resume') {
      // The server finished first; ours follows
      this.addToTranscript(Buffer.from(fin.raw))
      this.lastFlight = [Buffer.concat(this.ccsAndFinished())]
      send.push(...this.lastFlight)
    }

    this.channel = new DtlsChannel(suite, this.version, this.keys!.server, this.keys!.client, 1, 1, 1)
    this.channel.open(rec)
  }
}
