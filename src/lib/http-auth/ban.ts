/**
 * Ban scoring by client address, against password guessing: each failed login adds points to
 * its source address; at `maxScore` the address is banned, and serve drops its new TCP
 * connections before TLS, until `resetSeconds` have passed since the last point. An address
 * with no new points for `resetSeconds` starts from zero again. The idea is ocserv's
 * (max-ban-score, ban-reset-time, ban-points-wrong-password); the defaults are the same, so an
 * administrator moving over keeps the behaviour.
 *
 * Memory is bounded: past `MAX_ENTRIES` addresses, the one scored longest ago is forgotten.
 */

export interface BanSettings {
  /** Score at which an address is banned; 0 turns banning off (points are still not kept). */
  maxScore: number
  /** Seconds a ban lasts after the last point, and after which a score without news resets. */
  resetSeconds: number
}

/** One address, as `GET /v1/bans` and `anygate ban list --json` show it. */
export interface BanInfo {
  address: string
  score: number
  banned: boolean
  /** When the ban ends (or the score resets), ISO 8601 UTC. */
  until: string
}

interface Entry {
  score: number
  lastAt: number
  bannedUntil?: number
}

export const MAX_BAN_ENTRIES = 100_000

/** `::ffff:198.18.0.2` and `198.18.0.2` are one client. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

export class BanList {
  private readonly entries = new Map<string, Entry>()

  constructor(
    private settings: BanSettings,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = MAX_BAN_ENTRIES,
  ) {}

  /** New limits (SIGHUP); scores kept, bans already in force keep their end. */
  configure(settings: BanSettings) {
    this.settings = settings
  }

  /** Adds `points` to `address`; true when this made it banned. */
  add(rawAddress: string | undefined, points: number): boolean {
    const {maxScore, resetSeconds} = this.settings
    if (!rawAddress || maxScore <= 0 || points <= 0) return false
    const address = normalizeAddress(rawAddress)
    const now = this.now()
    const entry = this.live(address, now) ?? {score: 0, lastAt: now}
    entry.score += points
    entry.lastAt = now
    // Re-inserted, so the map's order is by last point and the oldest is first to go.
    this.entries.delete(address)
    this.entries.set(address, entry)
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!)

    if (entry.bannedUntil !== undefined || entry.score < maxScore) return false
    entry.bannedUntil = now + resetSeconds * 1000
    return true
  }

  isBanned(rawAddress: string | undefined): boolean {
    if (!rawAddress || this.entries.size === 0) return false
    const entry = this.live(normalizeAddress(rawAddress), this.now())
    return entry?.bannedUntil !== undefined
  }

  /** Lifts a ban and forgets the score; false when the address had neither. */
  remove(rawAddress: string): boolean {
    const address = normalizeAddress(rawAddress)
    const had = this.live(address, this.now()) !== undefined
    this.entries.delete(address)
    return had
  }

  /** Every address with a score, banned ones first, then by score. */
  list(): BanInfo[] {
    const now = this.now()
    const out: BanInfo[] = []
    for (const address of [...this.entries.keys()]) {
      const e = this.live(address, now)
      if (!e) continue
      const until = e.bannedUntil ?? e.lastAt + this.settings.resetSeconds * 1000
      out.push({address, score: e.score, banned: e.bannedUntil !== undefined, until: new Date(until).toISOString()})
    }

    return out.sort((a, b) => Number(b.banned) - Number(a.banned) || b.score - a.score || a.address.localeCompare(b.address))
  }

  get bannedCount(): number {
    return this.list().filter((b) => b.banned).length
  }

  /** The entry if it still counts; an expired one is dropped on the way. */
  private live(address: string, now: number): Entry | undefined {
    const e = this.entries.get(address)
    if (!e) return undefined
    const expired =
      e.bannedUntil !== undefined ? now >= e.bannedUntil : now - e.lastAt >= this.settings.resetSeconds * 1000
    if (!expired) return e
    this.entries.delete(address)
    return undefined
  }
}
