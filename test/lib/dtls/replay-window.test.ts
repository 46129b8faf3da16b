import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {REPLAY_WINDOW_SIZE, ReplayWindow} from '../../../src/lib/dtls/replay-window.js'

describe('ReplayWindow', () => {
  it('accepts the first record at any sequence number, then refuses it again', () => {
    const w = new ReplayWindow()
    assert.ok(w.check(1000))
    w.accept(1000)
    assert.equal(w.check(1000), false)
  })

  it('accepts reordering inside 64 records and refuses duplicates there', () => {
    const w = new ReplayWindow()
    for (const seq of [10, 12, 11, 40, 33]) {
      assert.ok(w.check(seq), `seq ${seq}`)
      w.accept(seq)
    }

    for (const seq of [10, 11, 12, 33, 40]) assert.equal(w.check(seq), false, `dup ${seq}`)
    assert.ok(w.check(13))
    assert.ok(w.check(39))
  })

  it('refuses records more than 63 behind the newest', () => {
    const w = new ReplayWindow()
    w.accept(100)
    assert.equal(w.check(100 - REPLAY_WINDOW_SIZE), false)
    assert.ok(w.check(100 - REPLAY_WINDOW_SIZE + 1))
  })

  it('keeps its memory across the 32-bit halves of the map and far jumps', () => {
    const w = new ReplayWindow()
    w.accept(5)
    w.accept(5 + 40) // 5 moves into the upper half
    assert.equal(w.check(5), false)
    assert.ok(w.check(6))
    w.accept(6)
    w.accept(5 + 63)
    assert.equal(w.check(6), false)
    w.accept(1_000_000) // a jump forward is always accepted and clears the map
    assert.ok(w.check(999_999))
    assert.equal(w.check(1_000_000), false)
  })

  it('handles 48-bit sequence numbers', () => {
    const w = new ReplayWindow()
    const top = 2 ** 48 - 2
    w.accept(top - 1)
    w.accept(top)
    assert.equal(w.check(top - 1), false)
    assert.ok(w.check(top - 2))
  })
})
