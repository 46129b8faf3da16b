/**
 * Tunnel throughput through openconnect, ocserv against anygate in the same harness and run:
 * over TLS only (`tls-throughput.ts`, openconnect --no-dtls) or over DTLS (`dtls-throughput.ts`,
 * openconnect's default PSK-NEGOTIATE, DTLS 1.2 PSK-AES-256-GCM). Those two scripts call
 * `runThroughputBench` with their mode; this module is the bench itself.
 *
 * Each gateway gets its own pair of namespaces: the gateway in one, openconnect in the other,
 * and iperf3 between the client's TUN and the gateway's end of the tunnel, client→server and
 * server→client (-R). The gateways take turns run by run. Before each run the bench waits for
 * the CPU to be quiet and prints how busy it was; during the run it adds up the CPU time of
 * processes outside its namespaces (kernel threads aside) and the time stolen by the
 * hypervisor, and flags the run when either is notable: other work skews the numbers. Prints
 * the median Gbit/s per direction (iperf3's receiver side) and the ratio anygate/ocserv.
 * Needs root.
 */
import {mkdirSync, readdirSync, readFileSync, readlinkSync, statSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parseArgs} from 'node:util'

import {startAnygate} from '../../test/e2e/harness/anygate.js'
import {createTestNet, findMissingTools, type TestNet} from '../../test/e2e/harness/netns.js'
import {startOcserv, type GatewayHandle} from '../../test/e2e/harness/ocserv.js'
import {startOpenconnect} from '../../test/e2e/harness/openconnect.js'
import {formatProfileSummary, summarizeCpuProfile} from './cpu-profile.js'

type GatewayKind = 'ocserv' | 'anygate'

/** A direction's median over its runs, and whether any run had company on the CPU. */
interface Rate {
  gbps: number
  isSuspect: boolean
}

interface Direction {
  label: string
  iperfArgs: string[]
}

const GATEWAYS: GatewayKind[] = ['ocserv', 'anygate']
const DIRECTIONS: Direction[] = [
  {label: 'client→server', iperfArgs: []},
  {label: 'server→client', iperfArgs: ['-R']},
]
const TOOLS = ['ip', 'ss', 'openssl', 'ocserv', 'ocpasswd', 'openconnect', 'iperf3']
const IPERF_PORT = 5201
/** Busy share of all CPUs above which a run waits, and how long it waits at most. */
const QUIET_BUSY = 0.1
const QUIET_WAIT_MS = 60_000
/** Cores used by other processes, or share of CPU time stolen by the hypervisor, during a run
 * above which the run is flagged. */
const FOREIGN_CORES = 0.1
const STEAL_SHARE = 0.03
const CLOCK_TICKS_PER_SECOND = 100
const PF_KTHREAD = 0x00200000

export type TunnelMode = 'tls' | 'dtls'
let mode: TunnelMode = 'tls'

const usage = () => [
  `usage: node --import tsx bench/${mode}-throughput.ts`,
  '  [--seconds N] [--runs N] [--only ocserv|anygate] [--profile DIR]',
  '  --profile DIR: run anygate serve under node --cpu-prof, write the profile to DIR',
  '                 and print its heaviest functions (the profile slows anygate a little)',
].join('\n')

export async function runThroughputBench(which: TunnelMode): Promise<number> {
  mode = which
  const {seconds, runs, kinds, profileDir} = parseFlags()
  if (process.getuid?.() !== 0) return fail('needs root to create network namespaces')
  const missing = findMissingTools(TOOLS)
  if (missing.length > 0) return fail(`missing tools: ${missing.join(', ')}`)

  console.log(`${mode === 'dtls' ? 'DTLS' : 'TLS-only'} tunnel throughput: iperf3 -t ${seconds}, ${runs} run(s) per direction`)
  const nets: TestNet[] = []
  const benches: Bench[] = []
  const failures = new Map<GatewayKind, Error>()
  try {
    for (const kind of kinds) {
      try {
        benches.push(await setUp(kind, nets, profileDir))
      } catch (err) {
        failures.set(kind, reportFailure(kind, err))
      }
    }

    // Interleaved, so a drift in the machine's speed (noisy neighbours) hits every gateway alike.
    for (const [d, direction] of DIRECTIONS.entries()) {
      for (let run = 1; run <= runs; run++) {
        for (const bench of benches.filter((b) => !failures.has(b.kind))) {
          try {
            await measure(bench, d, direction, run, seconds, nets)
          } catch (err) {
            failures.set(bench.kind, reportFailure(bench.kind, err))
          }
        }
      }
    }
  } finally {
    // A profile is written when the process exits on its own, so serve is stopped first.
    for (const bench of benches) await bench.stopGateway()
    for (const net of nets) await net.destroy()
  }

  if (profileDir !== undefined) printProfile(profileDir)

  const results = new Map<GatewayKind, Rate[] | Error>(failures)
  for (const bench of benches.filter((b) => !failures.has(b.kind))) {
    const rates = bench.rates.map((gbps, d) => ({
      gbps: median(gbps),
      isSuspect: bench.isSuspect[d],
    }))
    results.set(bench.kind, rates)
  }
  printTable(results)
  return failures.size > 0 ? 1 : 0
}

