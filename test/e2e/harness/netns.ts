/**
 * Two network namespaces joined by a veth pair, for end-to-end runs against real peers.
 *
 * The server side gets 198.18.X.1/24 and the client side 198.18.X.2/24; 198.19.X.0/24 is handed
 * out as the VPN pool. Both addresses and all names are random per run, so parallel runs never
 * meet. The veth pair is created straight inside the namespaces and never appears in the host's
 * own namespace. Every process goes through `spawn`, which makes it a process-group leader, so
 * `destroy` can end it and whatever it forked; anything else still inside the namespaces (they
 * are ours alone) is ended too. Nets still alive at exit or on SIGINT/SIGTERM/SIGHUP are torn
 * down synchronously.
 */
import {spawn as spawnChild, spawnSync, type ChildProcess} from 'node:child_process'
import {randomBytes, randomInt} from 'node:crypto'
import {accessSync, constants as fsConstants, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

/** One end of the veth link. */
export interface NetSide {
  /** The network namespace's name, as `ip netns` knows it. */
  ns: string
  /** The veth interface inside `ns`. */
  ifname: string
  /** IPv4 address of `ifname`, without the prefix length. */
  address: string
  prefixLength: number
}

// Not yet: an IPv6 pool and IPv6 on the veth, so the IPv6 data path goes untested end to end.
/** The IPv4 network a gateway under test hands out to its clients. */
export interface VpnPool {
  /** `198.19.X.0/24` */
  cidr: string
  network: string
  prefixLength: number
  /** `198.19.X.1`: where gateways put their own end of each tunnel. */
  firstHost: string
}

/** A namespace given by name, or one side of a `TestNet`. */
export type NsRef = string | NetSide

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ExecResult extends ExitInfo {
  stdout: string
  stderr: string
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Written to stdin, which is then closed. Without it stdin is `/dev/null`. */
  input?: string
}

export interface ExecOptions extends SpawnOptions {
  /** Kill the process group and reject after this long; default 30 s. */
  timeoutMs?: number
  /** Resolve with the exit status instead of rejecting on a non-zero exit. */
  allowFailure?: boolean
}

export interface CreateTestNetOptions {
  /** The X in 198.18.X.0/24 and 198.19.X.0/24; random when absent. */
  subnet?: number
  /**
   * Keep the temp dir after `destroy` (logs, configs), and say where it is on stderr. Default:
   * on when the environment has ANYGATE_TEST_KEEP=1 (see DEVELOPERS.md).
   */
  keepDir?: boolean
}

export interface AddressInfo {
  ifname: string
  local: string
  prefixLength: number
  /** The other end of a point-to-point link, when the kernel records one. */
  peer?: string
}

const OUTPUT_CAP = 8 * 1024 * 1024
const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGTERM: 143,
}

const liveNets = new Set<TestNet>()
let isExitHookInstalled = false

/**
 * A process started inside a namespace by `TestNet.spawn`. Output is kept in memory (the last
 * 8 MiB of each stream) for assertions and failure messages.
 */
export class NetProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Settles once, when the process has exited; never rejects. */
  readonly exited: Promise<ExitInfo>
  private out = ''
  private err = ''
  private all = ''
  private exitInfo?: ExitInfo
  /** Set at 'exit', when the pid is reaped and must not be signalled any more. */
  private isReaped = false

  constructor(child: ChildProcess) {
    child.once('error', () => {})
    if (child.pid === undefined) throw new Error(`${child.spawnargs.join(' ')}: did not start`)

    this.child = child
    this.pid = child.pid
    child.stdout?.setEncoding('utf8')
    child.stderr?.setEncoding('utf8')
    child.stdout?.on('data', (chunk: string) => {
      this.out = capped(this.out + chunk)
      this.all = capped(this.all + chunk)
    })
    child.stderr?.on('data', (chunk: string) => {
      this.err = capped(this.err + chunk)
      this.all = capped(this.all + chunk)
    })
    // 'exit' is the truth; 'close' (all output read) follows unless a forked child still holds
    // the pipes, so it gets a short grace period.
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.isReaped = true
        const info = {code, signal}
        const settle = () => {
          clearTimeout(timer)
          this.exitInfo = info
          resolve(info)
        }
        const timer = setTimeout(settle, 200)
        child.once('close', settle)
      })
    })
  }

  get stdout(): string {
    return this.out
  }

  get stderr(): string {
    return this.err
  }

  /** stdout and stderr interleaved in arrival order. */
  get output(): string {
    return this.all
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined
  }

  /**
   * Resolves with the first match of `pattern` in the combined output. Rejects when the
   * process exits or `timeoutMs` passes first, quoting the end of the output.
   */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const match = this.all.match(pattern)
      if (match) return match
      if (this.hasExited) throw this.failure(`exited before printing ${pattern}`)
      if (Date.now() > deadline) throw this.failure(`no ${pattern} within ${timeoutMs} ms`)
      await sleep(25)
    }
  }

  /**
   * Sends `signal` to the process itself, then SIGKILL to its whole group after `timeoutMs`.
   * Resolves with how it ended; a process already gone resolves at once.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<ExitInfo> {
    if (this.isReaped) return this.exited

    signalPid(this.pid, signal)
    const timer = setTimeout(() => {
      if (!this.isReaped) signalPid(-this.pid, 'SIGKILL')
    }, timeoutMs)
    const info = await this.exited
    clearTimeout(timer)
    return info
  }

  /** An Error naming the command, with the last lines of its output. */
  failure(what: string): Error {
    const args = this.child.spawnargs.slice(4).join(' ')
    return new Error(`${args}: ${what}\n--- output (tail) ---\n${tail(this.all, 40)}`)
  }
}

