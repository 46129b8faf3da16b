import assert from 'node:assert/strict'
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {hashPassword} from '../../../src/lib/config/password-hash.js'
import {
  parseGroups,
  readUsersFile,
  updateUsersFile,
  UsersDb,
  UsersFile,
} from '../../../src/lib/config/users-file.js'
import {createLogger} from '../../../src/lib/log/logger.js'

const CHILD = new URL('./add-user-child.ts', import.meta.url).pathname

let root: string
before(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'anygate-users-'))
})
after(() => fs.rmSync(root, {recursive: true, force: true}))

let seq = 0
function scratch(content?: string, mode = 0o600): string {
  const dir = join(root, `case-${++seq}`)
  fs.mkdirSync(dir)
  const file = join(dir, 'passwd')
  if (content !== undefined) fs.writeFileSync(file, content, {mode})
  fs.chmodSync(dir, 0o755)
  return file
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as {code?: string}).code
  }
  return undefined
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p
  } catch (err) {
    assert.equal((err as {code?: string}).code, code, (err as Error).message)
    return err as Error
  }
  assert.fail(`expected ${code}`)
}

function ocpasswd(file: string, ...args: string[]) {
  return spawnSync('ocpasswd', ['-c', file, ...args], {input: 'pw1234\npw1234\n', encoding: 'utf8'})
}

const MIXED = [
  'alice:eng,ops:$5$abcdefgh$hash1',
  '',
  '# a comment line',
  'bob:*:!$6$saltsalt$hash2',
  'garbage without colons',
  'carol: eng , x,*, ops :$1$salt$hash3',
  'alice:other:$6$dup$dup',
  'too:many:fields:here',
  ':nogroup:$6$x$y',
  'dave::',
].join('\n')

