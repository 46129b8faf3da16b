/**
 * `anygate session …` and `anygate status` without a serve to talk to: one line, non-zero
 * exit, no stack trace, no hang. The commands against a real serve are in
 * test/e2e/session.test.ts.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {assertCleanFailure, ensureBuilt, runCli} from './cli.js'

let root: string
before(() => {
  ensureBuilt()
  root = fs.mkdtempSync(join(tmpdir(), 'anygate-sessioncmd-'))
})
after(() => fs.rmSync(root, {recursive: true, force: true}))

const oneLine = (stderr: string) => assert.equal(stderr.trim().split('\n').length, 1, stderr)

describe('anygate session, ban and status with no serve running', () => {
  const commands = [['status'], ['session', 'list'], ['session', 'show', 'abc'], ['session', 'disconnect', '--user', 'alice'], ['ban', 'list'], ['ban', 'remove', '198.18.0.7']]
  for (const args of commands) {
    it(`${args.join(' ')} says so in one line and exits 1`, async () => {
      const r = await runCli([...args, '--state-dir', join(root, 'empty')])
      assertCleanFailure(r, /anygate serve is not running: no control socket at .*empty\/control\.sock/)
      assert.equal(r.code, 1)
      oneLine(r.stderr)
    })
  }

  it('recognises a socket left by a serve that died', async () => {
    const file = join(root, 'stale.sock')
    const script = `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`
    spawnSync(process.execPath, ['-e', script])
    assert.ok(fs.lstatSync(file).isSocket())
    const r = await runCli(['session', 'list', '--json', '--control-socket', file])
    assertCleanFailure(r, /not running: nothing answers on .*stale\.sock/)
    oneLine(r.stderr)
    // --json: the failure is JSON on stdout as well
    assert.equal(JSON.parse(r.stdout).error.code, 'CONTROL_NOT_RUNNING')
  })

  it('uses $ANYGATE_STATE_DIR for the default socket', async () => {
    const r = await runCli(['status'], {env: {ANYGATE_STATE_DIR: join(root, 'from-env')}})
    assertCleanFailure(r, /no control socket at .*from-env\/control\.sock/)
  })

  it('needs exactly one of a session id and --user for disconnect', async () => {
    assertCleanFailure(await runCli(['session', 'disconnect']), /give a session id or --user NAME/)
    assertCleanFailure(await runCli(['session', 'disconnect', 'abc', '--user', 'bob']), /give a session id or --user NAME/)
  })

  it('refuses --state-dir together with --control-socket', async () => {
    const r = await runCli(['session', 'list', '--state-dir', root, '--control-socket', join(root, 'x')])
    assertCleanFailure(r, /cannot also be provided/)
  })
})
