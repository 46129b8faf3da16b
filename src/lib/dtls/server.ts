/**
 * The server side of the two DTLS handshakes AnyConnect clients run (dtls-and-datapath.md
 * §3, §4, §5), as a state machine over records: no sockets, no timers.
 *
 * Flow, PSK-NEGOTIATE (full handshake, RFC 4279): ClientHello → ServerHello + ServerHelloDone
 * → ClientKeyExchange(identity) + CCS + Finished → verify, CCS + Finished → established.
 * Flow, resumption (DTLS 1.2 and 0.9): ClientHello naming the agreed session id and suite →
 * ServerHello + CCS + Finished (the server finishes first) → CCS + Finished → established.
 * The master secret is the client's X-DTLS-Master-Secret as-is (§4.1, §14 item 1).
 *
 * A repeated client flight makes the state machine hand back its last flight unchanged
 * (RFC 6347 §4.2.4); it never sends a HelloVerifyRequest (§6).
 */
import crypto from 'node:crypto'

import {DtlsChannel} from './channel.js'
import {
  ContentType,
  DtlsVersion,
  EXT_RECORD_SIZE_LIMIT,
  EXT_RENEGOTIATION_INFO,
  HandshakeType,
  RANDOM_LEN,
  RECORD_SIZE_LIMIT,
  SCSV_RENEGOTIATION,
} from './constants.js'
import {
  type KeyBlock,
  keyBlock,
  masterSecret,
  openRecord,
  prfKind,
  pskPremaster,
  sealRecordWhole,
  transcriptHash,
  verifyData,
  writeRecordHeader,
} from './crypto.js'
import {encodeChangeCipherSpec, isChangeCipherSpec} from './messages/change-cipher-spec.js'
import type {ClientHello} from './messages/client-hello.js'
import {decodePskClientKeyExchange} from './messages/client-key-exchange.js'
import {isFinishedValid} from './messages/finished.js'
import {type HandshakeMessage, decodeHandshakes, encodeHandshake} from './messages/handshake.js'
import {encodeServerHello, encodeServerHelloDone} from './messages/server-hello.js'
import {type DtlsRecord, dtlsError} from './record.js'
import {type CipherSuite, SUITES} from './suites.js'

/** What the CONNECT exchange agreed for this session (§2). */
export type DtlsAgreement =
  | {mode: 'psk'; id: Buffer; psk: Buffer; suites: number[]}
  | {mode: 'resume'; id: Buffer; masterSecret: Buffer; suite: number; version: DtlsVersion}

export interface HandshakeOptions {
  /** Random bytes (server random, session id, CBC IVs); tests replaying captures inject them. */
  random?: (n: number) => Buffer
  /**
   * Answer a client's record_size_limit with ours (default true, as ocserv). The
   * `[prototype]` of §4.3 sent a ServerHello without extensions, which openconnect also takes.
   */
  echoRecordSizeLimit?: boolean
}

export interface HandshakeStep {
  /** Datagrams to send, in order. */
  send: Buffer[]
  /** Set once the client's Finished verified. */
  channel?: DtlsChannel
}

export class ServerHandshake {
  readonly clientRandom: Buffer
  readonly serverRandom: Buffer
  readonly suite: CipherSuite
  readonly version: number
  private readonly random: (n: number) => Buffer
  private readonly transcript: Buffer[] = []
  private readonly kind
  private lastFlight: Buffer[] = []
  private writeSeq0 = 0
  private serverMsgSeq = 0
  private keys?: KeyBlock
  private master?: Buffer
  private hasClientCcs = false
  private channel?: DtlsChannel
  private readonly helloRaw: Buffer
  private readonly echoLimit: boolean

