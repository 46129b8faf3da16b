/**
 * The users file in ocserv's ocpasswd format, read and written so that ocserv and anygate can
 * share it (../shared/protocol/auth-and-cstp.md §7).
 *
 * One user per line, `name:groups:hash`. `groups` is a comma list (spaces around commas trimmed,
 * one-character names such as `*` ignored, the first group the default); `hash` is a crypt(3)
 * string, `!`-prefixed when locked (ocpasswd -l). Like ocserv, the first line for a name wins.
 *
 * `UsersFile` keeps every line as it was read: blank lines, comments, malformed lines (reported
 * with their line number) and the file's line endings come back out byte for byte; only lines
 * that a command changes are rewritten. `updateUsersFile` is the one way to change the file on
 * disk: it locks, reads, applies the change and replaces the file atomically. `UsersDb` is the
 * read side for `serve`: lookups, password checks in a worker, and reload on change.
 */
import fs from 'node:fs'
import path from 'node:path'

import {ConfigError, configError, isErrnoException} from '../errors.js'
import type {Logger} from '../log/logger.js'
import {describeHash, hashPassword, isCheckable, MAX_PASSWORD_BYTES} from './password-hash.js'
import {systemCryptError} from './system-crypt.js'
import {PasswordVerifier} from './password-worker.js'
import {commitTmpFile, errText, openExclusive, statOrUndefined, withLockFile} from './safe-write.js'

/** ocpasswd writes `*` in the group field of a user without groups. */
const NO_GROUPS = '*'
const LOCK_MARK = '!'
/**
 * ocserv reads each line with fgets(buf, 511), at most 510 bytes with the line ending: a longer
 * line is cut in two and misread.
 */
export const MAX_LINE_BYTES = 509
export const MAX_NAME_LEN = 64
/** A users file larger than this is refused rather than read into memory. */
export const MAX_USERS_FILE_BYTES = 64 * 1024 * 1024
/** ocpasswd leaves a `<file>.tmp` only for the milliseconds of a write; an older one is debris. */
const STALE_TMP_MS = 30_000
const RELOAD_DEBOUNCE_MS = 100

export interface UserEntry {
  name: string
  /** Groups as ocserv reads them: the first is the default. */
  groups: string[]
  /** The crypt string without the lock mark; empty when the line has no hash. */
  hash: string
  isLocked: boolean
  /** 1-based line number in the file as last read or written. */
  line: number
}

export interface UsersFileProblem {
  line: number
  reason: string
}

type Line =
  | {kind: 'user'; raw: string; name: string; groupsField: string; hashField: string}
  | {kind: 'other'; raw: string; problem?: string}

/** Splits a groups field the way ocserv's plain auth does. */
export function parseGroups(field: string): string[] {
  return field
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g.length > 1)
}

function parseLine(raw: string): Line {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw
  if (text.trim() === '' || text.startsWith('#')) return {kind: 'other', raw}

  const fields = text.split(':')
  if (fields.length !== 3) {
    return {
      kind: 'other',
      raw,
      problem: `expected name:groups:hash, found ${fields.length} field(s)`,
    }
  }

  const [name, groupsField, hashField] = fields
  if (name === '') return {kind: 'other', raw, problem: 'empty user name'}
  if (Buffer.byteLength(raw) > MAX_LINE_BYTES) {
    return {
      kind: 'other',
      raw,
      problem: `longer than ${MAX_LINE_BYTES} bytes, which ocserv cannot read`,
    }
  }

  return {kind: 'user', raw, name, groupsField, hashField}
}

function toEntry(line: Extract<Line, {kind: 'user'}>, lineNo: number): UserEntry {
  const isLocked = line.hashField.startsWith(LOCK_MARK)
  return {
    name: line.name,
    groups: parseGroups(line.groupsField),
    hash: line.hashField.replace(/^!+/, ''),
    isLocked,
    line: lineNo,
  }
}

/** Checks a user name given on the command line; throws `USERS_BAD_NAME`. */
export function validateUserName(name: string): void {
  const bad = (why: string) =>
    configError('USERS_BAD_NAME', `user name ${JSON.stringify(name)} ${why}`)
  if (name === '') throw bad('is empty')
  if (name.length > MAX_NAME_LEN) throw bad(`is longer than ${MAX_NAME_LEN} characters`)
  if (/[:\s\p{Cc}]/u.test(name)) throw bad('contains a colon, a space or a control character')
  if (name.startsWith('#')) throw bad('starts with #')
}

