import assert from 'node:assert/strict'
import {execFile, spawn, type ChildProcessWithoutNullStreams} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {after, before, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {deleteLink, linkExists} from '../../../src/lib/tun/ip.js'
import {findPackageRoot, loadTunAddon, openTun} from '../../../src/lib/tun/native.js'

const run = promisify(execFile)
const ROOT = findPackageRoot(fileURLToPath(import.meta.url))
const CHILD = fileURLToPath(new URL('tun-child.ts', import.meta.url))
const PEER_V4 = '198.18.0.2'
const HEADROOM = 8
const MTU = 1400
const EVENT_TIMEOUT_MS = 15_000
const NOBODY = 65534

describe('findPackageRoot', () => {
  it('finds the directory holding package.json above a source file', () => {
    assert.ok(existsSync(join(ROOT, 'package.json')))
    assert.equal(findPackageRoot(join(ROOT, 'src', 'lib', 'tun', 'native.ts')), ROOT)
  })

  it('throws TUN_ADDON_MISSING when no package.json is above', () => {
    assert.throws(() => findPackageRoot('/proc/self/status'), {code: 'TUN_ADDON_MISSING'})
  })
})

describe('loadTunAddon', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'anygate-tun-'))
  after(() => rmSync(scratch, {recursive: true, force: true}))

  it('throws TUN_ADDON_MISSING with the build hint when the file is absent', () => {
    const file = join(scratch, 'absent.node')

    assert.throws(() => loadTunAddon(file), {
      code: 'TUN_ADDON_MISSING',
      message: /absent\.node.*npm run build:native/,
    })
  })

  it('throws TUN_ADDON_LOAD_FAILED for a file that is not an addon', () => {
    const file = join(scratch, 'garbage.node')
    writeFileSync(file, 'not an ELF object')

    assert.throws(() => loadTunAddon(file), {code: 'TUN_ADDON_LOAD_FAILED'})
  })

  it('throws TUN_ADDON_LOAD_FAILED for a module without the tun functions', () => {
    const file = join(scratch, 'stale.cjs')
    writeFileSync(file, 'module.exports = {open() {}}')

    assert.throws(() => loadTunAddon(file), {
      code: 'TUN_ADDON_LOAD_FAILED',
      message: /lacks readBatch, write, watch, close/,
    })
  })
})

describe('openTun option checks', () => {
  // These fail before the kernel is asked, so they are safe outside a namespace.
  it('rejects a headroom or mtu out of range with RangeError', () => {
    assert.throws(() => openTun({headroom: -1, mtu: MTU}), RangeError)
    assert.throws(() => openTun({headroom: 1.5, mtu: MTU}), RangeError)
    assert.throws(() => openTun({headroom: HEADROOM, mtu: 67}), RangeError)
    assert.throws(() => openTun({headroom: HEADROOM, mtu: 65536}), RangeError)
  })

  it('rejects an interface name the kernel would refuse with TUN_OPEN_FAILED', () => {
    for (const name of ['', 'way-too-long-name', 'a b', 'a/b', 'a:b', '..']) {
      assert.throws(() => openTun({name, headroom: HEADROOM, mtu: MTU}), {
        code: 'TUN_OPEN_FAILED',
      })
    }
  })
})

const realSkip = realDeviceSkipReason()

function realDeviceSkipReason(): string | false {
  if (process.platform !== 'linux') return 'needs Linux'
  if (process.getuid?.() !== 0) return 'needs root (creates a network namespace and a tun device)'
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun'
  return false
}

