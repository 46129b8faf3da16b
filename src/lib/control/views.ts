/**
 * What the control protocol shows of the gateway's live objects: plain JSON values, copied at
 * the moment of the request. Never a cookie or its digest.
 */
import type {PoolUse, SessionInfo} from './protocol.js'
import type {AddressPool} from '../session/pool.js'
import type {Session} from '../session/store.js'

export function sessionInfo(s: Session): SessionInfo {
  const isDtlsUp = s.dtls?.isUp === true
  return {
    id: s.id,
    user: s.user,
    group: s.group ?? null,
    state: s.tunnel ? 'connected' : 'idle',
    remoteAddress: s.remoteAddress,
    ipv4: s.ipv4 ?? null,
    ipv6: s.ipv6 ?? null,
    device: s.device ?? null,
    userAgent: s.userAgent,
    connectedAt: s.createdAt.toISOString(),
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    packetsIn: s.packetsIn,
    packetsOut: s.packetsOut,
    dtls: isDtlsUp,
    dtlsCipher: isDtlsUp ? (s.dtls?.cipher ?? null) : null,
    mtu: s.mtu ?? null,
  }
}

export function poolUse(pool: AddressPool): PoolUse {
  return {cidr: pool.cidr.text, used: pool.inUse, size: pool.size}
}