/** Checks a group name given on the command line; throws `USERS_BAD_GROUP`. */
export function validateGroupName(group: string): void {
  const bad = (why: string) =>
    configError('USERS_BAD_GROUP', `group name ${JSON.stringify(group)} ${why}`)
  if (group.length < 2) throw bad('is shorter than 2 characters (ocserv ignores such groups)')
  if (group.length > MAX_NAME_LEN) throw bad(`is longer than ${MAX_NAME_LEN} characters`)
  if (/[:,\s\p{Cc}]/u.test(group))
    throw bad('contains a colon, a comma, a space or a control character')
}

/**
 * A parsed users file. Mutators change only the lines they touch; `toString()` of an unchanged
 * file returns exactly the text it was parsed from.
 */
export class UsersFile {
  private constructor(
    private readonly lines: Line[],
    private finalNewline: boolean,
    /** Where the text came from, for error messages. */
    readonly source: string,
  ) {}

  static parse(text: string, source = 'the users file'): UsersFile {
    if (text === '') return new UsersFile([], true, source)
    const pieces = text.split('\n')
    const finalNewline = pieces.at(-1) === ''
    if (finalNewline) pieces.pop()
    return new UsersFile(pieces.map(parseLine), finalNewline, source)
  }

  toString(): string {
    if (this.lines.length === 0) return ''
    return this.lines.map((l) => l.raw).join('\n') + (this.finalNewline ? '\n' : '')
  }

  /** Every user, first line per name (the one ocserv uses), in file order. */
  users(): UserEntry[] {
    const seen = new Set<string>()
    const users: UserEntry[] = []
    this.lines.forEach((line, i) => {
      if (line.kind !== 'user' || seen.has(line.name)) return
      seen.add(line.name)
      users.push(toEntry(line, i + 1))
    })
    return users
  }

  /** Malformed lines, shadowed duplicates and hashes no one here can check, by line number. */
  problems(): UsersFileProblem[] {
    const first = new Map<string, number>()
    const problems: UsersFileProblem[] = []

    this.lines.forEach((line, i) => {
      const lineNo = i + 1
      if (line.kind === 'other') {
        if (line.problem) problems.push({line: lineNo, reason: `malformed: ${line.problem}`})
        return
      }

      const earlier = first.get(line.name)
      if (earlier !== undefined) {
        problems.push({
          line: lineNo,
          reason: `duplicate of user ${line.name} on line ${earlier}, ignored`,
        })
        return
      }

      first.set(line.name, lineNo)
      const hash = line.hashField.replace(/^!+/, '')
      const described = describeHash(hash)
      if (hash !== '' && 'unsupported' in described && !isCheckable(hash)) {
        problems.push({
          line: lineNo,
          reason:
            described.unsupported === 'unknown'
              ? `user ${line.name} has a hash of no scheme anygate knows, so it cannot log in`
              : `user ${line.name} has a ${described.unsupported} hash, which anygate cannot check without its crypt addon (${systemCryptError() ?? 'not loaded'})`,
        })
      }
    })
    return problems
  }

  get(name: string): UserEntry | undefined {
    const i = this.indexOf(name)
    if (i === -1) return undefined
    return toEntry(this.lines[i] as Extract<Line, {kind: 'user'}>, i + 1)
  }

  /** The user's entry; throws `USERS_UNKNOWN_USER` if there is none. */
  require(name: string): UserEntry {
    this.mustFind(name)
    return this.get(name)!
  }

  /** Throws `USERS_EXISTS` if the name is taken. */
  requireAbsent(name: string): void {
    if (this.indexOf(name) === -1) return
    throw configError('USERS_EXISTS', `user ${name} already exists in ${this.source}`, [
      `to change the password: anygate user passwd ${name}`,
    ])
  }

  /** Appends a user; throws `USERS_EXISTS` if the name is taken. */
  add(name: string, groups: string[], hash: string): UserEntry {
    validateUserName(name)
    for (const g of groups) validateGroupName(g)
    this.requireAbsent(name)

    const crlf = this.lines.length > 0 && this.lines.every((l) => l.raw.endsWith('\r'))
    const groupsField = groups.length > 0 ? groups.join(',') : NO_GROUPS
    const raw = `${name}:${groupsField}:${hash}${crlf ? '\r' : ''}`
    this.lines.push({kind: 'user', raw, name, groupsField, hashField: hash})
    this.finalNewline = true
    return this.get(name)!
  }