  /**
   * Checks the ClientHello against the agreement and builds the first server flight. Throws
   * `ProtocolError` (dtls) when the hello cannot be answered: `DTLS_NO_SHARED_CIPHER`,
   * `DTLS_RESUME_MISMATCH`, `DTLS_BAD_VERSION`.
   */
  constructor(
    private readonly agreement: DtlsAgreement,
    hello: ClientHello,
    helloMsg: HandshakeMessage,
    opts: HandshakeOptions = {},
  ) {
    this.random = opts.random ?? crypto.randomBytes
    this.echoLimit = opts.echoRecordSizeLimit ?? true
    this.clientRandom = Buffer.from(hello.random)
    this.helloRaw = Buffer.from(helloMsg.raw)
    if (agreement.mode === 'psk') {
      // openconnect offers DTLS 1.2 in client_version (§3.2); lower numbers are newer versions
      if (hello.clientVersion > DtlsVersion.Dtls12) {
        // Not yet: PSK over DTLS 1.0; openconnect 9 always offers 1.2.
        throw dtlsError('DTLS_BAD_VERSION', `client_version 0x${hello.clientVersion.toString(16)} is below DTLS 1.2`)
      }

      const id = hello.cipherSuites.find((s) => agreement.suites.includes(s))
      if (id === undefined) throw dtlsError('DTLS_NO_SHARED_CIPHER', 'no psk suite in common')
      this.suite = SUITES[id]
      this.version = DtlsVersion.Dtls12
    } else {
      if (!hello.sessionId.equals(agreement.id)) throw dtlsError('DTLS_RESUME_MISMATCH', 'session id is not the agreed one')
      if (!hello.cipherSuites.includes(agreement.suite)) {
        throw dtlsError('DTLS_RESUME_MISMATCH', `suite 0x${agreement.suite.toString(16)} not offered`)
      }

      if (hello.clientVersion !== agreement.version) {
        throw dtlsError('DTLS_BAD_VERSION', `client_version 0x${hello.clientVersion.toString(16)} is not the agreed one`)
      }

      this.suite = SUITES[agreement.suite]
      this.version = agreement.version
    }

    this.kind = prfKind(this.suite, this.version)
    this.serverRandom = this.random(RANDOM_LEN)
    this.addToTranscript(this.helloRaw)
    this.lastFlight = agreement.mode === 'psk' ? this.pskFirstFlight(hello) : this.resumeFlight(hello)
  }

  /** The flight to resend when the client repeats its ClientHello. */
  get flight(): Buffer[] {
    return this.lastFlight
  }

  get isDone(): boolean {
    return this.channel !== undefined
  }

  get isResumption(): boolean {
    return this.agreement.mode === 'resume'
  }

  // DTLS 1.2 hashes whole messages with their 12-byte headers; DTLS 0.9 bodies only (§5.1).
  private addToTranscript(message: Buffer) {
    this.transcript.push(this.version === DtlsVersion.Dtls09 ? message.subarray(12) : message)
  }

  private plainRecord(type: number, body: Buffer): Buffer {
    const out = Buffer.allocUnsafe(13 + body.length)
    writeRecordHeader(out, 0, type, this.version, 0, this.writeSeq0++, body.length)
    body.copy(out, 13)
    return out
  }

  private serverMessage(type: number, body: Buffer): Buffer {
    const msg = encodeHandshake(type, this.serverMsgSeq++, body)
    this.addToTranscript(msg)
    return this.plainRecord(ContentType.Handshake, msg)
  }

  private pskFirstFlight(hello: ClientHello): Buffer[] {
    const exts: [number, Buffer][] = []
    // §3.3: echo an empty renegotiation_info; never echo EMS, EtM or tickets
    if (hello.extensions.has(EXT_RENEGOTIATION_INFO) || hello.cipherSuites.includes(SCSV_RENEGOTIATION)) {
      exts.push([EXT_RENEGOTIATION_INFO, Buffer.from([0])])
    }

    if (this.echoLimit && hello.extensions.has(EXT_RECORD_SIZE_LIMIT)) exts.push([EXT_RECORD_SIZE_LIMIT, u16(RECORD_SIZE_LIMIT)])
    const sh = encodeServerHello({
      serverVersion: this.version,
      random: this.serverRandom,
      // §3.3: a fresh session id, never the App-ID (that would claim a resumption)
      sessionId: this.random(32),
      cipherSuite: this.suite.id,
      extensions: exts,
    })
    const records = [
      this.serverMessage(HandshakeType.ServerHello, sh),
      this.serverMessage(HandshakeType.ServerHelloDone, encodeServerHelloDone()),
    ]
    return [Buffer.concat(records)]
  }

  private resumeFlight(hello: ClientHello): Buffer[] {
    const agreement = this.agreement as Extract<DtlsAgreement, {mode: 'resume'}>
    // As ocserv: record_size_limit only, no renegotiation_info in resumption (§4.1, §14 item 8)
    const exts: [number, Buffer][] = this.echoLimit && hello.extensions.has(EXT_RECORD_SIZE_LIMIT) ? [[EXT_RECORD_SIZE_LIMIT, u16(RECORD_SIZE_LIMIT)]] : []
    const sh = this.serverMessage(
      HandshakeType.ServerHello,
      encodeServerHello({
        serverVersion: this.version,
        random: this.serverRandom,
        sessionId: agreement.id,
        cipherSuite: this.suite.id,
        extensions: exts,
      }),
    )
    this.master = agreement.masterSecret
    this.keys = keyBlock(this.kind, this.suite, this.master, this.clientRandom, this.serverRandom)
    return [Buffer.concat([sh, ...this.ccsAndFinished()])]
  }

