/**
 * Writing operator files without ever leaving a half-written or lost one: data goes to a file
 * beside the target, is fsynced, then renamed over it (or hard-linked, when the target must not
 * be replaced), and the directory is fsynced. `withLockFile` serialises read-modify-write cycles
 * between processes with an exclusive lock file that names its owner, so a lock left by a
 * process that died is recognised and broken.
 *
 * Used by the users file (`users-file.ts`) and the certificate writer (`../pki/files.ts`).
 */
import {randomBytes} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {configError, isErrnoException} from '../errors.js'

export const LOCK_WAIT_MS = 10_000
const LOCK_RETRY_MS = 15
/** A lock whose owner cannot be checked (another host, no pid) is stale after this long. */
const LOCK_STALE_MS = 60_000

export interface CommitOptions {
  /** File mode of the result (the tmp file's creation mode is cut by the umask). */
  mode: number
  /** Owner to give the result, when it differs from ours (needs root). */
  uid?: number
  gid?: number
  /** Replace an existing target (rename); otherwise fail if it exists (link). */
  overwrite: boolean
}

/** Creates `file` exclusively (O_CREAT|O_EXCL) and returns its descriptor. */
export function openExclusive(file: string, mode: number): number {
  return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode)
}

/**
 * Writes `data` to the open tmp file, syncs it and moves it to `target`. The descriptor is closed
 * in every case; on failure the tmp file is left for the caller to remove.
 */
export function commitTmpFile(
  fd: number,
  tmpPath: string,
  target: string,
  data: string | Uint8Array,
  opts: CommitOptions,
): void {
  try {
    fs.writeFileSync(fd, data)
    fs.fchmodSync(fd, opts.mode)
    const uid = opts.uid ?? -1
    const gid = opts.gid ?? -1
    if ((uid !== -1 && uid !== process.getuid?.()) || (gid !== -1 && gid !== process.getgid?.())) {
      fs.fchownSync(fd, uid, gid)
    }

    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }

  if (opts.overwrite) {
    fs.renameSync(tmpPath, target)
  } else {
    fs.linkSync(tmpPath, target)
    fs.unlinkSync(tmpPath)
  }

  syncDir(path.dirname(target))
}

function syncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = fs.openSync(dir, 'r')
    fs.fsyncSync(fd)
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself has happened.
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/**
 * Writes a whole file atomically through a uniquely named tmp file beside it. Without
 * `overwrite`, an existing target is an `EEXIST` error and stays untouched.
 */
export function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  opts: CommitOptions,
): void {
  const tmpPath = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  )
  const fd = openExclusive(tmpPath, opts.mode)
  try {
    commitTmpFile(fd, tmpPath, target, data, opts)
  } finally {
    fs.rmSync(tmpPath, {force: true})
  }
}

interface LockOwner {
  pid?: number
  host?: string
}

function readLockOwner(lockPath: string): LockOwner {
  try {
    const [pid, host] = fs.readFileSync(lockPath, 'utf8').trim().split(/\s+/)
    return {pid: /^\d+$/.test(pid ?? '') ? Number(pid) : undefined, host}
  } catch {
    return {}
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return isErrnoException(err) && err.code === 'EPERM'
  }
}

/** True when the lock's owner is gone: a dead pid on this host, or an old lock we cannot check. */
function isStale(owner: LockOwner, st: fs.Stats): boolean {
  if (owner.pid !== undefined && owner.host === os.hostname()) return !isAlive(owner.pid)
  return Date.now() - st.mtimeMs > LOCK_STALE_MS
}

/**
 * Removes a stale lock without removing a live one that replaced it meanwhile: the lock is first
 * renamed aside, and put back if the renamed file is not the one judged stale.
 */
function breakStaleLock(lockPath: string, judged: fs.Stats): void {
  const aside = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString('hex')}`
  try {
    fs.renameSync(lockPath, aside)
  } catch {
    return
  }

  const moved = fs.statSync(aside)
  if (moved.ino === judged.ino && moved.dev === judged.dev) {
    fs.rmSync(aside, {force: true})
    return
  }

  try {
    fs.linkSync(aside, lockPath)
  } finally {
    fs.rmSync(aside, {force: true})
  }
}

export interface LockOptions {
  /** How long to wait for another holder before giving up. */
  waitMs?: number
  /** What the lock protects, for error messages. */
  what: string
  /** Called once when a stale lock is broken. */
  onStale?: (owner: LockOwner) => void
}

/**
 * Runs `fn` while holding `lockPath`, created with O_EXCL and holding `<pid> <host>`. Waits up to
 * `waitMs` for a live holder, breaks a stale lock, and throws `LOCK_TIMEOUT` (a ConfigError) when
 * the holder stays. The lock is released however `fn` ends.
 */
export async function withLockFile<T>(
  lockPath: string,
  fn: () => Promise<T> | T,
  opts: LockOptions,
): Promise<T> {
  const held = await acquireLock(lockPath, opts)
  try {
    return await fn()
  } finally {
    releaseLock(lockPath, held)
  }
}

async function acquireLock(lockPath: string, opts: LockOptions): Promise<fs.Stats> {
  const deadline = Date.now() + (opts.waitMs ?? LOCK_WAIT_MS)

  for (;;) {
    try {
      const fd = openExclusive(lockPath, 0o600)
      try {
        fs.writeFileSync(fd, `${process.pid} ${os.hostname()}\n`)
        return fs.fstatSync(fd)
      } finally {
        fs.closeSync(fd)
      }
    } catch (err) {
      if (!isErrnoException(err) || err.code !== 'EEXIST') {
        throw configError('LOCK_FAILED', `cannot lock ${opts.what} (${lockPath}): ${errText(err)}`)
      }
    }

    const st = statOrUndefined(lockPath)
    if (!st) continue
    const owner = readLockOwner(lockPath)

    if (isStale(owner, st)) {
      opts.onStale?.(owner)
      breakStaleLock(lockPath, st)
      continue
    }

    if (Date.now() >= deadline) {
      const by = owner.pid === undefined ? 'another process' : `process ${owner.pid}`
      throw configError('LOCK_TIMEOUT', `${opts.what} is locked by ${by} (${lockPath})`, [
        `if no other anygate command is running, remove ${lockPath}`,
      ])
    }

    await sleep(LOCK_RETRY_MS + Math.floor(Math.random() * LOCK_RETRY_MS))
  }
}

function releaseLock(lockPath: string, held: fs.Stats): void {
  const st = statOrUndefined(lockPath)
  if (st && st.ino === held.ino && st.dev === held.dev) fs.rmSync(lockPath, {force: true})
}

export function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file)
  } catch {
    return undefined
  }
}

/** The message of an fs error without Node's `ERRNO: ` prefix and syscall suffix noise. */
export function errText(err: unknown): string {
  if (!isErrnoException(err)) return err instanceof Error ? err.message : String(err)
  const known: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'not a directory',
    EISDIR: 'is a directory',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EEXIST: 'file exists',
  }
  return known[err.code ?? ''] ?? err.message
}
