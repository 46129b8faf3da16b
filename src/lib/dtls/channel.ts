/**
 * An established DTLS connection's record protection: keys, epochs, the write sequence and the
 * read epoch's replay window. Owned by one `DtlsLink`; no I/O here.
 */
import {DTLS_RECORD_HEADER_LEN} from './constants.js'
import {type DirectionKeys, type OpenFailure, explicitLen, openRecord, sealRecord, sealRecordWhole} from './crypto.js'
import type {DtlsRecord} from './record.js'
import {ReplayWindow} from './replay-window.js'
import type {CipherSuite} from './suites.js'

export type RecordDrop = OpenFailure | 'DTLS_WRONG_EPOCH' | 'DTLS_REPLAYED' | 'DTLS_WRONG_VERSION'

/** The 48-bit sequence space; a new handshake is needed before it runs out (§10). */
const MAX_SEQ = 2 ** 48 - 1

export class DtlsChannel {
  private readonly window = new ReplayWindow()
  private writeSeq: number
  /** Bytes in front of the type byte a sealed-in-place record needs. */
  readonly headLen: number

  constructor(
    readonly suite: CipherSuite,
    readonly version: number,
    private readonly readKeys: DirectionKeys,
    private readonly writeKeys: DirectionKeys,
    readonly readEpoch: number,
    readonly writeEpoch: number,
    firstWriteSeq: number,
  ) {
    this.writeSeq = firstWriteSeq
    this.headLen = DTLS_RECORD_HEADER_LEN + explicitLen(suite)
  }

  /** True when the records of `rec`'s epoch are ours to open. */
  isOurs(rec: DtlsRecord): boolean {
    return rec.epoch === this.readEpoch
  }

  /**
   * Authenticates and decrypts one record; the replay window moves only on success. With
   * `dryRun` nothing moves (roaming checks, §8.3).
   */
  open(rec: DtlsRecord, dryRun = false): Buffer | RecordDrop {
    if (rec.epoch !== this.readEpoch) return 'DTLS_WRONG_EPOCH'
    if (rec.version !== this.version) return 'DTLS_WRONG_VERSION'
    if (!this.window.check(rec.seq)) return 'DTLS_REPLAYED'
    const pt = openRecord(this.suite, this.version, this.readKeys, rec.type, rec.epoch, rec.seq, rec.fragment)
    if (typeof pt === 'string') return pt
    if (!dryRun) this.window.accept(rec.seq)
    return pt
  }

  private nextSeq(): number {
    if (this.writeSeq >= MAX_SEQ) throw new RangeError('dtls write sequence exhausted')
    return this.writeSeq++
  }

  /** A whole record in a fresh buffer (handshake, DPD answers). */
  seal(type: number, plaintext: Buffer, iv?: Buffer): Buffer {
    return sealRecordWhole(this.suite, this.version, this.writeKeys, type, this.writeEpoch, this.nextSeq(), plaintext, iv)
  }

  /**
   * Seals `frame.subarray(at)` (type byte first) with the header written into the
   * `headLen` bytes before `at`, which the caller keeps free. Returns the pieces to send.
   */
  sealInPlace(type: number, frame: Buffer, at: number): Buffer[] {
    const head = frame.subarray(at - this.headLen, at)
    return sealRecord(this.suite, this.version, this.writeKeys, type, this.writeEpoch, this.nextSeq(), head, frame.subarray(at))
  }
}
