/**
 * An established DTLS connection's record protection: keys, epochs, the write sequence and the
 * read epoch's replay window. Owned by one `DtlsLink`.
 *
 * For AES-GCM suites, when the datapath addon is loaded (`./native.ts`), records are opened
 * and batches sealed natively with one EVP context per direction; `sealBatch` also sends, on
 * the fd it is given. The write sequence stays here: a batch reserves one number per frame.
 * Every other suite, and every dry-run open, uses `node:crypto` (`./crypto.ts`).
 */
import {DTLS_RECORD_HEADER_LEN, GCM_EXPLICIT_NONCE_LEN} from './constants.js'
import {type DirectionKeys, type OpenFailure, explicitLen, openRecord, sealRecord, sealRecordWhole} from './crypto.js'
import type {DtlsRecord} from './record.js'
import {type AeadHandle, type DatapathAddon, OPEN_TOO_SHORT, nativeDatapath} from './native.js'
import {ReplayWindow} from './replay-window.js'
import type {CipherSuite} from './suites.js'

/** Where a sealed batch goes: the UDP socket's fd and the peer as a `struct sockaddr`. */
export interface BatchTarget {
  fd: number
  sockaddr: Buffer
}

interface NativeAead {
  addon: DatapathAddon
  sealer: AeadHandle
  opener: AeadHandle
}

// Not yet: ChaCha20-Poly1305, CBC and DTLS 0.9 in the native path; they still cost a new
// node:crypto cipher and one dgram send per packet (about half the GCM suites' throughput).
const isGcm = (suite: CipherSuite) => suite.cipher === 'aes-128-gcm' || suite.cipher === 'aes-256-gcm'

export type RecordDrop = OpenFailure | 'DTLS_WRONG_EPOCH' | 'DTLS_REPLAYED' | 'DTLS_WRONG_VERSION'

/** The 48-bit sequence space; a new handshake is needed before it runs out (§10). */
const MAX_SEQ = 2 ** 48 - 1

export class DtlsChannel {
  private readonly window = new ReplayWindow()
  private writeSeq: number
  private readonly fast?: NativeAead
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
    const addon = isGcm(suite) ? nativeDatapath() : undefined
    if (addon) {
      const sealer = addon.aeadNew(writeKeys.key, writeKeys.iv, true)
      this.fast = {addon, sealer, opener: addon.aeadNew(readKeys.key, readKeys.iv, false)}
    }
  }

  /** True when `sealBatch` can be used (an AES-GCM suite and the addon loaded). */
  get hasFastPath(): boolean {
    return this.fast !== undefined
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
    if (this.fast && !dryRun) return this.openNative(this.fast, rec)
    const pt = openRecord(this.suite, this.version, this.readKeys, rec.type, rec.epoch, rec.seq, rec.fragment)
    if (typeof pt === 'string') return pt
    if (!dryRun) this.window.accept(rec.seq)
    return pt
  }

  // In place: a failed open leaves the fragment garbled, so dry runs stay on node:crypto.
  // Not yet: recvmmsg and TUN writes from C; each inbound datagram still costs one JS
  // callback, one addon call and one write syscall, so client→server gains less than TX.
  private openNative(fast: NativeAead, rec: DtlsRecord): Buffer | RecordDrop {
    const n = fast.addon.open(fast.opener, rec.fragment, rec.type, this.version, rec.epoch, rec.seq)
    if (n === OPEN_TOO_SHORT) return 'DTLS_RECORD_TOO_SHORT'
    if (n < 0) return 'DTLS_BAD_MAC'
    this.window.accept(rec.seq)
    return rec.fragment.subarray(GCM_EXPLICIT_NONCE_LEN, GCM_EXPLICIT_NONCE_LEN + n)
  }

  /**
   * Seals every frame (`headroom` bytes, then an IP packet) as one record of type `contentType`
   * whose plaintext is `acType` then the packet, and sends each as a datagram to `target`.
   * Returns the datagrams sent (or -errno when none was), or undefined when this channel has no
   * fast path or the headroom is too small: then nothing was touched. Uses one sequence number
   * per frame, sent or not.
   */
  sealBatch(target: BatchTarget, frames: Buffer[], headroom: number, contentType: number, acType: number): number | undefined {
    if (!this.fast || headroom < this.headLen + 1) return undefined
    if (this.writeSeq + frames.length > MAX_SEQ) throw new RangeError('dtls write sequence exhausted')
    const first = this.writeSeq
    this.writeSeq += frames.length
    const {addon, sealer} = this.fast
    return addon.sealBatch(sealer, target.fd, target.sockaddr, frames, headroom, this.version, this.writeEpoch, first, contentType, acType)
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
