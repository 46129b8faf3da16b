/**
 * Small IPv4/IPv6 helpers for pools and routes: CIDR parsing, dotted masks, address arithmetic.
 * Addresses are held as bigint so one code path serves both families.
 */
import net from 'node:net'

import {configError} from '../errors.js'

export type Family = 4 | 6

export interface Cidr {
  family: Family
  /** The network address (host bits cleared). */
  network: bigint
  prefix: number
  /** The text as given, normalised: `198.19.0.0/24`. */
  text: string
}

const BITS: Record<Family, number> = {4: 32, 6: 128}

export function parseCidr(text: string, what = 'network'): Cidr {
  const [addr, len, extra] = text.trim().split('/')
  const family = net.isIP(addr ?? '')
  if (extra !== undefined || (family !== 4 && family !== 6)) {
    throw configError('CONFIG_BAD_CIDR', `bad ${what} ${JSON.stringify(text)}: expected ADDRESS/PREFIX`)
  }

  const bits = BITS[family]
  const prefix = len === undefined ? bits : Number(len)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits || !/^\d*$/.test(len ?? '')) {
    throw configError('CONFIG_BAD_CIDR', `bad prefix length in ${what} ${JSON.stringify(text)}`)
  }

  const mask = prefixMask(family, prefix)
  const network = addressToBigInt(addr) & mask
  return {family, network, prefix, text: `${bigIntToAddress(network, family)}/${prefix}`}
}

export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family])
  const all = (1n << bits) - 1n
  return (all << (bits - BigInt(prefix))) & all
}

export function addressToBigInt(addr: string): bigint {
  if (net.isIPv4(addr)) {
    return addr.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)
  }

  if (!net.isIPv6(addr)) throw new TypeError(`not an IP address: ${addr}`)
  const [head, tail] = addr.split('::')
  const groups = (s: string | undefined) => (s ? s.split(':') : [])
  const expandV4 = (parts: string[]) =>
    parts.flatMap((p) => {
      if (!p.includes('.')) return [p]
      const v = addressToBigInt(p)
      return [(v >> 16n).toString(16), (v & 0xffffn).toString(16)]
    })
  const h = expandV4(groups(head))
  const t = expandV4(groups(tail))
  const zeros = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0')
  return [...h, ...zeros, ...t].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n)
}

export function bigIntToAddress(v: bigint, family: Family): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => Number((v >> s) & 0xffn)).join('.')
  }

  const groups: string[] = []
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((v >> s) & 0xffffn).toString(16))
  // Shorten the longest run of zero groups (RFC 5952 §4.2)
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) {
      best = i
      bestLen = j - i
    }

    i = j === i ? i + 1 : j
  }

  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** `255.255.255.0` for a /24. */
export function dottedMask(prefix: number): string {
  return bigIntToAddress(prefixMask(4, prefix), 4)
}

/** A route as the CSTP Split-Include header wants it: `a.b.c.d/m.m.m.m` or `addr/len`. */
export function cstpRoute(c: Cidr): string {
  const addr = bigIntToAddress(c.network, c.family)
  return c.family === 4 ? `${addr}/${dottedMask(c.prefix)}` : `${addr}/${c.prefix}`
}

export function isDefaultRoute(c: Cidr): boolean {
  return c.prefix === 0
}

/** Parses `HOST:PORT`, `[V6]:PORT` or `:PORT`. */
export function parseHostPort(text: string): {host: string; port: number} {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) {
    throw configError('CONFIG_BAD_LISTEN', `bad listen address ${JSON.stringify(text)}: expected HOST:PORT`)
  }

  const host = m[1] ?? m[2] ?? ''
  if (host && net.isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw configError('CONFIG_BAD_LISTEN', `bad host in listen address ${JSON.stringify(text)}`)
  }

  return {host: host || '0.0.0.0', port}
}