describe('UsersFile format', () => {
  it('gives back exactly the text it parsed (LF, CRLF, no final newline, empty)', () => {
    for (const text of [
      MIXED + '\n',
      MIXED,
      MIXED.replaceAll('\n', '\r\n') + '\r\n',
      '',
      '\n\n',
      'x:y:z',
    ]) {
      assert.equal(UsersFile.parse(text).toString(), text)
    }
  })

  it('reads users as ocserv does: first line wins, groups trimmed, short names dropped', () => {
    const users = UsersFile.parse(MIXED + '\n').users()
    assert.deepEqual(
      users.map((u) => [u.name, u.groups, u.isLocked, u.hash, u.line]),
      [
        ['alice', ['eng', 'ops'], false, '$5$abcdefgh$hash1', 1],
        ['bob', [], true, '$6$saltsalt$hash2', 4],
        ['carol', ['eng', 'ops'], false, '$1$salt$hash3', 6],
        ['dave', [], false, '', 10],
      ],
    )
    assert.deepEqual(parseGroups('*'), [])
    assert.deepEqual(parseGroups('a,bb , cc'), ['bb', 'cc'])
  })

  it('reports malformed lines and shadowed duplicates with their line numbers', () => {
    const problems = UsersFile.parse(MIXED + '\n').problems()
    assert.deepEqual(
      problems.map((p) => p.line),
      [5, 7, 8, 9],
    )
    assert.match(problems[0].reason, /malformed: expected name:groups:hash, found 1 field/)
    assert.match(problems[1].reason, /duplicate of user alice on line 1/)
    assert.match(problems[2].reason, /found 4 field/)
    assert.match(problems[3].reason, /empty user name/)
  })

  it('reports a line too long for ocserv to read whole', () => {
    const fits = `u1:*:$6$${'a'.repeat(509 - 8)}`
    const long = `u2:*:$6$${'a'.repeat(510 - 8)}`
    assert.equal(fits.length, 509)
    const file = UsersFile.parse(`${fits}\n${long}\n`)
    assert.deepEqual(
      file.users().map((u) => u.name),
      ['u1'],
    )
    assert.deepEqual(file.problems(), [
      {line: 2, reason: 'malformed: longer than 509 bytes, which ocserv cannot read'},
    ])
  })

  it('reports a hash of no known scheme, and none for the system-crypt ones it checks', () => {
    const [p] = UsersFile.parse('erin:*:$zz$abc$def\n').problems()
    assert.deepEqual(p, {line: 1, reason: 'user erin has a hash of no scheme anygate knows, so it cannot log in'})
    // yescrypt is checked through the system's crypt (the native addon, built by setup)
    assert.deepEqual(UsersFile.parse('erin:*:$y$j9T$abc$def\n').problems(), [])
  })

  it('adds a user after every other line, untouched, with * for no groups', () => {
    const file = UsersFile.parse(MIXED + '\n')
    file.add('erin', [], '$6$s$h')
    file.add('frank', ['eng', 'ops'], '$6$t$i')
    assert.equal(file.toString(), MIXED + '\nerin:*:$6$s$h\nfrank:eng,ops:$6$t$i\n')
  })

  it("adds with the file's CRLF endings and after a last line without newline", () => {
    const crlf = UsersFile.parse('a1:*:$6$x$y\r\n')
    crlf.add('b2', [], 'H')
    assert.equal(crlf.toString(), 'a1:*:$6$x$y\r\nb2:*:H\r\n')

    const open = UsersFile.parse('a1:*:$6$x$y')
    open.add('b2', [], 'H')
    assert.equal(open.toString(), 'a1:*:$6$x$y\nb2:*:H\n')
  })

  it('refuses to add a user that exists, or a bad name or group', () => {
    const file = UsersFile.parse(MIXED)
    assert.equal(
      codeOf(() => file.add('alice', [], 'H')),
      'USERS_EXISTS',
    )
    assert.equal(
      codeOf(() => file.add('a:b', [], 'H')),
      'USERS_BAD_NAME',
    )
    assert.equal(
      codeOf(() => file.add('with space', [], 'H')),
      'USERS_BAD_NAME',
    )
    assert.equal(
      codeOf(() => file.add('', [], 'H')),
      'USERS_BAD_NAME',
    )
    assert.equal(
      codeOf(() => file.add('ok', ['x'], 'H')),
      'USERS_BAD_GROUP',
    )
    assert.equal(
      codeOf(() => file.add('ok', ['a,b'], 'H')),
      'USERS_BAD_GROUP',
    )
    assert.equal(file.toString(), MIXED)
  })

  it('changes a hash, keeping the lock and every other line', () => {
    const file = UsersFile.parse(MIXED)
    assert.equal(file.setHash('bob', '$6$new$new').isLocked, true)
    assert.equal(file.toString(), MIXED.replace('bob:*:!$6$saltsalt$hash2', 'bob:*:!$6$new$new'))
  })

  it('locks, unlocks and removes like ocpasswd -l, -u and -d, byte for byte', () => {
    const seed = scratch('')
    for (const name of ['alice', 'bob', 'carol']) assert.equal(ocpasswd(seed, name).status, 0)
    const original = fs.readFileSync(seed, 'utf8')

    const steps: [string[], (f: UsersFile) => unknown][] = [
      [['-l', 'bob'], (f) => f.lock('bob')],
      [['-u', 'bob'], (f) => f.unlock('bob')],
      [['-d', 'alice'], (f) => f.remove('alice')],
    ]
    let expected = original
    for (const [args, ours] of steps) {
      fs.writeFileSync(seed, expected)
      assert.equal(ocpasswd(seed, ...args).status, 0)
      const theirs = fs.readFileSync(seed, 'utf8')
      const file = UsersFile.parse(expected)
      ours(file)
      assert.equal(file.toString(), theirs, `after ocpasswd ${args.join(' ')}`)
      expected = theirs
    }
  })

  it('treats lock and unlock as idempotent, and unknown users as errors', () => {
    const file = UsersFile.parse(MIXED)
    assert.equal(file.lock('bob'), false)
    assert.equal(file.unlock('alice'), false)
    assert.equal(
      codeOf(() => file.lock('nobody')),
      'USERS_UNKNOWN_USER',
    )
    assert.equal(
      codeOf(() => file.remove('nobody')),
      'USERS_UNKNOWN_USER',
    )
    assert.equal(file.toString(), MIXED)
  })

  it('removes every line of a user, keeping the malformed ones', () => {
    const file = UsersFile.parse(MIXED + '\n')
    assert.equal(file.remove('alice'), 2)
    assert.equal(file.get('alice'), undefined)
    assert.ok(file.toString().includes('garbage without colons\n'))
    assert.ok(file.toString().includes('too:many:fields:here\n'))
  })
})

describe('readUsersFile', () => {
  it('names a missing file, a directory and a FIFO as errors without hanging', () => {
    const file = scratch()
    assert.equal(
      codeOf(() => readUsersFile(file)),
      'USERS_FILE_MISSING',
    )
    assert.equal(
      codeOf(() => readUsersFile(root)),
      'USERS_FILE_UNREADABLE',
    )
    const fifo = join(root, 'fifo')
    execFileSync('mkfifo', [fifo])
    assert.equal(
      codeOf(() => readUsersFile(fifo)),
      'USERS_FILE_UNREADABLE',
    )
  })
})