/**
 * The server and client namespaces of one run. Create with `createTestNet`; always call
 * `destroy` (in an `after` hook), though exit and signal hooks catch what is missed.
 */
export class TestNet {
  readonly id: string
  /** A temp dir for configs, certificates and logs of this run; removed by `destroy`. */
  readonly dir: string
  readonly server: NetSide
  readonly client: NetSide
  readonly pool: VpnPool
  private readonly groups = new Set<number>()
  private readonly running = new Set<NetProcess>()
  /** Namespaces this net created: the only ones teardown touches. */
  private readonly ownedNs: string[] = []
  private readonly keepDir: boolean
  private destroying?: Promise<void>

  /** Use `createTestNet`, which also builds the namespaces. */
  constructor(id: string, subnet: number, dir: string, keepDir: boolean) {
    this.id = id
    this.dir = dir
    this.keepDir = keepDir
    this.server = {
      ns: `ag${id}-srv`,
      ifname: `ag${id}s`,
      address: `198.18.${subnet}.1`,
      prefixLength: 24,
    }
    this.client = {
      ns: `ag${id}-cli`,
      ifname: `ag${id}c`,
      address: `198.18.${subnet}.2`,
      prefixLength: 24,
    }
    this.pool = {
      cidr: `198.19.${subnet}.0/24`,
      network: `198.19.${subnet}.0`,
      prefixLength: 24,
      firstHost: `198.19.${subnet}.1`,
    }
  }

  get isDestroyed(): boolean {
    return this.destroying !== undefined
  }