  /** The server's CCS (epoch 0) and Finished (epoch 1, seq 0). */
  private ccsAndFinished(): Buffer[] {
    const ccs = this.plainRecord(ContentType.ChangeCipherSpec, encodeChangeCipherSpec(this.version, this.serverMsgSeq))
    if (this.version === DtlsVersion.Dtls09) this.serverMsgSeq++
    const vd = verifyData(this.kind, this.master!, 'server finished', transcriptHash(this.kind, this.transcript))
    const fin = encodeHandshake(HandshakeType.Finished, this.serverMsgSeq++, vd)
    this.addToTranscript(fin)
    const sealed = sealRecordWhole(this.suite, this.version, this.keys!.server, ContentType.Handshake, 1, 0, fin, this.cbcIv())
    return [ccs, sealed]
  }

  private cbcIv(): Buffer | undefined {
    return this.suite.macLen > 0 ? this.random(this.suite.ivLen) : undefined
  }

  /**
   * Feeds the records of one client datagram that belong to this handshake (epoch 0
   * handshake/CCS, epoch 1 handshake). Throws `ProtocolError` (dtls) on a bad Finished or
   * key exchange; the caller then drops the handshake.
   */
  onRecords(records: DtlsRecord[]): HandshakeStep {
    const send: Buffer[] = []
    for (const rec of records) {
      // Step: a repeated ClientHello means our flight was lost
      if (rec.epoch === 0 && rec.type === ContentType.Handshake) {
        for (const m of decodeHandshakes(rec.fragment)) this.onPlainMessage(m, send)
        continue
      }

      if (rec.epoch === 0 && rec.type === ContentType.ChangeCipherSpec) {
        if (!isChangeCipherSpec(rec.fragment, this.version)) throw dtlsError('DTLS_BAD_CCS', 'malformed change cipher spec')
        if (!this.keys) throw dtlsError('DTLS_UNEXPECTED_MESSAGE', 'change cipher spec before key exchange')
        this.hasClientCcs = true
        continue
      }

      if (rec.epoch === 1 && rec.type === ContentType.Handshake && this.hasClientCcs && !this.channel) {
        this.onClientFinished(rec, send)
      }
    }

    return {send, channel: this.channel}
  }

  private onPlainMessage(m: HandshakeMessage, send: Buffer[]) {
    if (m.msgType === HandshakeType.ClientHello) {
      if (m.raw.equals(this.helloRaw)) send.push(...this.lastFlight)
      return
    }

    if (m.msgType !== HandshakeType.ClientKeyExchange || this.agreement.mode !== 'psk') {
      throw dtlsError('DTLS_UNEXPECTED_MESSAGE', `handshake message ${m.msgType} out of order`)
    }

    if (this.keys) {
      // The client repeats its last flight: our CCS + Finished were lost
      if (this.channel) send.push(...this.lastFlight)
      return
    }

    decodePskClientKeyExchange(m.body) // the identity is always "psk" and not checked (§3.1)
    this.addToTranscript(Buffer.from(m.raw))
    this.master = masterSecret(this.kind, pskPremaster(this.agreement.psk), this.clientRandom, this.serverRandom)
    this.keys = keyBlock(this.kind, this.suite, this.master, this.clientRandom, this.serverRandom)
  }

  private onClientFinished(rec: DtlsRecord, send: Buffer[]) {
    const keys = this.keys!
    const pt = openRecord(this.suite, this.version, keys.client, rec.type, rec.epoch, rec.seq, rec.fragment)
    if (typeof pt === 'string') throw dtlsError(pt, 'client finished record does not authenticate')
    const [fin] = decodeHandshakes(pt)
    if (!fin || fin.msgType !== HandshakeType.Finished) throw dtlsError('DTLS_UNEXPECTED_MESSAGE', 'expected finished')
    const expected = verifyData(this.kind, this.master!, 'client finished', transcriptHash(this.kind, this.transcript))
    if (!isFinishedValid(fin.body, expected)) throw dtlsError('DTLS_BAD_FINISHED', 'client verify_data does not match')
    this.addToTranscript(Buffer.from(fin.raw))

    if (this.agreement.mode === 'psk') {
      this.lastFlight = [Buffer.concat(this.ccsAndFinished())]
      send.push(...this.lastFlight)
    }

    // Our Finished took epoch 1 seq 0; the client's Finished is marked seen in the window
    this.channel = new DtlsChannel(this.suite, this.version, keys.client, keys.server, 1, 1, 1)
    this.channel.open(rec)
  }
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2)
  b.writeUInt16BE(n)
  return b
}
