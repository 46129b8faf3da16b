/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) and says where the time went: self time per
 * function, heaviest first, with the share of all samples. Idle time (the event loop waiting
 * in epoll) is shown apart, so the shares of the rest add up to the busy part of the run.
 */
import {readFileSync} from 'node:fs'
import {relative} from 'node:path'

interface ProfileNode {
  id: number
  callFrame: {functionName: string; url: string; lineNumber: number}
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileLine {
  name: string
  ms: number
  /** Share of busy (non-idle) time. */
  share: number
}

export interface ProfileSummary {
  totalMs: number
  idleMs: number
  top: ProfileLine[]
}

/** `(idle)` and `(program)` are V8's names for waiting and for time outside JS it cannot place. */
const IDLE = '(idle)'

export function summarizeCpuProfile(file: string, count = 15, root = process.cwd()): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const nameOf = new Map<number, string>()
  for (const n of profile.nodes) {
    const {functionName, url, lineNumber} = n.callFrame
    const where = url ? ` ${url.startsWith('file://') ? relative(root, new URL(url).pathname) : url}:${lineNumber + 1}` : ''
    nameOf.set(n.id, `${functionName || '(anonymous)'}${where}`)
  }

  const self = new Map<string, number>()
  let totalUs = 0
  for (const [i, id] of profile.samples.entries()) {
    const us = profile.timeDeltas[i] ?? 0
    totalUs += us
    const name = nameOf.get(id) ?? '(unknown)'
    self.set(name, (self.get(name) ?? 0) + us)
  }

  const idleUs = self.get(IDLE) ?? 0
  self.delete(IDLE)
  const busyUs = Math.max(1, totalUs - idleUs)
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => ({name, ms: us / 1000, share: us / busyUs}))
  return {totalMs: totalUs / 1000, idleMs: idleUs / 1000, top}
}

export function formatProfileSummary(s: ProfileSummary): string[] {
  const busy = s.totalMs - s.idleMs
  const lines = [`profile: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s busy on the main thread; self time:`]
  for (const l of s.top) lines.push(`  ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.ms.toFixed(0).padStart(7)} ms  ${l.name}`)
  return lines
}