/** A gateway with openconnect connected to it and iperf3 listening at its end of the tunnel. */
interface Bench {
  kind: GatewayKind
  net: TestNet
  target: string
  /** Gbit/s of each run, per direction (index into `DIRECTIONS`). */
  rates: number[][]
  isSuspect: boolean[]
  stopGateway: () => Promise<unknown>
}

async function setUp(kind: GatewayKind, nets: TestNet[], profileDir?: string): Promise<Bench> {
  const net = await createTestNet()
  nets.push(net)
  const dtlsOn = mode === 'dtls'
  const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir]
  const gateway =
    kind === 'ocserv' ? await startOcserv(net, {dtls: dtlsOn}) : await startAnygate(net, {dtls: dtlsOn, nodeArgs})
  const [user] = gateway.users
  const client = await startOpenconnect(net, {
    url: gateway.url,
    user: user.name,
    password: user.password,
    servercert: gateway.servercert,
    dtls: dtlsOn,
    extraArgs: dtlsOn ? ['-v'] : [],
  })
  const tunnel = await client.waitForConnected(30_000)
  const dtls = dtlsOn ? await waitForDtls(client.log, 20_000) : 'TLS only'
  const target = await serverEnd(net, tunnel.address, gateway)
  const {address, tunDev, mtu} = tunnel
  console.log(`${kind}: tunnel ${address} → ${target} via ${tunDev}, mtu ${mtu}, ${dtls}`)

  const iperfServer = net.spawn(net.server, 'iperf3', ['-s', '-B', target])
  await net.waitForPort(net.server, IPERF_PORT, {watched: iperfServer})
  return {
    kind,
    net,
    target,
    rates: DIRECTIONS.map(() => []),
    isSuspect: DIRECTIONS.map(() => false),
    stopGateway: () => gateway.stop(15_000),
  }
}

/** The newest profile in `dir`, summarized. */
function printProfile(dir: string) {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  if (files.length === 0) {
    console.log(`no profile in ${dir}: anygate did not exit cleanly`)
    return
  }

  console.log(`\n${files[0]}`)
  for (const line of formatProfileSummary(summarizeCpuProfile(files[0]))) console.log(line)
}

/** The client's "Established DTLS connection" line; the numbers mean nothing over TLS. */
async function waitForDtls(log: () => string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const line = log().match(/Established DTLS connection.*/)?.[0]
    if (line) return line.replace(/^.*Ciphersuite /, '')
    if (Date.now() > deadline) throw new Error('DTLS did not come up')
    await sleep(100)
  }
}

/** One iperf3 run once the CPU is quiet, recorded in `bench` and printed with its CPU notes. */
async function measure(
  bench: Bench,
  d: number,
  direction: Direction,
  run: number,
  seconds: number,
  nets: TestNet[],
): Promise<void> {
  const busy = await waitForQuietCpu()
  const before = foreignCpuTicks(nets)
  const cpuBefore = cpuTimes()
  const udpBefore = await udpDrops(bench.net)
  const startedAt = Date.now()
  const gbps = await iperf(bench.net, bench.target, seconds, direction.iperfArgs)
  const foreign = foreignCores(before, foreignCpuTicks(nets), Date.now() - startedAt)
  const udpAfter = await udpDrops(bench.net)
  const steal = stealShare(cpuBefore, cpuTimes())
  const isSuspect = busy > QUIET_BUSY || foreign.cores > FOREIGN_CORES || steal > STEAL_SHARE

  console.log(
    `${bench.kind}: ${direction.label} run ${run}: ${gbps.toFixed(3)} Gbit/s;` +
      ` CPU ${percent(busy)} busy before; during: other processes` +
      ` ${foreign.cores.toFixed(2)} cores${foreign.top ? ` (${foreign.top})` : ''},` +
      ` steal ${percent(steal)}${isSuspect ? ' - CPU NOT QUIET, numbers suspect' : ''};` +
      ` UDP receive-buffer drops: server ${udpAfter.server - udpBefore.server}, client ${udpAfter.client - udpBefore.client}`,
  )
  bench.rates[d].push(gbps)
  bench.isSuspect[d] ||= isSuspect
}

