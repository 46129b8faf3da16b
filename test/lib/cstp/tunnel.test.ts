import assert from 'node:assert/strict'
import {EventEmitter} from 'node:events'
import type {TLSSocket} from 'node:tls'
import {afterEach, beforeEach, describe, it, mock} from 'node:test'

import {CstpType} from '../../../src/lib/cstp/constants.js'
import {encodeCstpFrame} from '../../../src/lib/cstp/encoder.js'
import {CstpTunnel, type FrameTap} from '../../../src/lib/cstp/tunnel.js'
import {createLogger} from '../../../src/lib/log/logger.js'
import type {Session} from '../../../src/lib/session/store.js'
import type {TunDevice} from '../../../src/lib/tun/device.js'

/** A socket that records what the tunnel writes; only what CstpTunnel touches. */
class FakeSocket extends EventEmitter {
  written: Buffer[] = []
  destroyed = false
  writable = true
  writableLength = 0
  write(b: Buffer) {
    this.written.push(Buffer.from(b))
    return true
  }

  setNoDelay() {}
  setTimeout() {}
  end() {
    this.writable = false
  }

  destroy() {
    this.destroyed = true
    this.writable = false
  }

  types(): number[] {
    return this.written.map((b) => b[6])
  }
}

function fakeTun(): TunDevice {
  return {
    name: 'fake0',
    start() {},
    write: () => true,
    stats: {} as TunDevice['stats'],
    close() {},
  }
}

function tunnel(socket: FakeSocket, closed: string[], tap?: FrameTap) {
  const session = {bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, ipv4: '198.19.0.2'} as unknown as Session
  const t = new CstpTunnel({
    socket: socket as unknown as TLSSocket,
    session,
    tun: fakeTun(),
    mtu: 1400,
    dpd: 30,
    idleTimeout: 0,
    log: createLogger({level: 'error', sink: () => {}}),
    onClosed: (reason) => closed.push(reason),
    tap,
  })
  t.start()
  return t
}

// The ticker runs every 10 s for a 30 s DPD. A tick that lands a hair early (timers are
// allowed to, and busy hosts skew them) once let 3×DPD of silence pass before any DPD-REQ was
// sent, so a peer was declared dead unasked (seen in CI).
describe('CstpTunnel DPD', () => {
  beforeEach(() => mock.timers.enable({apis: ['setInterval', 'Date'], now: 1_000_000}))
  afterEach(() => mock.timers.reset())

  it('asks before it declares a silent peer dead, even when ticks land early', () => {
    const socket = new FakeSocket()
    const closed: string[] = []
    tunnel(socket, closed)
    // Ticks at 10, 20, 30 … s; 60 s of silence is reached exactly on the sixth
    mock.timers.tick(60_000)
    assert.deepEqual(socket.types(), [CstpType.DpdRequest])
    mock.timers.tick(20_000)
    assert.deepEqual(closed, [])
    mock.timers.tick(10_000) // 90 s silent, the request 30 s unanswered
    assert.deepEqual(closed, ['dpd timeout'])
    assert.ok(socket.destroyed)
  })

  it('sends the DPD-REQ rather than closing when a tick comes late', () => {
    const socket = new FakeSocket()
    const closed: string[] = []
    tunnel(socket, closed)
    mock.timers.tick(59_999)
    // The sixth tick is held up for half a minute (a blocked loop): the clock is past 3×DPD
    // of silence when it runs, and nothing has asked the peer yet.
    mock.timers.setTime(1_000_000 + 90_500)
    mock.timers.tick(1)
    assert.deepEqual(closed, [])
    assert.deepEqual(socket.types(), [CstpType.DpdRequest])
  })

  it('keeps a peer that answers the DPD-REQ', () => {
    const socket = new FakeSocket()
    const closed: string[] = []
    tunnel(socket, closed)
    for (let i = 0; i < 5; i++) {
      mock.timers.tick(60_000)
      assert.equal(socket.types().at(-1), CstpType.DpdRequest)
      socket.emit('data', encodeCstpFrame(CstpType.DpdResponse))
    }

    assert.deepEqual(closed, [])
  })

  it('echoes a DPD-REQ with its payload as the response', () => {
    const socket = new FakeSocket()
    const closed: string[] = []
    const t = tunnel(socket, closed)
    socket.emit('data', encodeCstpFrame(CstpType.DpdRequest, Buffer.from('probe-1234')))
    assert.equal(socket.written.length, 1)
    assert.equal(socket.written[0][6], CstpType.DpdResponse)
    assert.equal(socket.written[0].subarray(8).toString(), 'probe-1234')
    t.close('test', false)
  })
})

describe('CstpTunnel tap', () => {
  it('shows each frame both ways, never a payload, until it declines, then none', () => {
    const socket = new FakeSocket()
    const seen: string[] = []
    let budget = 3
    const t = tunnel(socket, [], {
      frame(from, type, length) {
        seen.push(`${from} ${type} ${length}`)
        return --budget > 0
      },
    })
    socket.emit('data', encodeCstpFrame(CstpType.Keepalive))
    socket.emit('data', encodeCstpFrame(CstpType.DpdRequest, Buffer.from('probe-1234')))
    // The echo went out after the tap declined its third frame: nothing more is shown.
    socket.emit('data', encodeCstpFrame(CstpType.DpdRequest, Buffer.from('again')))
    assert.deepEqual(seen, [`client ${CstpType.Keepalive} 0`, `client ${CstpType.DpdRequest} 10`, `gateway ${CstpType.DpdResponse} 10`])
    assert.equal(socket.written.length, 2)
    t.close('test', true)
    assert.equal(seen.length, 3)
  })

  it("shows the gateway's own DISCONNECT at close", () => {
    const socket = new FakeSocket()
    const seen: string[] = []
    const t = tunnel(socket, [], {frame: (from, type, length) => seen.push(`${from} ${type} ${length}`) > 0})
    t.close('admin disconnect', true)
    assert.deepEqual(seen, [`gateway ${CstpType.Disconnect} 0`])
  })
})