  /**
   * Starts `cmd` inside the namespace via `ip netns exec`, as the leader of a new process
   * group that `destroy` will kill. Throws when the net is already destroyed.
   */
  spawn(where: NsRef, cmd: string, args: string[], opts: SpawnOptions = {}): NetProcess {
    if (this.isDestroyed) throw new Error(`net ${this.id} is destroyed; cannot start ${cmd}`)

    const child = spawnChild('ip', ['netns', 'exec', nsName(where), cmd, ...args], {
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    })
    const proc = new NetProcess(child)
    this.groups.add(proc.pid)
    this.running.add(proc)
    void proc.exited.then(() => {
      this.running.delete(proc)
      this.forgetGroupIfEmpty(proc.pid)
    })
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => {})
      child.stdin?.end(opts.input)
    }
    return proc
  }

  /**
   * Runs `cmd` inside the namespace to completion. Rejects on a non-zero exit (unless
   * `allowFailure`) or after `timeoutMs`, with the command's output in the message.
   */
  async exec(
    where: NsRef,
    cmd: string,
    args: string[],
    opts: ExecOptions = {},
  ): Promise<ExecResult> {
    const proc = this.spawn(where, cmd, args, opts)
    const timeoutMs = opts.timeoutMs ?? 30_000
    let isTimedOut = false
    const timer = setTimeout(() => {
      isTimedOut = true
      signalPid(-proc.pid, 'SIGKILL')
    }, timeoutMs)
    const info = await proc.exited
    clearTimeout(timer)

    if (isTimedOut) throw proc.failure(`timed out after ${timeoutMs} ms`)
    if (info.code !== 0 && !opts.allowFailure) {
      throw proc.failure(`exited with ${info.code ?? info.signal}`)
    }
    return {...info, stdout: proc.stdout, stderr: proc.stderr}
  }

  /** Interface names inside one of this net's namespaces. */
  listLinks(where: NsRef): Promise<string[]> {
    return listLinks(nsName(where))
  }

  /** IPv4 addresses inside one of this net's namespaces. */
  listAddresses(where: NsRef): Promise<AddressInfo[]> {
    return listAddresses(nsName(where))
  }

  /**
   * Resolves once something in the namespace listens on `port` (TCP by default), polling
   * `ss`. Rejects after `timeoutMs`, or as soon as `watched` exits, with its output.
   */
  async waitForPort(
    where: NsRef,
    port: number,
    opts: {udp?: boolean; timeoutMs?: number; watched?: NetProcess} = {},
  ): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 10_000
    const deadline = Date.now() + timeoutMs
    const args = [opts.udp ? '-Hlnu' : '-Hlnt', 'sport', '=', `:${port}`]
    for (;;) {
      const {stdout} = await this.exec(where, 'ss', args)
      if (stdout.trim() !== '') return
      if (opts.watched?.hasExited) throw opts.watched.failure(`exited before listening on ${port}`)
      if (Date.now() > deadline) {
        const why = `nothing listened on port ${port} within ${timeoutMs} ms`
        throw opts.watched ? opts.watched.failure(why) : new Error(why)
      }
      await sleep(50)
    }
  }

  /**
   * Kills every process group this net started and anything else left in its namespaces,
   * waits for them to go, deletes both namespaces (and with them the veth pair and any TUN)
   * and removes the temp dir. Safe to call more than once; later calls share the first.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown()
    return this.destroying
  }

  /** `destroy` for exit hooks: the same steps without waiting for processes to be reaped. */
  destroySync(): void {
    if (this.isDestroyed) return

    this.destroying = Promise.resolve()
    liveNets.delete(this)
    this.killAll()
    for (const ns of this.ownedNs) spawnSync('ip', ['netns', 'del', ns], {stdio: 'ignore'})
    this.removeDir()
  }

  /**
   * Builds the namespaces, the veth pair, addresses and loopbacks; called once by
   * `createTestNet`. Resolves false, having created nothing, when a namespace name is taken.
   */
  async build(): Promise<boolean> {
    const {server, client} = this
    for (const side of [server, client]) {
      const added = await run('ip', ['netns', 'add', side.ns], true)
      if (added.code !== 0 && /exists/i.test(added.stderr)) return false
      if (added.code !== 0) throw new Error(`ip netns add ${side.ns}: ${added.stderr.trim()}`)
      this.ownedNs.push(side.ns)
    }

    await run('ip', [
      'link', 'add', server.ifname, 'netns', server.ns, 'type', 'veth',
      'peer', 'name', client.ifname, 'netns', client.ns,
    ])
    for (const side of [server, client]) {
      const cidr = `${side.address}/${side.prefixLength}`
      await run('ip', ['-n', side.ns, 'link', 'set', 'lo', 'up'])
      await run('ip', ['-n', side.ns, 'addr', 'add', cidr, 'dev', side.ifname])
      await run('ip', ['-n', side.ns, 'link', 'set', side.ifname, 'up'])
    }
    return true
  }

  private async teardown(): Promise<void> {
    liveNets.delete(this)
    this.killAll()

    // A namespace lives on while a process is inside it, so wait for the kills to land, and
    // for our direct children to be reaped (a zombie still answers kill(pid, 0)).
    const deadline = Date.now() + 5000
    await Promise.race([Promise.all([...this.running].map((p) => p.exited)), sleep(5000)])
    while (Date.now() < deadline && (await this.pidsInside()).length > 0) {
      this.killAll()
      await sleep(50)
    }

    for (const ns of this.ownedNs) await run('ip', ['netns', 'del', ns], true)
    this.removeDir()
  }

  private killAll(): void {
    for (const pgid of this.groups) signalPid(-pgid, 'SIGKILL')
    this.groups.clear()
    for (const ns of this.ownedNs) {
      const res = spawnSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'})
      for (const pid of parsePids(res.stdout ?? '')) signalPid(pid, 'SIGKILL')
    }
  }

  private async pidsInside(): Promise<number[]> {
    const pids: number[] = []
    for (const ns of this.ownedNs) {
      const res = await run('ip', ['netns', 'pids', ns], true)
      pids.push(...parsePids(res.stdout))
    }
    return pids
  }

  // A group id stays ours only while some member lives: the kernel will not hand out a pid
  // still in use as a group id, but may once the group is empty.
  private forgetGroupIfEmpty(pgid: number): void {
    try {
      process.kill(-pgid, 0)
    } catch {
      this.groups.delete(pgid)
    }
  }

  private removeDir(): void {
    if (this.keepDir) {
      process.stderr.write(`anygate e2e: kept ${this.dir}\n`)
      return
    }
    rmSync(this.dir, {recursive: true, force: true})
  }
}