/**
 * UDP datagrams each namespace's kernel dropped for a full socket receive buffer so far
 * (`RcvbufErrors` in /proc/net/snmp): DTLS records the gateway or the client read too slowly.
 */
async function udpDrops(net: TestNet): Promise<{server: number; client: number}> {
  const read = async (side: typeof net.server) => {
    const snmp = (await net.exec(side, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'))
    const [names, values] = snmp.map((l) => l.trim().split(/\s+/))
    const at = names?.indexOf('RcvbufErrors') ?? -1
    return at >= 0 && values ? Number(values[at]) : 0
  }

  return {server: await read(net.server), client: await read(net.client)}
}

function reportFailure(kind: GatewayKind, err: unknown): Error {
  const error = err instanceof Error ? err : new Error(String(err))
  console.log(`${kind}: failed: ${error.message}`)
  return error
}

/**
 * The gateway's end of this client's tunnel, as the server namespace shows it (the
 * point-to-point peer of the client's address), else what the gateway documents.
 */
async function serverEnd(net: TestNet, clientAddress: string, gateway: GatewayHandle) {
  const addresses = await net.listAddresses(net.server)
  const end = addresses.find((a) => a.peer?.replace(/\/32$/, '') === clientAddress)
  return end?.local ?? gateway.tunnelAddress
}

async function iperf(net: TestNet, target: string, seconds: number, extra: string[]) {
  const args = ['-c', target, '-t', String(seconds), '-J', ...extra]
  const res = await net.exec(net.client, 'iperf3', args, {timeoutMs: (seconds + 30) * 1000})
  const report = JSON.parse(res.stdout) as {
    error?: string
    end: {sum_received: {bits_per_second: number}}
  }
  if (report.error) throw new Error(`iperf3: ${report.error}`)
  return report.end.sum_received.bits_per_second / 1e9
}

/**
 * Samples /proc/stat over one second until the machine is at most `QUIET_BUSY` busy or
 * `QUIET_WAIT_MS` has passed; returns the last busy share (0-1) either way.
 */
async function waitForQuietCpu(): Promise<number> {
  const startedAt = Date.now()
  let busy = await cpuBusy(1000)
  if (busy <= QUIET_BUSY) return busy

  console.log(`  CPU ${percent(busy)} busy: something else is running; waiting for quiet`)
  while (busy > QUIET_BUSY && Date.now() - startedAt < QUIET_WAIT_MS) busy = await cpuBusy(1000)
  const waited = Math.round((Date.now() - startedAt) / 1000)
  const outcome = busy > QUIET_BUSY ? `still ${percent(busy)} busy, running anyway` : 'quiet'
  console.log(`  after ${waited} s: ${outcome}`)
  return busy
}

async function cpuBusy(windowMs: number): Promise<number> {
  const first = cpuTimes()
  await sleep(windowMs)
  const second = cpuTimes()
  const total = second.total - first.total
  return total > 0 ? 1 - (second.idle - first.idle) / total : 0
}

interface CpuTimes {
  idle: number
  steal: number
  total: number
}

function cpuTimes(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  const fields = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal: idle and iowait count as idle.
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  const total = fields.slice(0, 8).reduce((sum, n) => sum + n, 0)
  return {idle, steal: fields[7] ?? 0, total}
}

/** The share of all CPU time the hypervisor gave to other guests between two samples. */
function stealShare(first: CpuTimes, second: CpuTimes): number {
  const total = second.total - first.total
  return total > 0 ? (second.steal - first.steal) / total : 0
}

/**
 * CPU ticks so far of every process outside the namespaces of `nets`, by pid, leaving out
 * kernel threads (which carry our own packets too), this process and its direct children.
 */
function foreignCpuTicks(nets: TestNet[]): Map<number, {comm: string; ticks: number}> {
  const ours = new Set(
    nets
      .flatMap((net) => [net.server.ns, net.client.ns])
      .map((ns) => `net:[${statSync(`/run/netns/${ns}`).ino}]`),
  )
  const ticks = new Map<number, {comm: string; ticks: number}>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === process.pid) continue

    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const [ppid, flags, utime, stime] = [1, 6, 11, 12].map((i) => Number(fields[i]))
      if ((flags & PF_KTHREAD) !== 0 || ppid === process.pid) continue
      if (ours.has(readlinkSync(`/proc/${pid}/ns/net`))) continue
      ticks.set(pid, {comm, ticks: utime + stime})
    } catch {
      // The process ended between readdir and read.
    }
  }
  return ticks
}