/** One child in the namespace, read as JSON lines. */
class Child {
  readonly lines: Record<string, unknown>[] = []
  stderr = ''
  /** The exit code, once the process ended and its output was read to the end. */
  readonly exited: Promise<number | null>
  #hasEnded = false
  #waiters: (() => void)[] = []

  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    proc.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk))
    createInterface({input: proc.stdout}).on('line', (line) => this.#take(line))
    this.exited = new Promise((resolve) =>
      proc.on('close', (code) => {
        this.#hasEnded = true
        resolve(code)
      }),
    )
  }

  /** The exit code, or 'still running' when it has not ended within the timeout. */
  async exitCode(): Promise<number | null | 'still running'> {
    const timeout = new Promise<'still running'>((resolve) =>
      setTimeout(resolve, EVENT_TIMEOUT_MS, 'still running').unref(),
    )
    return Promise.race([this.exited, timeout])
  }

  send(line: string): void {
    this.proc.stdin.write(`${line}\n`)
  }

  /** The first line with `event` not yet consumed; fails after a timeout with stderr shown. */
  async next(event: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + EVENT_TIMEOUT_MS
    for (;;) {
      const index = this.lines.findIndex((line) => line.event === event)
      if (index >= 0) return this.lines.splice(index, 1)[0]
      if (Date.now() > deadline || this.#hasEnded) {
        assert.fail(`no ${event} from child; lines ${JSON.stringify(this.lines)}; ${this.stderr}`)
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
  }

  #take(line: string): void {
    this.lines.push(JSON.parse(line) as Record<string, unknown>)
    for (const wake of this.#waiters.splice(0)) wake()
  }
}

describe('openTun on a real device', {skip: realSkip}, () => {
  const netns = `ag-tun-${process.pid}-${randomBytes(3).toString('hex')}`
  const children: Child[] = []
  let server: Child

  const spawnChild = (args: string[], asNobody = false) => {
    const ids = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups']
    const drop = asNobody ? ['setpriv', ...ids] : []
    const argv = ['netns', 'exec', netns, ...drop, process.execPath, '--import', 'tsx', CHILD]
    const child = new Child(spawn('ip', [...argv, ...args], {cwd: ROOT}))
    children.push(child)
    return child
  }

  before(async () => {
    await run('ip', ['netns', 'add', netns])
    server = spawnChild(['serve', 'agtun0', String(HEADROOM), String(MTU)])
    const ready = await server.next('ready')
    assert.equal(ready.name, 'agtun0')
  })

  after(async () => {
    for (const {proc} of children) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    }
    await Promise.all(children.map((child) => child.exited))
    await run('ip', ['netns', 'delete', netns]).catch(() => {})
  })

  it('answers ping through the device: 3 sent, 3 received', async () => {
    const ping = ['netns', 'exec', netns, 'ping', '-c', '3', '-i', '0.2', '-W', '1', PEER_V4]
    const {stdout} = await run('ip', ping)

    assert.match(stdout, /3 packets transmitted, 3 received/)
    server.send('stats')
    const {stats, badFrames, echoes} = await server.next('stats')
    assert.equal(badFrames, 0)
    assert.ok((echoes as number) >= 3, `echoes ${echoes}`)
    assert.ok((stats as {txPackets: number}).txPackets >= 3)
  })

  it('sends a consumer throw to uncaughtException and keeps reading', async () => {
    server.send('throw-next')
    await server.next('throw-armed')
    const pingOnce = ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '1', PEER_V4]
    await run('ip', pingOnce).catch(() => {})

    const {message} = await server.next('uncaught')
    assert.equal(message, 'consumer failed on purpose')
    const {stdout} = await run('ip', pingOnce)
    assert.match(stdout, /1 packets transmitted, 1 received/)
    assert.equal(server.lines.filter(({event}) => event === 'uncaught').length, 0)
  })

  it('keeps every handed-out frame intact while arenas are refilled', async () => {
    const count = 3000
    server.send(`flood ${count}`)

    const {sent, received, distinct, arenas} = await server.next('flood')
    assert.deepEqual({sent, received, distinct}, {sent: count, received: count, distinct: count})
    assert.ok((arenas as number) > 1, `arenas ${arenas}`)
    const check = await server.next('flood-check')
    assert.equal(check.intact, count)
    assert.ok((check.maxBatch as number) <= 64, `maxBatch ${check.maxBatch}`)
  })

  it('drops and counts a packet longer than its mtu instead of truncating it', async () => {
    server.send('oversize')

    const {dropped, delivered} = await server.next('oversize')
    assert.equal(dropped, 1)
    assert.deepEqual(delivered, [HEADROOM + 20 + 8 + 1200])
  })

  it('refuses a second open of a name in use with TUN_OPEN_FAILED', async () => {
    server.send('reopen')

    const {code, message} = await server.next('reopen')
    assert.equal(code, 'TUN_OPEN_FAILED')
    assert.match(message as string, /agtun0.*in use/)
  })

  it('reports ip stderr as TUN_CONFIG_FAILED', async () => {
    server.send('configure-missing')

    const {code, message} = await server.next('configure-missing')
    assert.equal(code, 'TUN_CONFIG_FAILED')
    assert.match(message as string, /agnone0.*(Cannot find device|does not exist)/)
  })

  it('lets the kernel pick a name from a %d pattern', async () => {
    const child = spawnChild(['try-open', 'agk%d'])

    const opened = await child.next('opened')
    assert.match(opened.name as string, /^agk\d+$/)
    assert.equal(await child.exitCode(), 0)
  })

  it('fails with TUN_NOT_PERMITTED without CAP_NET_ADMIN', async () => {
    const child = spawnChild(['try-open', 'agperm0'], true)

    const {code, message} = await child.next('open-failed')
    assert.equal(code, 'TUN_NOT_PERMITTED')
    assert.match(message as string, /CAP_NET_ADMIN/)
    assert.equal(await linkExists('agperm0', {netns}), false)
  })

  it('reports TUN_READ_FAILED and closes when the interface is deleted under it', async () => {
    const child = spawnChild(['serve', 'agtun1', String(HEADROOM), String(MTU)])
    await child.next('ready')

    assert.equal(await deleteLink('agtun1', {netns}), true)
    const {code} = await child.next('error')
    assert.equal(code, 'TUN_READ_FAILED')

    child.proc.stdin.end()
    assert.equal(await child.exitCode(), 0, 'a closed device must not keep the loop alive')
  })

  it('removes the interface on close and then lets the process exit', async () => {
    assert.equal(await linkExists('agtun0', {netns}), true)

    server.send('close')
    const {writeAfterClose} = await server.next('closed')
    assert.equal(writeAfterClose, false)
    assert.equal(server.proc.exitCode, null, 'the child must still run')
    assert.equal(await linkExists('agtun0', {netns}), false)

    server.proc.stdin.end()
    assert.equal(await server.exitCode(), 0)
  })
})
