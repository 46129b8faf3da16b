/**
 * Flags shared by the commands that talk to a running serve (`session …`, `status`), and the
 * human forms of what they print.
 */
import path from 'node:path'

import {Flags} from '@oclif/core'

import {defaultControlSocket, defaultStateDir} from '../config/state-dir.js'
import {ControlClient} from '../control/client.js'

export const controlFlags = {
  'control-socket': Flags.string({
    description: "The serve's control socket (default: <state-dir>/control.sock).",
    exclusive: ['state-dir'],
    helpValue: 'PATH',
  }),
  'state-dir': Flags.string({
    description: 'State directory of the serve to reach (default: $ANYGATE_STATE_DIR or /var/lib/anygate).',
    exclusive: ['control-socket'],
    helpValue: 'DIR',
  }),
}

/** A client for the serve the flags name. */
export function controlClient(flags: {'control-socket'?: string; 'state-dir'?: string}): ControlClient {
  const socket = flags['control-socket'] ?? defaultControlSocket(flags['state-dir'] ?? defaultStateDir())
  return new ControlClient(path.resolve(socket))
}

/** 1536 → `1.5K`; plain numbers below 1024. */
export function humanBytes(n: number): string {
  const units = ['K', 'M', 'G', 'T', 'P']
  if (n < 1024) return String(n)
  let v = n
  let unit = ''
  for (const u of units) {
    if (v < 1024) break
    v /= 1024
    unit = u
  }

  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${unit}`
}

/** Seconds → `45s`, `12m`, `3h05m`, `2d04h`. */
export function humanAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  const pad = (x: number) => String(x).padStart(2, '0')
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`
}

/** Rows of cells → lines aligned in columns two spaces apart, trailing blanks trimmed. */
export function alignRows(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  )
}

/**
 * `alignRows` within `width` columns: drops whole columns, in `dropOrder` (by header, the
 * first row), until the lines fit, rather than cutting values such as addresses short. Returns
 * the lines and the headers left out.
 */
export function fitTable(rows: string[][], width: number, dropOrder: string[]): {lines: string[]; dropped: string[]} {
  let table = rows
  const dropped: string[] = []
  const widest = (lines: string[]) => Math.max(...lines.map((l) => l.length))
  let lines = alignRows(table)
  for (const name of dropOrder) {
    if (widest(lines) <= width) break
    const i = table[0].indexOf(name)
    if (i < 0) continue
    table = table.map((r) => r.filter((_, j) => j !== i))
    dropped.push(name)
    lines = alignRows(table)
  }

  return {lines, dropped}
}