  /** Replaces a user's hash, keeping a lock in place. Returns the updated entry. */
  setHash(name: string, hash: string): UserEntry {
    const line = this.mustFind(name)
    const locked = line.hashField.startsWith(LOCK_MARK)
    this.rewrite(line, (locked ? LOCK_MARK : '') + hash)
    return this.get(name)!
  }

  /** Marks a user locked, as ocpasswd -l does. Returns false if already locked. */
  lock(name: string): boolean {
    const line = this.mustFind(name)
    if (line.hashField.startsWith(LOCK_MARK)) return false
    this.rewrite(line, LOCK_MARK + line.hashField)
    return true
  }

  /** Removes the lock mark, as ocpasswd -u does. Returns false if not locked. */
  unlock(name: string): boolean {
    const line = this.mustFind(name)
    if (!line.hashField.startsWith(LOCK_MARK)) return false
    this.rewrite(line, line.hashField.replace(/^!+/, ''))
    return true
  }

  /** Removes every line of a user (shadowed duplicates too). Returns how many lines went. */
  remove(name: string): number {
    this.mustFind(name)
    const before = this.lines.length
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const line = this.lines[i]
      if (line.kind === 'user' && line.name === name) this.lines.splice(i, 1)
    }
    return before - this.lines.length
  }

  private indexOf(name: string): number {
    return this.lines.findIndex((l) => l.kind === 'user' && l.name === name)
  }

  private mustFind(name: string): Extract<Line, {kind: 'user'}> {
    const i = this.indexOf(name)
    if (i === -1) throw configError('USERS_UNKNOWN_USER', `no user ${name} in ${this.source}`)
    return this.lines[i] as Extract<Line, {kind: 'user'}>
  }

  private rewrite(line: Extract<Line, {kind: 'user'}>, hashField: string): void {
    const cr = line.raw.endsWith('\r') ? '\r' : ''
    line.hashField = hashField
    line.raw = `${line.name}:${line.groupsField}:${hashField}${cr}`
  }
}

function missingError(file: string) {
  return configError('USERS_FILE_MISSING', `users file ${file} does not exist`, [
    `create it with: anygate user add NAME --users ${file}`,
  ])
}

function readError(file: string, err: unknown) {
  if (isErrnoException(err) && err.code === 'ENOENT') return missingError(file)

  return configError('USERS_FILE_UNREADABLE', `cannot read users file ${file}: ${errText(err)}`)
}

