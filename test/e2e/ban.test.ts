/**
 * Ban scoring with the real openconnect: failed logins from the client's address add up to a
 * ban, after which even the right password gets no TLS connection; `anygate ban list` shows
 * the address and `anygate ban remove` lets it in again.
 */
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ensureBuilt, runCli} from '../commands/cli.js'
import {startAnygate} from './harness/anygate.js'
import {type TestNet, createTestNet} from './harness/netns.js'
import type {GatewayHandle} from './harness/ocserv.js'
import {authenticateOnly} from './harness/openconnect.js'
import {skipUnlessReady} from './harness/wait.js'

const skip = skipUnlessReady(['ip', 'openconnect', 'ocpasswd'])

interface Ban {
  address: string
  score: number
  banned: boolean
  until: string
}

describe('ban scoring against openconnect', {skip}, () => {
  let net: TestNet
  let gw: GatewayHandle
  let stateDir: string

  before(async () => {
    ensureBuilt()
    net = await createTestNet()
    gw = await startAnygate(net, {
      users: [{name: 'alice', password: 'correct horse'}],
      extraArgs: ['--max-ban-score', '30', '--ban-points-wrong-password', '10', '--ban-reset-time', '600'],
    })
    stateDir = join(net.dir, 'anygate', 'state')
  })

  after(async () => {
    await net?.destroy()
  })

  const attempt = (password: string) =>
    authenticateOnly(net, {url: gw.url, user: 'alice', password, servercert: gw.servercert, timeoutMs: 20_000})
  const bans = async () => {
    const r = await runCli(['ban', 'list', '--json', '--state-dir', stateDir])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as Ban[]
  }

  it('bans the client address after three failed logins and lifts it on ban remove', async () => {
    for (let i = 1; i <= 2; i++) {
      const r = await attempt('wrong')
      assert.notEqual(r.code, 0)
      assert.match(r.output, /Login failed/)
    }

    assert.deepEqual((await bans()).map((b) => [b.address, b.score, b.banned]), [[net.client.address, 20, false]])
    assert.notEqual((await attempt('wrong')).code, 0)
    assert.match(gw.log(), new RegExp(`WARN  address banned remote=${net.client.address.replace(/\./g, '\\.')} score=30`))
    const [ban] = await bans()
    assert.deepEqual([ban.address, ban.score, ban.banned], [net.client.address, 30, true])
    assert.ok(Date.parse(ban.until) > Date.now() + 590_000, ban.until)

    // Banned: the right password does not help, the connection ends before TLS
    const refused = await attempt('correct horse')
    assert.notEqual(refused.code, 0)
    assert.doesNotMatch(refused.output, /COOKIE=/)

    const lifted = await runCli(['ban', 'remove', net.client.address, '--state-dir', stateDir])
    assert.equal(lifted.code, 0, lifted.stderr)
    assert.deepEqual(await bans(), [])
    const ok = await attempt('correct horse')
    assert.equal(ok.code, 0, ok.output)
    assert.match(ok.output, /COOKIE=/)
  })

  it('says so in one line when the address has no ban', async () => {
    const r = await runCli(['ban', 'remove', '198.18.255.254', '--state-dir', stateDir])
    assert.notEqual(r.code, 0)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  })
})