function foreignCores(
  before: Map<number, {comm: string; ticks: number}>,
  after: Map<number, {comm: string; ticks: number}>,
  elapsedMs: number,
): {cores: number; top: string} {
  const byComm = new Map<string, number>()
  for (const [pid, {comm, ticks}] of after) {
    const used = ticks - (before.get(pid)?.ticks ?? 0)
    if (used > 0) byComm.set(comm, (byComm.get(comm) ?? 0) + used)
  }
  const toCores = (t: number) => t / CLOCK_TICKS_PER_SECOND / (elapsedMs / 1000)
  const total = [...byComm.values()].reduce((sum, t) => sum + t, 0)
  const top = [...byComm]
    .filter(([, t]) => toCores(t) >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([comm, t]) => `${comm} ${toCores(t).toFixed(2)}`)
    .join(', ')
  return {cores: toCores(total), top}
}

function printTable(results: Map<GatewayKind, Rate[] | Error>): void {
  const rate = (kind: GatewayKind, i: number) => {
    const r = results.get(kind)
    return Array.isArray(r) ? r[i] : undefined
  }
  const cell = (kind: GatewayKind, i: number) => {
    const r = rate(kind, i)
    if (!r) return results.get(kind) instanceof Error ? 'failed' : '-'
    return `${r.gbps.toFixed(3)}${r.isSuspect ? '*' : ''}`
  }
  const ratio = (i: number) => {
    const [ocserv, anygate] = [rate('ocserv', i), rate('anygate', i)]
    if (!ocserv || !anygate) return '-'
    const mark = ocserv.isSuspect || anygate.isSuspect ? '*' : ''
    return `${(anygate.gbps / ocserv.gbps).toFixed(2)}${mark}`
  }

  const rows = [['direction', 'ocserv Gbit/s', 'anygate Gbit/s', 'anygate/ocserv']]
  DIRECTIONS.forEach((d, i) => {
    rows.push([d.label, cell('ocserv', i), cell('anygate', i), ratio(i)])
  })
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)))
  const pad = (text: string, col: number) =>
    col === 0 ? text.padEnd(widths[col]) : text.padStart(widths[col])
  console.log('')
  for (const row of rows) console.log(row.map(pad).join('  '))
  const isAnySuspect = [...results.values()].some(
    (r) => Array.isArray(r) && r.some((x) => x.isSuspect),
  )
  if (isAnySuspect) console.log('* other work shared the CPU during a run: numbers suspect')
}

function parseFlags(): {seconds: number; runs: number; kinds: GatewayKind[]; profileDir?: string} {
  const {values} = parseArgs({
    options: {
      seconds: {type: 'string', default: '5'},
      runs: {type: 'string', default: '1'},
      only: {type: 'string'},
      profile: {type: 'string'},
      help: {type: 'boolean', short: 'h'},
    },
  })
  if (values.help) {
    console.log(usage())
    process.exit(0)
  }

  const seconds = Number(values.seconds)
  const runs = Number(values.runs)
  if (!Number.isInteger(seconds) || seconds < 1) usageError(`bad --seconds ${values.seconds}`)
  if (!Number.isInteger(runs) || runs < 1) usageError(`bad --runs ${values.runs}`)
  if (values.only !== undefined && !GATEWAYS.includes(values.only as GatewayKind)) {
    usageError(`bad --only ${values.only}`)
  }
  const kinds = values.only === undefined ? GATEWAYS : [values.only as GatewayKind]
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile)
  if (profileDir !== undefined) mkdirSync(profileDir, {recursive: true})
  return {seconds, runs, kinds, profileDir}
}

function usageError(message: string): never {
  console.error(`${message}\n${usage()}`)
  process.exit(2)
}

function fail(message: string): number {
  console.error(`${mode}-throughput: ${message}`)
  return 1
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function percent(share: number): string {
  return `${Math.round(share * 100)}%`
}