/** Reads the text of a users file, refusing what is not a regular file of sane size. */
function readText(file: string): string {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (err) {
    throw readError(file, err)
  }

  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile())
      throw configError('USERS_FILE_UNREADABLE', `users file ${file} is not a regular file`)
    if (st.size > MAX_USERS_FILE_BYTES) {
      throw configError(
        'USERS_FILE_TOO_LARGE',
        `users file ${file} is larger than ${MAX_USERS_FILE_BYTES} bytes`,
      )
    }

    return fs.readFileSync(fd, 'utf8')
  } catch (err) {
    throw err instanceof ConfigError || !isErrnoException(err) ? err : readError(file, err)
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads and parses a users file; throws `USERS_FILE_MISSING` or `USERS_FILE_UNREADABLE`. */
export function readUsersFile(file: string): UsersFile {
  return UsersFile.parse(readText(file), file)
}

/**
 * Like `readUsersFile`, but a missing file reads as an empty one, as long as its directory exists
 * (`USERS_FILE_DIR_MISSING` otherwise).
 */
export function readUsersFileOrEmpty(file: string): UsersFile {
  try {
    return readUsersFile(file)
  } catch (err) {
    if (!(err instanceof ConfigError && err.code === 'USERS_FILE_MISSING')) throw err
    requireDir(file)
    return UsersFile.parse('', file)
  }
}

function requireDir(file: string): void {
  const dir = path.dirname(file)
  if (statOrUndefined(dir)?.isDirectory()) return
  throw configError('USERS_FILE_DIR_MISSING', `directory ${dir} does not exist`, [
    `create it: mkdir -p ${dir}`,
  ])
}

export interface UpdateOptions {
  /** Create the file (mode 0600) when it does not exist; otherwise that is an error. */
  create?: boolean
  /** How long to wait for another writer; default 10 s. */
  lockWaitMs?: number
  /** Told about a stale lock or tmp file that was cleared. */
  onWarning?: (message: string) => void
}

/**
 * Changes the users file safely: takes `<file>.lock` (anygate writers), then creates
 * `<file>.tmp` exclusively (the name ocpasswd also writes through and checks, so ocpasswd
 * refuses to run meanwhile and we wait for a running one), reads the current file, applies
 * `change`, writes, fsyncs and renames over the file, keeping its mode and owner. If `change`
 * throws, or changes nothing, the file is untouched. Returns what `change` returned and the file.
 */
export async function updateUsersFile<T>(
  file: string,
  change: (users: UsersFile) => T,
  opts: UpdateOptions = {},
): Promise<{result: T; file: UsersFile}> {
  requireDir(file)
  const lockPath = `${file}.lock`
  return withLockFile(lockPath, () => updateLocked(file, change, opts), {
    what: `users file ${file}`,
    waitMs: opts.lockWaitMs,
    onStale: (owner) =>
      opts.onWarning?.(`removed a stale lock ${lockPath} left by process ${owner.pid ?? '?'}`),
  })
}

async function updateLocked<T>(
  file: string,
  change: (users: UsersFile) => T,
  opts: UpdateOptions,
): Promise<{result: T; file: UsersFile}> {
  const tmpPath = `${file}.tmp`
  const fd = await openTmpExclusive(tmpPath, 0o600, opts)
  let isFdOpen = true
  let isCommitted = false

  try {
    // Only now, with <file>.tmp ours, is the file safe from ocpasswd between read and rename.
    const existing = statOrUndefined(file)
    if (!existing && !opts.create) throw missingError(file)
    if (existing && !existing.isFile()) {
      throw configError('USERS_FILE_UNREADABLE', `users file ${file} is not a regular file`)
    }

    const mode = existing ? existing.mode & 0o7777 : 0o600
    const users = existing ? readUsersFile(file) : UsersFile.parse('', file)
    const before = users.toString()
    const result = change(users)
    if (existing && users.toString() === before) return {result, file: users}

    const owner = {uid: existing?.uid, gid: existing?.gid}
    isFdOpen = false // commitTmpFile closes it, whatever happens
    commitTmpFile(fd, tmpPath, file, users.toString(), {mode, ...owner, overwrite: true})
    isCommitted = true
    return {result, file: users}
  } catch (err) {
    if (err instanceof ConfigError || !isErrnoException(err)) throw err
    throw configError('USERS_FILE_UNWRITABLE', `cannot write users file ${file}: ${errText(err)}`)
  } finally {
    if (isFdOpen) fs.closeSync(fd)
    if (!isCommitted) fs.rmSync(tmpPath, {force: true})
  }
}

async function openTmpExclusive(
  tmpPath: string,
  mode: number,
  opts: UpdateOptions,
): Promise<number> {
  const deadline = Date.now() + (opts.lockWaitMs ?? 10_000)

  for (;;) {
    try {
      return openExclusive(tmpPath, mode)
    } catch (err) {
      if (!isErrnoException(err) || err.code !== 'EEXIST') {
        throw configError('USERS_FILE_UNWRITABLE', `cannot write ${tmpPath}: ${errText(err)}`)
      }
    }

    const st = statOrUndefined(tmpPath)
    if (st && Date.now() - st.mtimeMs > STALE_TMP_MS) {
      opts.onWarning?.(`removed ${tmpPath}, left over from an interrupted write`)
      fs.rmSync(tmpPath, {force: true})
      continue
    }

    if (Date.now() >= deadline) {
      throw configError(
        'USERS_FILE_BUSY',
        `${tmpPath} exists: ocpasswd is writing the users file`,
        [`if no ocpasswd is running, remove ${tmpPath}`],
      )
    }

    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export type VerifyResult =
  | {ok: true; groups: string[]}
  | {ok: false; reason: 'unknown' | 'locked' | 'bad-password' | 'no-password'}

/**
 * The users file as `serve` sees it. `open` reads it once; `watch` keeps it current. Lookups are
 * synchronous against the last good read; a reload that fails keeps the previous users.
 */
export class UsersDb {
  private users = new Map<string, UserEntry>()
  private watcher?: fs.FSWatcher
  private reloadTimer?: NodeJS.Timeout
  private signature = ''
  private closed = false
  private readonly verifier = new PasswordVerifier()
  /** Checked instead when there is no real hash, so every refusal costs one crypt. */
  private readonly decoyHash = hashPassword(`decoy-${process.hrtime.bigint()}-${Math.random()}`)

  private constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  /**
   * Reads the users file. A missing file gives no users and a warning (so `serve` can start
   * before the first `user add`); an unreadable one throws a ConfigError.
   */
  static async open(file: string, log: Logger): Promise<UsersDb> {
    const db = new UsersDb(path.resolve(file), log)
    db.load(true)
    return db
  }

  /** How many users the last read found. */
  get size(): number {
    return this.users.size
  }

  /**
   * Checks a login. Unknown user, locked user, empty hash and wrong password all give
   * `{ok: false}`; each costs one crypt in the worker thread, so timing does not tell them apart
   * (except a hash with more rounds than the default). A password longer than
   * MAX_PASSWORD_BYTES is wrong without a check. Rejects only if the worker cannot run.
   */
  async verify(user: string, password: string): Promise<VerifyResult> {
    const entry = this.users.get(user)
    const refuse = async (reason: 'unknown' | 'locked' | 'bad-password' | 'no-password') => {
      await this.verifier.verify(password.slice(0, MAX_PASSWORD_BYTES), this.decoyHash)
      return {ok: false as const, reason}
    }

    if (!entry) return refuse('unknown')
    if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return refuse('bad-password')
    if (entry.isLocked) return refuse('locked')
    if (entry.hash === '') return refuse('no-password')
    if (!isCheckable(entry.hash)) return refuse('bad-password')

    const ok = await this.verifier.verify(password, entry.hash)
    return ok ? {ok: true, groups: [...entry.groups]} : {ok: false, reason: 'bad-password'}
  }

  /** A user's groups (first = default), or undefined for an unknown user. */
  groupsOf(user: string): string[] | undefined {
    const entry = this.users.get(user)
    return entry ? [...entry.groups] : undefined
  }

  /**
   * Re-reads the file when it changes. Watches the directory, because ocpasswd and anygate
   * replace the file by rename; a change is confirmed by stat and debounced. Logs
   * 'users file reloaded' with the user count.
   */
  watch(): void {
    if (this.watcher || this.closed) return
    const base = path.basename(this.path)

    try {
      this.watcher = fs.watch(path.dirname(this.path), {persistent: false}, (_event, name) => {
        if (name === null || name.toString() === base) this.scheduleReload()
      })
    } catch (err) {
      this.log.warn('users file not watched', {path: this.path, reason: errText(err)})
      return
    }

    this.watcher.on('error', (err) => {
      this.log.warn('users file not watched', {path: this.path, reason: errText(err)})
      this.watcher?.close()
      this.watcher = undefined
    })
  }

  /** Re-reads the file now, changed or not (serve's SIGHUP); a failed read keeps the last users. */
  refresh(): void {
    this.signature = ''
    this.reload()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.reloadTimer)
    this.watcher?.close()
    this.watcher = undefined
    this.verifier.close()
  }

  private scheduleReload(): void {
    if (this.closed) return
    clearTimeout(this.reloadTimer)
    this.reloadTimer = setTimeout(() => this.reload(), RELOAD_DEBOUNCE_MS)
    this.reloadTimer.unref()
  }

  private reload(): void {
    if (this.closed) return
    const st = statOrUndefined(this.path)
    if (signatureOf(st) === this.signature) return

    try {
      this.load(false)
      this.log.info('users file reloaded', {path: this.path, users: this.users.size})
    } catch (err) {
      this.log.error('users file reload failed', {path: this.path, reason: (err as Error).message})
    }
  }

  /** Reads the file into `users`; throws on a file that exists but cannot be read. */
  private load(first: boolean): void {
    const st = statOrUndefined(this.path)
    let file: UsersFile

    try {
      file = readUsersFile(this.path)
    } catch (err) {
      if (!(err instanceof ConfigError && err.code === 'USERS_FILE_MISSING')) throw err
      this.log.warn('users file missing', {path: this.path, users: 0})
      this.users = new Map()
      this.signature = signatureOf(undefined)
      return
    }

    for (const p of file.problems()) {
      this.log.warn('users file line ignored', {path: this.path, line: p.line, reason: p.reason})
    }

    this.users = new Map(file.users().map((u) => [u.name, u]))
    this.signature = signatureOf(st)
    if (first) this.log.info('users file loaded', {path: this.path, users: this.users.size})
  }
}

function signatureOf(st: fs.Stats | undefined): string {
  return st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'missing'
}