/**
 * Creates the two namespaces, the veth pair between them, addresses and loopbacks, and
 * registers the net for teardown at exit. Needs root and iproute2. A half-built net is torn
 * down before the error is thrown.
 */
export async function createTestNet(opts: CreateTestNetOptions = {}): Promise<TestNet> {
  installExitHook()
  const subnet = opts.subnet ?? randomInt(0, 256)
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) {
    throw new RangeError(`subnet ${subnet} is not 0-255`)
  }

  for (let attempt = 0; ; attempt++) {
    const id = randomBytes(3).toString('hex')
    const dir = mkdtempSync(join(tmpdir(), `ag${id}-`))
    const net = new TestNet(id, subnet, dir, opts.keepDir ?? process.env.ANYGATE_TEST_KEEP === '1')
    liveNets.add(net)

    try {
      if (await net.build()) return net
    } catch (err) {
      await net.destroy()
      throw err
    }

    await net.destroy()
    if (attempt >= 4) throw new Error('no free namespace name after 5 tries')
  }
}

/** Interface names in namespace `ns` (from `ip -json link`). */
export async function listLinks(ns: string): Promise<string[]> {
  const {stdout} = await run('ip', ['-n', ns, '-json', 'link', 'show'])
  const links = JSON.parse(stdout) as Array<{ifname: string}>
  return links.map((link) => link.ifname)
}

/** IPv4 addresses in namespace `ns` (from `ip -json addr`). */
export async function listAddresses(ns: string): Promise<AddressInfo[]> {
  const {stdout} = await run('ip', ['-n', ns, '-json', '-4', 'addr', 'show'])
  const links = JSON.parse(stdout) as Array<{
    ifname: string
    addr_info?: Array<{family: string; local: string; prefixlen: number; address?: string}>
  }>
  return links.flatMap((link) =>
    (link.addr_info ?? [])
      .filter((a) => a.family === 'inet')
      .map((a) => ({
        ifname: link.ifname,
        local: a.local,
        prefixLength: a.prefixlen,
        peer: a.address,
      })),
  )
}

/** Names of the network namespaces on this host (from `ip -json netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const {stdout} = await run('ip', ['-json', 'netns', 'list'])
  if (stdout.trim() === '') return []
  return (JSON.parse(stdout) as Array<{name: string}>).map((entry) => entry.name)
}

/**
 * The tools in `names` that are not executable anywhere on PATH (plus the sbin dirs, which a
 * non-login root shell may lack). For skip reasons.
 */
export function findMissingTools(names: string[]): string[] {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']
  return names.filter((name) => !dirs.some((dir) => dir !== '' && isExecutable(join(dir, name))))
}

// Not yet: sweeping nets left by a run that was SIGKILLed (no hook runs), which stay until
// removed by hand with `ip netns del ag<id>-srv` and `ag<id>-cli`.
function installExitHook(): void {
  if (isExitHookInstalled) return

  isExitHookInstalled = true
  process.on('exit', destroyAllSync)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      destroyAllSync()
      process.off(signal, onSignal)
      if (process.listenerCount(signal) > 0) return
      process.exit(SIGNAL_EXIT_CODES[signal] ?? 1)
    }
    process.on(signal, onSignal)
  }
}

function destroyAllSync(): void {
  for (const net of [...liveNets]) net.destroySync()
}

/** Runs a host command (iproute2 on a namespace) and collects its output. */
function run(
  cmd: string,
  args: string[],
  allowFailure = false,
): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.once('error', reject)
    child.once('close', (code) => {
      if (code !== 0 && !allowFailure) {
        reject(new Error(`${cmd} ${args.join(' ')}: exited with ${code}: ${stderr.trim()}`))
        return
      }
      resolve({code, stdout, stderr})
    })
  })
}

function nsName(where: NsRef): string {
  return typeof where === 'string' ? where : where.ns
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // Already gone.
  }
}

function parsePids(text: string): number[] {
  return text
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0 && pid !== process.pid)
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK)
    return true
  } catch {
    return false
  }
}

function capped(text: string): string {
  return text.length > OUTPUT_CAP ? text.slice(text.length - OUTPUT_CAP) : text
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n')
}
