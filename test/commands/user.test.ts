import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {verifyPassword} from '../../src/lib/config/password-hash.js'
import {readUsersFile} from '../../src/lib/config/users-file.js'
import {assertCleanFailure, ensureBuilt, runCli, runInTerminal} from './cli.js'

let root: string
let seq = 0
before(() => {
  ensureBuilt()
  root = fs.mkdtempSync(join(tmpdir(), 'anygate-usercmd-'))
})
after(() => fs.rmSync(root, {recursive: true, force: true}))

function newFile(content?: string): string {
  const dir = join(root, `c${++seq}`)
  fs.mkdirSync(dir)
  const file = join(dir, 'users')
  if (content !== undefined) fs.writeFileSync(file, content, {mode: 0o600})
  return file
}

const add = (file: string, name: string, password: string, ...extra: string[]) =>
  runCli(['user', 'add', name, '--users', file, '--password-stdin', ...extra], {
    input: `${password}\n`,
  })

describe('anygate user add', () => {
  it("creates the users file (0600) with a $6$ line that ocserv's format expects", async () => {
    const file = newFile()
    const r = await add(file, 'alice', 'wonder land', '--group', 'eng', '-g', 'ops')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /added user alice/)
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)

    const [name, groups, hash] = fs.readFileSync(file, 'utf8').trimEnd().split(':')
    assert.deepEqual([name, groups], ['alice', 'eng,ops'])
    assert.match(hash, /^\$6\$[./0-9A-Za-z]{16}\$/)
    assert.equal(verifyPassword('wonder land', hash), true)
  })

  it('writes $5$ with --hash sha256, and * for no group', async () => {
    const file = newFile()
    assert.equal((await add(file, 'bob', 'pw', '--hash', 'sha256')).code, 0)
    assert.match(fs.readFileSync(file, 'utf8'), /^bob:\*:\$5\$/)
  })

  it('asks twice on a terminal, and refuses two different answers', async () => {
    const file = newFile()
    const ok = await runInTerminal(
      ['user', 'add', 'tina', '--users', file],
      [
        [/New password for tina:/, 'typed-pw'],
        [/Repeat the password for tina:/, 'typed-pw'],
      ],
    )
    assert.equal(ok.code, 0, ok.stdout)
    assert.doesNotMatch(ok.stdout, /typed-pw/, 'the password is not echoed')
    assert.doesNotMatch(ok.stdout, /\*{3}/, 'nor its length, as stars')
    assert.equal(verifyPassword('typed-pw', readUsersFile(file).get('tina')!.hash), true)

    const bad = await runInTerminal(
      ['user', 'add', 'tom', '--users', file],
      [
        [/New password for tom:/, 'one'],
        [/Repeat the password for tom:/, 'two'],
      ],
    )
    assert.notEqual(bad.code, 0)
    assert.match(bad.stdout, /Error: the two entries of the password for tom differ/)
    assert.equal(readUsersFile(file).get('tom'), undefined)
  })

  it('fails at once without a terminal or --password-stdin, even if stdin stays open', async () => {
    const file = newFile('')
    for (const opts of [{}, {silentPipe: true}]) {
      const started = Date.now()
      const r = await runCli(['user', 'add', 'carol', '--users', file], {
        ...opts,
        timeoutMs: 10_000,
      })
      assertCleanFailure(
        r,
        /^Error: no terminal to ask for the password for carol\n\s+pass it on standard input with --password-stdin/,
      )
      assert.ok(Date.now() - started < 9000)
    }
    assert.equal(fs.readFileSync(file, 'utf8'), '')
  })

  it('exits after reading the first line even when the writer keeps stdin open', async () => {
    const file = newFile()
    const r = await runCli(['user', 'add', 'ivan', '--users', file, '--password-stdin'], {
      input: 'first-line\nsecond line\n',
      keepOpen: true,
      timeoutMs: 10_000,
    })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(verifyPassword('first-line', readUsersFile(file).get('ivan')!.hash), true)
  })

  it('refuses an existing user, an empty password, and bad names, changing nothing', async () => {
    const file = newFile('alice:*:$6$a$b\nmalformed line\n')
    const before = fs.readFileSync(file, 'utf8')
    assertCleanFailure(await add(file, 'alice', 'x'), /Error: user alice already exists/)
    assertCleanFailure(
      await add(file, 'dave', ''),
      /Error: the password for dave must not be empty/,
    )
    assertCleanFailure(
      await runCli(['user', 'add', 'dave', '--users', file, '--password-stdin']),
      /no password for dave on standard input/,
    )
    assertCleanFailure(await add(file, 'bad:name', 'x'), /user name "bad:name" contains a colon/)
    assertCleanFailure(await add(file, 'dave', 'x'.repeat(1025)), /longer than 1024 bytes/)
    assertCleanFailure(
      await add(file, 'eve', 'x', '--group', 'x'),
      /group name "x" is shorter than 2/,
    )
    assertCleanFailure(
      await add(file, 'eve', 'x', '--hash', 'md5'),
      /Expected --hash=md5 to be one of: sha512, sha256/,
    )
    assert.equal(fs.readFileSync(file, 'utf8'), before)
  })

  it('keeps malformed lines, reporting them with their line numbers', async () => {
    const file = newFile('alice:*:$6$a$b\nthis line is broken\n')
    const r = await add(file, 'frank', 'pw')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /line 2: malformed/)
    assert.match(
      fs.readFileSync(file, 'utf8'),
      /^alice:\*:\$6\$a\$b\nthis line is broken\nfrank:\*:\$6\$/,
    )
  })

  it('fails clearly for a directory that does not exist or a users file that is a directory', async () => {
    assertCleanFailure(
      await add(join(root, 'missing', 'users'), 'x1', 'pw'),
      /directory .*missing does not exist/,
    )
    assertCleanFailure(await add(root, 'x1', 'pw'), /users file .* is not a regular file/)
  })

  it('keeps every entry when eight user add commands run at once', async () => {
    const file = newFile()
    const names = Array.from({length: 8}, (_, i) => `par${i}`)
    const results = await Promise.all(names.map((n) => add(file, n, `pw-${n}`)))
    for (const r of results) assert.equal(r.code, 0, r.stderr)
    const users = readUsersFile(file).users()
    assert.deepEqual(users.map((u) => u.name).sort(), names)
    for (const u of users) assert.equal(verifyPassword(`pw-${u.name}`, u.hash), true)
  })

  it("uses serve's default users file in $ANYGATE_STATE_DIR, creating the directory 0700", async () => {
    const state = join(root, 'state-default')
    const r = await runCli(['user', 'add', 'gina', '--password-stdin'], {
      input: 'pw\n',
      env: {ANYGATE_STATE_DIR: state},
    })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(fs.statSync(state).mode & 0o777, 0o700)
    assert.match(fs.readFileSync(join(state, 'users'), 'utf8'), /^gina:\*:\$6\$/)
  })
})

