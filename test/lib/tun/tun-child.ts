/**
 * Child process for native.test.ts, run inside a throwaway network namespace
 * (`ip netns exec NS node --import tsx tun-child.ts MODE ...`). It speaks JSON lines on
 * stdout, one object with an `event` field per line, and takes one command per stdin line.
 *
 *   serve NAME HEADROOM MTU   open NAME, configure 198.18.0.1 peer 198.18.0.2, answer ICMP
 *                             echo, then obey: stats | throw-next | flood N | oversize |
 *                             reopen | configure-missing | close
 *   try-open NAME             open and close NAME once, report what happened, exit
 */

import {execFileSync} from 'node:child_process'
import {createSocket} from 'node:dgram'
import {createInterface} from 'node:readline'
import {setImmediate as nextTurn, setTimeout as sleep} from 'node:timers/promises'

import {AnygateError} from '../../../src/lib/errors.js'
import type {TunDevice} from '../../../src/lib/tun/device.js'
import {configureTun} from '../../../src/lib/tun/ip.js'
import {openTun} from '../../../src/lib/tun/native.js'

const LOCAL_V4 = '198.18.0.1'
const PEER_V4 = '198.18.0.2'
const FLOOD_PORT = 9999
const FLOOD_PAYLOAD_BYTES = 1200
const FLOOD_BURST = 100
const FLOOD_IN_FLIGHT = 200
const FLOOD_WAIT_MS = 5000

const IPV4_PROTO_ICMP = 1
const IPV4_PROTO_UDP = 17
const ICMP_ECHO_REQUEST = 8
const ICMP_ECHO_REPLY = 0
const UDP_HEADER_LEN = 8
const IPV4_UDP_HEADERS_LEN = 20 + UDP_HEADER_LEN

