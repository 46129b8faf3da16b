import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {AnygateError} from '../../../src/lib/errors.js'
import {TUN_MAX_BATCH} from '../../../src/lib/tun/device.js'
import {createMemoryTun} from '../../../src/lib/tun/memory.js'

const HEADROOM = 8
/** An IPv4 header start (version 4, IHL 5) plus a few bytes: enough for the device. */
const ipv4 = (tag: number) => Buffer.from([0x45, 0x00, 0x00, 0x18, tag, 0xaa, 0xbb, 0xcc])
const ipv6 = () => Buffer.from([0x60, 0, 0, 0, 0, 0, 0x3a, 0x40])

describe('createMemoryTun', () => {
  it('delivers an injected packet after the headroom, in a fresh frame', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    const batches: Buffer[][] = []
    tun.start((frames, headroom) => {
      assert.equal(headroom, HEADROOM)
      batches.push(frames)
    })

    const packet = ipv4(1)
    tun.inject(packet)
    packet.fill(0)

    assert.equal(batches.length, 1)
    const [frame] = batches[0]
    assert.equal(frame.length, HEADROOM + 8)
    assert.deepEqual(frame.subarray(HEADROOM), ipv4(1))
    assert.deepEqual(tun.stats, {
      rxPackets: 1,
      rxBytes: 8,
      rxDropped: 0,
      txPackets: 0,
      txBytes: 0,
      txDropped: 0,
    })
  })

  it('gives each frame its own memory, so consumers may write into it', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    const frames: Buffer[] = []
    tun.start((batch) => frames.push(...batch))

    tun.inject(ipv4(1), ipv4(2))
    frames[0].fill(0xff)

    assert.deepEqual(frames[1].subarray(HEADROOM), ipv4(2))
  })

  it(`splits a large injection into batches of at most ${TUN_MAX_BATCH}`, () => {
    const tun = createMemoryTun('mem0', 0)
    const sizes: number[] = []
    tun.start((frames) => sizes.push(frames.length))

    tun.inject(...Array.from({length: 150}, (_, i) => ipv4(i)))

    assert.deepEqual(sizes, [64, 64, 22])
    assert.equal(tun.stats.rxPackets, 150)
  })

  it('holds packets injected before start and delivers them after start returns', async () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    tun.inject(ipv4(1), ipv4(2))
    const seen: number[] = []

    tun.start((frames) => seen.push(...frames.map((frame) => frame[HEADROOM + 4])))
    assert.deepEqual(seen, [])
    await Promise.resolve()

    assert.deepEqual(seen, [1, 2])
  })

  it('copies written packets and counts them', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    const packet = ipv6()

    assert.equal(tun.write(packet), true)
    packet.fill(0)

    assert.deepEqual(tun.written, [ipv6()])
    assert.equal(tun.stats.txPackets, 1)
    assert.equal(tun.stats.txBytes, 8)
  })

  it('drops writes while the queue is full, for non-IP bytes and after close', () => {
    const tun = createMemoryTun('mem0', HEADROOM)

    tun.isQueueFull = true
    assert.equal(tun.write(ipv4(1)), false)
    tun.isQueueFull = false
    assert.equal(tun.write(Buffer.from([0x11, 0x22])), false)
    assert.equal(tun.write(Buffer.alloc(0)), false)
    tun.close()
    assert.equal(tun.write(ipv4(1)), false)

    assert.equal(tun.stats.txDropped, 4)
    assert.deepEqual(tun.written, [])
  })

  it('stops delivering after close, and close is idempotent', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    let calls = 0
    tun.start(() => calls++)

    tun.close()
    tun.close()

    assert.equal(tun.isClosed, true)
    assert.equal(tun.inject(ipv4(1)), false)
    assert.equal(calls, 0)
    assert.throws(() => tun.start(() => {}), TypeError)
  })

  it('refuses a second start', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    tun.start(() => {})

    assert.throws(() => tun.start(() => {}), /already started/)
  })

  it('reports a failure with TUN_READ_FAILED after closing', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    const errors: AnygateError[] = []
    tun.start(
      () => {},
      (err) => errors.push(err),
    )

    tun.fail('gone')

    assert.equal(errors.length, 1)
    assert.equal(errors[0].code, 'TUN_READ_FAILED')
    assert.match(errors[0].message, /mem0.*gone/)
    assert.equal(tun.isClosed, true)
  })

  it('throws the failure when nobody listens for errors', () => {
    const tun = createMemoryTun('mem0', HEADROOM)
    tun.start(() => {})

    assert.throws(() => tun.fail(), {code: 'TUN_READ_FAILED'})
  })

  it('rejects a negative headroom', () => {
    assert.throws(() => createMemoryTun('mem0', -1), RangeError)
  })
})