describe('anygate user passwd, lock, unlock, remove', () => {
  it('changes a password, keeping a lock and the other lines', async () => {
    const file = newFile()
    await add(file, 'alice', 'old-pw')
    await add(file, 'bob', 'bob-pw')
    assert.equal((await runCli(['user', 'lock', 'alice', '--users', file])).code, 0)

    const r = await runCli(['user', 'passwd', 'alice', '--users', file, '--password-stdin'], {
      input: 'new-pw\n',
    })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /still locked/)
    const alice = readUsersFile(file).get('alice')!
    assert.equal(alice.isLocked, true)
    assert.equal(verifyPassword('new-pw', alice.hash), true)
    assert.equal(verifyPassword('bob-pw', readUsersFile(file).get('bob')!.hash), true)
  })

  it('locks like ocpasswd -l, so ocpasswd -u unlocks it, and the reverse', async () => {
    const file = newFile()
    await add(file, 'alice', 'pw')
    const original = fs.readFileSync(file, 'utf8')

    assert.match(
      (await runCli(['user', 'lock', 'alice', '--users', file])).stdout,
      /locked user alice/,
    )
    assert.match(
      (await runCli(['user', 'lock', 'alice', '--users', file])).stdout,
      /already locked/,
    )
    assert.equal(spawnSync('ocpasswd', ['-c', file, '-u', 'alice']).status, 0)
    assert.equal(fs.readFileSync(file, 'utf8'), original)

    assert.equal(spawnSync('ocpasswd', ['-c', file, '-l', 'alice']).status, 0)
    assert.match(
      (await runCli(['user', 'unlock', 'alice', '--users', file])).stdout,
      /unlocked user alice/,
    )
    assert.equal(fs.readFileSync(file, 'utf8'), original)
  })

  it('removes a user', async () => {
    const file = newFile()
    await add(file, 'alice', 'pw')
    await add(file, 'bob', 'pw')
    const r = await runCli(['user', 'remove', 'alice', '--users', file])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(
      readUsersFile(file)
        .users()
        .map((u) => u.name),
      ['bob'],
    )
  })

  it('names an unknown user, a missing file and a missing argument', async () => {
    const file = newFile('alice:*:$6$a$b\n')
    for (const verb of ['passwd', 'lock', 'unlock', 'remove']) {
      assertCleanFailure(
        await runCli(['user', verb, 'nobody', '--users', file]),
        /^Error: no user nobody in .*users\n/,
      )
      assertCleanFailure(
        await runCli(['user', verb, 'alice', '--users', join(root, 'nope')]),
        /users file .*nope does not exist/,
      )
      assertCleanFailure(await runCli(['user', verb, '--users', file]), /Missing 1 required arg/)
    }
  })
})

