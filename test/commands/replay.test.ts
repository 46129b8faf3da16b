/**
 * `anygate replay` and `replay import` with hostile or unusable input: one `Error:` line, a
 * non-zero exit (2: nothing was compared), never a stack trace, and nothing sent anywhere.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {assertCleanFailure, ensureBuilt, runCli} from './cli.js'

// Nothing listens there: a transcript that got past the reader would fail with "cannot reach".
const TARGET = 'https://127.0.0.1:9/'
const good = {format: 'anygate-transcript', version: 1, source: 'test', recordedAt: '', placeholders: {}, rules: [], steps: []}

describe('replay command with bad input', () => {
  let dir: string
  const write = (name: string, text: string) => {
    const file = join(dir, name)
    fs.writeFileSync(file, text)
    return file
  }

  before(() => {
    ensureBuilt()
    dir = fs.mkdtempSync(join(os.tmpdir(), 'anygate-replay-'))
  })

  after(() => fs.rmSync(dir, {recursive: true, force: true}))

  const cases: [string, () => string, RegExp][] = [
    ['malformed JSON', () => write('bad.json', '{"format": "anygate-transcript", '), /is not JSON/],
    ['a wrong version', () => write('v9.json', JSON.stringify({...good, version: 9})), /transcript version 9; this anygate reads version 1/],
    ['a huge file', () => write('huge.json', ' '.repeat(8 * 1024 * 1024 + 1)), /at most 8388608/],
    ['a huge body', () => write('body.json', JSON.stringify({...good, steps: [step('x'.repeat(1024 * 1024 + 1))]})), /steps\[0\]\.request\.body: 1048577 characters, at most 1048576/],
    ['an unknown placeholder', () => write('ph.json', JSON.stringify({...good, steps: [step('<a>{{nonsense}}</a>')]})), /unknown placeholder \{\{nonsense\}\} in steps\[0\]/],
    ['a header with a line break', () => write('crlf.json', JSON.stringify({...good, steps: [{...step(''), request: {method: 'GET', path: '/', headers: [['X-A', 'a\r\nEvil: 1']], body: ''}}]})), /line break/],
    ['a missing file', () => join(dir, 'nope.json'), /cannot read .*ENOENT/],
  ]

  for (const [what, make, pattern] of cases) {
    it(`refuses ${what}`, async () => {
      const r = await runCli(['replay', make(), '--target', TARGET])
      assertCleanFailure(r, pattern)
      assert.equal(r.code, 2)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    })
  }

  it('asks for --user when the transcript logs in', async () => {
    const file = write('login.json', JSON.stringify({...good, steps: [step('<config-auth type="auth-reply"><auth><username>{{user}}</username></auth></config-auth>')]}))
    const r = await runCli(['replay', file, '--target', TARGET])
    assertCleanFailure(r, /give --user NAME/)
  })

  it('exits 2 when the target cannot be reached', async () => {
    const r = await runCli(['replay', write('empty.json', JSON.stringify(good)), '--target', TARGET])
    assertCleanFailure(r, /cannot reach 127\.0\.0\.1:9: connection refused/)
    assert.equal(r.code, 2)
  })

  it('import refuses a log with no HTTP exchange', async () => {
    const r = await runCli(['replay', 'import', write('not-a-log.txt', 'hello\nworld\n')])
    assertCleanFailure(r, /no HTTP exchange found .*--dump-http-traffic -vv/)
  })

  it('import writes a transcript the reader accepts, without the password', async () => {
    const out = join(dir, 'imported.json')
    const r = await runCli(['replay', 'import', new URL('../fixtures/openconnect-ocserv-dump.log', import.meta.url).pathname, '--output', out])
    assert.equal(r.code, 0, r.stderr)
    const text = fs.readFileSync(out, 'utf8')
    assert.ok(!text.includes('pr0be pass'))
    assert.equal(JSON.parse(text).steps.length, 4)
  })
})

function step(body: string) {
  return {kind: 'http', request: {method: 'POST', path: '/', headers: [], body}, response: {status: 200, statusText: 'OK', headers: [], body: ''}}
}