const say = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({event, ...fields})}\n`)

const errorFields = (err: unknown) =>
  err instanceof AnygateError
    ? {code: err.code, message: err.message}
    : {code: 'UNEXPECTED', message: String(err)}

interface FloodFrame {
  seq: number
  frame: Buffer
  copy: Buffer
}

/** What the serve mode saw: every frame kept, so overwrites would show at the end. */
class Observer {
  badFrames = 0
  maxBatch = 0
  echoes = 0
  flood: FloodFrame[] = []
  willThrow = false

  constructor(
    private readonly tun: TunDevice,
    private readonly headroom: number,
  ) {}

  onPackets(frames: Buffer[], headroom: number): void {
    if (this.willThrow) {
      this.willThrow = false
      throw new Error('consumer failed on purpose')
    }
    this.maxBatch = Math.max(this.maxBatch, frames.length)
    if (headroom !== this.headroom) this.badFrames += frames.length
    for (const frame of frames) this.onFrame(frame)
  }

  private onFrame(frame: Buffer): void {
    const packet = frame.subarray(this.headroom)
    if (packet[0] >> 4 !== 4) return
    if (packet.readUInt16BE(2) !== packet.length) this.badFrames++

    const ihl = (packet[0] & 0x0f) * 4
    if (packet[9] === IPV4_PROTO_ICMP && packet[ihl] === ICMP_ECHO_REQUEST) {
      this.echo(packet, ihl)
      return
    }
    if (packet[9] === IPV4_PROTO_UDP && packet.readUInt16BE(ihl + 2) === FLOOD_PORT) {
      const seq = packet.readUInt32BE(ihl + UDP_HEADER_LEN)
      this.flood.push({seq, frame, copy: Buffer.from(frame)})
    }
  }

  /** Turns the request into its reply in place: the frame is ours to write. */
  private echo(packet: Buffer, ihl: number): void {
    const src = Buffer.from(packet.subarray(12, 16))
    packet.copy(packet, 12, 16, 20)
    src.copy(packet, 16)
    packet[ihl] = ICMP_ECHO_REPLY
    packet.writeUInt16BE(0, ihl + 2)
    packet.writeUInt16BE(internetChecksum(packet.subarray(ihl)), ihl + 2)
    if (this.tun.write(packet)) this.echoes++
  }
}

/** RFC 1071 one's-complement sum. */
function internetChecksum(bytes: Buffer): number {
  let sum = 0
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i)
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1] << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

const floodPayload = (seq: number) => {
  const payload = Buffer.alloc(FLOOD_PAYLOAD_BYTES)
  for (let i = 4; i < payload.length; i++) payload[i] = (seq + i) & 0xff
  payload.writeUInt32BE(seq, 0)
  return payload
}

async function flood(observer: Observer, count: number): Promise<void> {
  observer.flood = []
  const socket = createSocket('udp4')
  const deadline = Date.now() + FLOOD_WAIT_MS
  for (let seq = 0; seq < count && Date.now() < deadline; seq += FLOOD_BURST) {
    const burst = Array.from({length: Math.min(FLOOD_BURST, count - seq)}, (_, i) => seq + i)
    await Promise.all(burst.map((n) => sendTo(socket, floodPayload(n))))
    // The device reads at most 64 packets per loop turn and send callbacks may all run as
    // nextTicks: wait for the reader, or the kernel queue (500 packets) overflows.
    const sent = seq + burst.length
    while (sent - observer.flood.length > FLOOD_IN_FLIGHT && Date.now() < deadline) {
      await nextTurn()
    }
  }
  socket.close()

  while (observer.flood.length < count && Date.now() < deadline) await sleep(10)

  const intact = observer.flood.filter(({seq, frame, copy}) => {
    const payload = frame.subarray(frame.length - FLOOD_PAYLOAD_BYTES)
    return frame.equals(copy) && payload.equals(floodPayload(seq))
  })
  const seqs = new Set(observer.flood.map(({seq}) => seq))
  const arenas = new Set(observer.flood.map(({frame}) => frame.buffer)).size
  say('flood', {sent: count, received: observer.flood.length, distinct: seqs.size, arenas})
  say('flood-check', {intact: intact.length, maxBatch: observer.maxBatch})
}

/**
 * Raises the interface MTU past the device's, sends one datagram that only fits the new MTU
 * and one that fits both, then restores the MTU.
 */
async function oversize(tun: TunDevice, observer: Observer, mtu: number): Promise<void> {
  observer.flood = []
  const droppedBefore = tun.stats.rxDropped
  execFileSync('ip', ['link', 'set', 'dev', tun.name, 'mtu', String(mtu + 100)])
  const socket = createSocket('udp4')
  await sendTo(socket, Buffer.alloc(mtu + 50 - IPV4_UDP_HEADERS_LEN))
  await sendTo(socket, floodPayload(1))
  socket.close()
  await sleep(200)
  execFileSync('ip', ['link', 'set', 'dev', tun.name, 'mtu', String(mtu)])

  const dropped = tun.stats.rxDropped - droppedBefore
  say('oversize', {dropped, delivered: observer.flood.map(({frame}) => frame.length)})
}

const sendTo = (socket: ReturnType<typeof createSocket>, payload: Buffer) =>
  new Promise<void>((resolve, reject) =>
    socket.send(payload, FLOOD_PORT, PEER_V4, (err) => (err ? reject(err) : resolve())),
  )

async function serve(name: string, headroom: number, mtu: number): Promise<void> {
  const tun = openTun({name, headroom, mtu})
  await configureTun(tun.name, {localV4: LOCAL_V4, peerV4: PEER_V4, mtu})
  const observer = new Observer(tun, headroom)
  process.on('uncaughtException', (err) => say('uncaught', {message: err.message}))
  tun.start(
    (frames, room) => observer.onPackets(frames, room),
    (err) => say('error', errorFields(err)),
  )
  say('ready', {name: tun.name})

  for await (const line of createInterface({input: process.stdin})) {
    const [cmd, arg] = line.trim().split(/\s+/)
    await obey(cmd, arg, tun, observer, mtu)
  }
}

async function obey(cmd: string, arg: string, tun: TunDevice, obs: Observer, mtu: number) {
  switch (cmd) {
    case 'stats':
      return say('stats', {stats: tun.stats, badFrames: obs.badFrames, echoes: obs.echoes})
    case 'throw-next':
      obs.willThrow = true
      return say('throw-armed')
    case 'flood':
      return flood(obs, Number(arg))
    case 'oversize':
      return oversize(tun, obs, mtu)
    case 'reopen':
      return attempt('reopen', () => openTun({name: tun.name, headroom: 0, mtu}).close())
    case 'configure-missing':
      return attempt('configure-missing', () =>
        configureTun('agnone0', {localV4: LOCAL_V4, peerV4: PEER_V4, mtu}),
      )
    case 'close': {
      tun.close()
      tun.close()
      const writeAfterClose = tun.write(Buffer.from([0x45, 0, 0, 20]))
      return say('closed', {writeAfterClose, stats: tun.stats})
    }
    default:
      return say('unknown', {cmd})
  }
}

async function attempt(event: string, action: () => unknown): Promise<void> {
  try {
    await action()
    say(event, {code: null})
  } catch (err) {
    say(event, errorFields(err))
  }
}

function tryOpen(name: string): void {
  try {
    const tun = openTun({name, headroom: 0, mtu: 1400})
    say('opened', {name: tun.name})
    tun.close()
  } catch (err) {
    say('open-failed', errorFields(err))
  }
}

const [mode, name, headroom, mtu] = process.argv.slice(2)
if (mode === 'serve') {
  serve(name, Number(headroom), Number(mtu)).catch((err) => {
    say('fatal', errorFields(err))
    process.exitCode = 1
  })
} else if (mode === 'try-open') {
  tryOpen(name)
} else {
  say('fatal', {code: 'USAGE', message: `unknown mode ${mode}`})
  process.exitCode = 2
}