describe('updateUsersFile', () => {
  it('creates a missing file with mode 0600', async () => {
    const file = scratch()
    await updateUsersFile(file, (u) => u.add('alice', [], 'H'), {create: true})
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    assert.equal(fs.readFileSync(file, 'utf8'), 'alice:*:H\n')
  })

  it('keeps the mode of an existing file, and its malformed lines', async () => {
    const file = scratch(MIXED + '\n', 0o640)
    fs.chmodSync(file, 0o640)
    await updateUsersFile(file, (u) => u.add('erin', ['eng'], 'H'))
    assert.equal(fs.statSync(file).mode & 0o777, 0o640)
    assert.equal(fs.readFileSync(file, 'utf8'), MIXED + '\nerin:eng:H\n')
    assert.deepEqual(fs.readdirSync(join(file, '..')), ['passwd'])
  })

  it('replaces the file by rename (a new inode), never in place', async () => {
    const file = scratch('a1:*:H\n')
    const before = fs.statSync(file).ino
    await updateUsersFile(file, (u) => u.add('b2', [], 'H'))
    assert.notEqual(fs.statSync(file).ino, before)
  })

  it('leaves the file alone when the change throws or changes nothing', async () => {
    const file = scratch(MIXED)
    const ino = fs.statSync(file).ino
    await rejectsWith(
      updateUsersFile(file, (u) => u.add('alice', [], 'H')),
      'USERS_EXISTS',
    )
    await updateUsersFile(file, (u) => u.lock('bob'))
    assert.equal(fs.readFileSync(file, 'utf8'), MIXED)
    assert.equal(fs.statSync(file).ino, ino)
    assert.deepEqual(fs.readdirSync(join(file, '..')), ['passwd'])
  })

  it('fails clearly on a missing file or directory', async () => {
    await rejectsWith(
      updateUsersFile(scratch(), (u) => u.lock('x')),
      'USERS_FILE_MISSING',
    )
    const err = await rejectsWith(
      updateUsersFile(join(root, 'no', 'such', 'passwd'), (u) => u.add('x1', [], 'H'), {
        create: true,
      }),
      'USERS_FILE_DIR_MISSING',
    )
    assert.match(err.message, /directory .*\/no\/such does not exist/)
  })

  it('loses no entry when 12 processes add users at once', async () => {
    const file = scratch('keep:*:$6$a$b\nmalformed line\n')
    const names = Array.from({length: 12}, (_, i) => `racer${i}`)
    const codes = await Promise.all(
      names.map(
        (name) =>
          new Promise<number | null>((resolve) => {
            const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file, name], {
              stdio: 'inherit',
            })
            child.on('exit', resolve)
          }),
      ),
    )
    assert.deepEqual(
      codes,
      names.map(() => 0),
    )
    const text = fs.readFileSync(file, 'utf8')
    assert.ok(text.startsWith('keep:*:$6$a$b\nmalformed line\n'))
    assert.deepEqual(
      readUsersFile(file)
        .users()
        .map((u) => u.name)
        .sort(),
      ['keep', ...names].sort(),
    )
    assert.deepEqual(fs.readdirSync(join(file, '..')), ['passwd'])
  })

  it('breaks a lock left by a dead process, and says so', async () => {
    const file = scratch('a1:*:H\n')
    const dead = spawnSync('true').pid
    fs.writeFileSync(`${file}.lock`, `${dead} ${(await import('node:os')).hostname()}\n`)
    const warnings: string[] = []
    await updateUsersFile(file, (u) => u.add('b2', [], 'H'), {onWarning: (m) => warnings.push(m)})
    assert.equal(readUsersFile(file).users().length, 2)
    assert.match(warnings.join('\n'), /stale lock .* process \d+/)
    assert.equal(fs.existsSync(`${file}.lock`), false)
  })

  it('waits for a live lock holder, then gives up with a clear error', async () => {
    const file = scratch('a1:*:H\n')
    fs.writeFileSync(`${file}.lock`, `${process.pid} ${(await import('node:os')).hostname()}\n`)
    const started = Date.now()
    const err = await rejectsWith(
      updateUsersFile(file, (u) => u.add('b2', [], 'H'), {lockWaitMs: 300}),
      'LOCK_TIMEOUT',
    )
    assert.ok(Date.now() - started >= 300)
    assert.match(err.message, new RegExp(`locked by process ${process.pid}`))
    assert.equal(fs.readFileSync(file, 'utf8'), 'a1:*:H\n')
    assert.equal(fs.existsSync(`${file}.lock`), true, "the holder's lock stays")
  })

  it("waits while ocpasswd's <file>.tmp exists and goes on once it is gone", async () => {
    const file = scratch('a1:*:H\n')
    fs.writeFileSync(`${file}.tmp`, '')
    setTimeout(() => fs.rmSync(`${file}.tmp`), 150)
    await updateUsersFile(file, (u) => u.add('b2', [], 'H'))
    assert.equal(readUsersFile(file).users().length, 2)

    fs.writeFileSync(`${file}.tmp`, '')
    await rejectsWith(
      updateUsersFile(file, (u) => u.add('c3', [], 'H'), {lockWaitMs: 200}),
      'USERS_FILE_BUSY',
    )
    assert.equal(fs.existsSync(`${file}.tmp`), true, "a fresh .tmp may be a running ocpasswd's")
  })

  it('removes a <file>.tmp left by an interrupted write long ago', async () => {
    const file = scratch('a1:*:H\n')
    fs.writeFileSync(`${file}.tmp`, 'half a file')
    const old = new Date(Date.now() - 120_000)
    fs.utimesSync(`${file}.tmp`, old, old)
    const warnings: string[] = []
    await updateUsersFile(file, (u) => u.add('b2', [], 'H'), {onWarning: (m) => warnings.push(m)})
    assert.equal(readUsersFile(file).users().length, 2)
    assert.match(warnings.join('\n'), /left over from an interrupted write/)
  })

  it('keeps ocpasswd out while it changes the file', async () => {
    const file = scratch('a1:*:H\n')
    let ocpasswdResult: ReturnType<typeof ocpasswd> | undefined
    await updateUsersFile(file, (u) => {
      ocpasswdResult = ocpasswd(file, 'intruder')
      u.add('b2', [], 'H')
    })
    assert.notEqual(ocpasswdResult?.status, 0)
    assert.match(ocpasswdResult?.stderr ?? '', /locked/)
    assert.deepEqual(
      readUsersFile(file)
        .users()
        .map((u) => u.name),
      ['a1', 'b2'],
    )
  })
})

