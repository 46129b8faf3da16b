import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {BanList, normalizeAddress} from '../../../src/lib/http-auth/ban.js'

function clock(start = 1_000_000) {
  const c = {t: start, now: () => c.t}
  return c
}

describe('BanList', () => {
  it('bans an address when its score reaches the maximum, for the reset time after the last point', () => {
    const c = clock()
    const bans = new BanList({maxScore: 30, resetSeconds: 60}, c.now)
    assert.equal(bans.add('198.18.0.2', 10), false)
    assert.equal(bans.add('198.18.0.2', 10), false)
    assert.equal(bans.isBanned('198.18.0.2'), false)
    assert.equal(bans.add('198.18.0.2', 10), true)
    assert.equal(bans.isBanned('198.18.0.2'), true)
    assert.equal(bans.isBanned('198.18.0.3'), false)
    // Only the crossing reports true; more points while banned do not extend it
    assert.equal(bans.add('198.18.0.2', 10), false)

    c.t += 59_999
    assert.equal(bans.isBanned('198.18.0.2'), true)
    c.t += 1
    assert.equal(bans.isBanned('198.18.0.2'), false)
    assert.deepEqual(bans.list(), [])
  })

  it('forgets a score that got no new points for the reset time', () => {
    const c = clock()
    const bans = new BanList({maxScore: 30, resetSeconds: 60}, c.now)
    bans.add('198.18.0.2', 20)
    c.t += 60_000
    assert.equal(bans.add('198.18.0.2', 20), false, 'the old 20 expired, so 20 is not 40')
    assert.deepEqual(
      bans.list().map((b) => [b.address, b.score, b.banned]),
      [['198.18.0.2', 20, false]],
    )
  })

  it('counts an IPv4-mapped address and its plain form as one client', () => {
    const bans = new BanList({maxScore: 20, resetSeconds: 60})
    assert.equal(normalizeAddress('::ffff:198.18.0.2'), '198.18.0.2')
    assert.equal(normalizeAddress('2001:db8::1'), '2001:db8::1')
    bans.add('::ffff:198.18.0.2', 10)
    assert.equal(bans.add('198.18.0.2', 10), true)
    assert.equal(bans.isBanned('::ffff:198.18.0.2'), true)
  })

  it('lists banned addresses first with when they end, and lifts one on remove', () => {
    const c = clock(Date.parse('2026-12-03T00:00:00Z'))
    const bans = new BanList({maxScore: 20, resetSeconds: 600}, c.now)
    bans.add('198.18.0.9', 10)
    bans.add('198.18.0.2', 10)
    bans.add('198.18.0.2', 10)
    assert.deepEqual(bans.list(), [
      {address: '198.18.0.2', score: 20, banned: true, until: '2026-12-03T00:10:00.000Z'},
      {address: '198.18.0.9', score: 10, banned: false, until: '2026-12-03T00:10:00.000Z'},
    ])
    assert.equal(bans.bannedCount, 1)
    assert.equal(bans.remove('198.18.0.2'), true)
    assert.equal(bans.isBanned('198.18.0.2'), false)
    assert.equal(bans.remove('198.18.0.2'), false)
  })

  it('does nothing when banning is off or points are zero', () => {
    const off = new BanList({maxScore: 0, resetSeconds: 60})
    assert.equal(off.add('198.18.0.2', 1000), false)
    assert.deepEqual(off.list(), [])
    const on = new BanList({maxScore: 10, resetSeconds: 60})
    assert.equal(on.add('198.18.0.2', 0), false)
    assert.equal(on.add(undefined, 10), false)
    assert.deepEqual(on.list(), [])
  })

  it('keeps at most its entry limit, forgetting the address scored longest ago', () => {
    const c = clock()
    const bans = new BanList({maxScore: 100, resetSeconds: 600}, c.now, 3)
    for (const last of [1, 2, 3]) {
      bans.add(`198.18.0.${last}`, 10)
      c.t += 1
    }

    bans.add('198.18.0.1', 10) // refreshed: now the newest
    bans.add('198.18.0.4', 10)
    assert.deepEqual(bans.list().map((b) => b.address).sort(), ['198.18.0.1', '198.18.0.3', '198.18.0.4'])
  })

  it('takes new limits on configure, keeping scores', () => {
    const bans = new BanList({maxScore: 100, resetSeconds: 600})
    bans.add('198.18.0.2', 30)
    bans.configure({maxScore: 40, resetSeconds: 600})
    assert.equal(bans.add('198.18.0.2', 10), true)
  })
})
