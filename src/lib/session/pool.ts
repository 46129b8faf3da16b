/**
 * Address pools. The pool's first host address is the gateway's own side of every session's
 * TUN interface (198.19.0.1 in 198.19.0.0/24); clients get the next free ones. A lease belongs
 * to a session (not to a tunnel), so a client that reconnects with its cookie keeps its address.
 */
import {type Cidr, bigIntToAddress} from '../config/ip.js'

export class AddressPool {
  private readonly first: bigint
  private readonly last: bigint
  private readonly leased = new Set<string>()
  private cursor: bigint
  readonly gateway: string
  readonly size: number

  constructor(readonly cidr: Cidr) {
    const hostBits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix)
    const broadcast = cidr.network + (1n << hostBits) - 1n
    this.gateway = bigIntToAddress(cidr.network + 1n, cidr.family)
    this.first = cidr.network + 2n
    // IPv4 keeps the broadcast address out; IPv6 has none.
    this.last = cidr.family === 4 ? broadcast - 1n : broadcast
    this.cursor = this.first
    const span = this.last - this.first + 1n
    this.size = span > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(span)
  }

  get inUse(): number {
    return this.leased.size
  }

  /**
   * Leases a free address, or returns undefined when the pool is exhausted. Starts after the
   * last lease so that a freed address is not handed out again at once.
   */
  lease(): string | undefined {
    if (this.leased.size >= this.size) return undefined
    const limit = Math.min(this.size, 65536)

    for (let i = 0; i < limit; i++) {
      const candidate = this.cursor
      this.cursor = this.cursor >= this.last ? this.first : this.cursor + 1n
      const addr = bigIntToAddress(candidate, this.cidr.family)
      if (this.leased.has(addr)) continue
      this.leased.add(addr)
      return addr
    }

    return undefined
  }

  release(addr: string | undefined): void {
    if (addr) this.leased.delete(addr)
  }
}