function captureLog() {
  const lines: {msg: string; level: string; [k: string]: unknown}[] = []
  const log = createLogger({level: 'debug', format: 'json', sink: (l) => lines.push(JSON.parse(l))})
  return {log, lines}
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) assert.fail('condition not met in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('UsersDb', () => {
  const alice = hashPassword('alice-pw')
  const text = [
    `alice:eng,ops:${alice}`,
    `bob:*:!${hashPassword('bob-pw')}`,
    'carol:*:',
    'dave:*:$zz$abc$def',
    'broken line',
    'yves:*:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79',
    `md5user:vpn:${execFileSync('openssl', ['passwd', '-1', 'md5-pw']).toString().trim()}`,
  ].join('\n')

  it('verifies each kind of login and refuses the rest with its reason', async () => {
    const {log, lines} = captureLog()
    const db = await UsersDb.open(scratch(text + '\n'), log)
    try {
      assert.deepEqual(await db.verify('alice', 'alice-pw'), {ok: true, groups: ['eng', 'ops']})
      assert.deepEqual(await db.verify('md5user', 'md5-pw'), {ok: true, groups: ['vpn']})
      assert.deepEqual(await db.verify('alice', 'wrong'), {ok: false, reason: 'bad-password'})
      assert.deepEqual(await db.verify('bob', 'bob-pw'), {ok: false, reason: 'locked'})
      assert.deepEqual(await db.verify('carol', ''), {ok: false, reason: 'no-password'})
      assert.deepEqual(await db.verify('carol', 'anything'), {ok: false, reason: 'no-password'})
      assert.deepEqual(await db.verify('dave', 'x'), {ok: false, reason: 'bad-password'})
      // yescrypt (Python's crypt made it), checked in the worker through the system's crypt
      assert.deepEqual(await db.verify('yves', 'correct horse'), {ok: true, groups: []})
      assert.deepEqual(await db.verify('yves', 'correct horsf'), {ok: false, reason: 'bad-password'})
      assert.deepEqual(await db.verify('nobody', 'x'), {ok: false, reason: 'unknown'})
      assert.deepEqual(await db.verify('alice', 'x'.repeat(1025)), {
        ok: false,
        reason: 'bad-password',
      })
      assert.deepEqual(db.groupsOf('alice'), ['eng', 'ops'])
      assert.equal(db.groupsOf('nobody'), undefined)
      assert.equal(db.size, 6)

      const ignored = lines.filter((l) => l.msg === 'users file line ignored').map((l) => l.line)
      assert.deepEqual(ignored, [4, 5])
    } finally {
      db.close()
    }
  })

  it('verifies a file written by the real ocpasswd', async () => {
    const file = scratch('')
    assert.equal(ocpasswd(file, '-g', 'staff,admins', 'olga').status, 0)
    assert.equal(ocpasswd(file, 'oleg').status, 0)
    assert.equal(ocpasswd(file, '-l', 'oleg').status, 0)
    const db = await UsersDb.open(file, captureLog().log)
    try {
      assert.deepEqual(await db.verify('olga', 'pw1234'), {ok: true, groups: ['staff', 'admins']})
      assert.deepEqual(await db.verify('olga', 'pw12345'), {ok: false, reason: 'bad-password'})
      assert.deepEqual(await db.verify('oleg', 'pw1234'), {ok: false, reason: 'locked'})
    } finally {
      db.close()
    }
  })

  it('starts with no users and a warning when the file is missing', async () => {
    const {log, lines} = captureLog()
    const db = await UsersDb.open(scratch(), log)
    try {
      assert.equal(db.size, 0)
      assert.deepEqual(await db.verify('alice', 'x'), {ok: false, reason: 'unknown'})
      assert.ok(lines.some((l) => l.level === 'warn' && l.msg === 'users file missing'))
    } finally {
      db.close()
    }
  })

  it('throws a ConfigError for a users file it cannot read', async () => {
    await rejectsWith(UsersDb.open(root, captureLog().log), 'USERS_FILE_UNREADABLE')
  })

  it('keeps the event loop turning while it checks passwords', async () => {
    const db = await UsersDb.open(scratch(text), captureLog().log)
    try {
      await db.verify('alice', 'warm-up')
      let maxGap = 0
      let last = performance.now()
      const timer = setInterval(() => {
        const now = performance.now()
        maxGap = Math.max(maxGap, now - last)
        last = now
      }, 2)
      const started = performance.now()
      await Promise.all(Array.from({length: 20}, () => db.verify('alice', 'wrong')))
      const elapsed = performance.now() - started
      clearInterval(timer)
      maxGap = Math.max(maxGap, performance.now() - last)
      assert.ok(elapsed > 50, `20 checks took ${elapsed} ms: too fast to prove anything`)
      assert.ok(maxGap < 40, `the loop stalled for ${maxGap.toFixed(1)} ms`)
    } finally {
      db.close()
    }
  })

  it('takes about as long for an unknown user as for a wrong password', async () => {
    const db = await UsersDb.open(scratch(text), captureLog().log)
    const time = async (user: string) => {
      const t = performance.now()
      for (let i = 0; i < 10; i++) await db.verify(user, 'wrong')
      return performance.now() - t
    }
    try {
      await time('alice')
      const known = await time('alice')
      const unknown = await time('nobody')
      const locked = await time('bob')
      for (const other of [unknown, locked]) {
        const ratio = other / known
        assert.ok(
          ratio > 0.5 && ratio < 2,
          `timing ratio ${ratio.toFixed(2)} (known ${known.toFixed(0)} ms)`,
        )
      }
    } finally {
      db.close()
    }
  })

  it('reloads when the file is replaced, logging the new count', async () => {
    const file = scratch(text)
    const {log, lines} = captureLog()
    const db = await UsersDb.open(file, log)
    db.watch()
    try {
      await updateUsersFile(file, (u) => u.add('erin', ['new'], hashPassword('erin-pw')))
      await until(() => lines.some((l) => l.msg === 'users file reloaded'))
      assert.equal(lines.find((l) => l.msg === 'users file reloaded')?.users, 7)
      assert.deepEqual(await db.verify('erin', 'erin-pw'), {ok: true, groups: ['new']})

      assert.equal(ocpasswd(file, '-l', 'alice').status, 0)
      await until(() => lines.filter((l) => l.msg === 'users file reloaded').length === 2)
      assert.deepEqual(await db.verify('alice', 'alice-pw'), {ok: false, reason: 'locked'})
    } finally {
      db.close()
    }
  })

  it('keeps the last good users when a reload fails', async () => {
    const file = scratch(text)
    const {log, lines} = captureLog()
    const db = await UsersDb.open(file, log)
    db.watch()
    try {
      fs.rmSync(file)
      execFileSync('mkfifo', [file])
      await until(() => lines.some((l) => l.msg === 'users file reload failed'))
      assert.deepEqual(await db.verify('alice', 'alice-pw'), {ok: true, groups: ['eng', 'ops']})
    } finally {
      db.close()
    }
  })
})