describe('anygate user list', () => {
  it('prints a table, and problems with line numbers on stderr', async () => {
    const file = newFile()
    await add(file, 'alice', 'pw', '--group', 'eng')
    await add(file, 'bob', 'pw')
    await runCli(['user', 'lock', 'bob', '--users', file])
    fs.appendFileSync(file, 'broken\ncarol:*:\n')

    const r = await runCli(['user', 'list', '--users', file])
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stdout,
      /^NAME\s+GROUPS\s+STATUS\s+HASH\nalice\s+eng\s+active\s+sha512-crypt\nbob\s+-\s+locked\s+sha512-crypt\ncarol\s+-\s+no password\s+-\n$/,
    )
    assert.match(r.stderr, /line 3: malformed: expected name:groups:hash, found 1 field/)
  })

  it('prints JSON with --json', async () => {
    const file = newFile()
    await add(file, 'alice', 'pw', '--group', 'eng', '--group', 'ops')
    fs.appendFileSync(file, 'broken\n')
    const r = await runCli(['user', 'list', '--users', file, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const data = JSON.parse(r.stdout)
    assert.equal(data.file, file)
    assert.deepEqual(data.users, [
      {
        name: 'alice',
        groups: ['eng', 'ops'],
        isLocked: false,
        hasPassword: true,
        hashScheme: 'sha512-crypt',
        line: 1,
      },
    ])
    assert.deepEqual(data.problems, [
      {line: 2, reason: 'malformed: expected name:groups:hash, found 1 field(s)'},
    ])
  })

  it('fails clearly on an unreadable file or an unknown flag', async () => {
    assertCleanFailure(await runCli(['user', 'list', '--users', root]), /is not a regular file/)
    assertCleanFailure(
      await runCli(['user', 'list', '--users', join(root, 'nope')]),
      /does not exist/,
    )
    assertCleanFailure(await runCli(['user', 'list', '--bogus']), /Nonexistent flag: --bogus/)
  })
})
