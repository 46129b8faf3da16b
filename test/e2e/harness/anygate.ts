/**
 * Our own gateway, `anygate serve`, in the server namespace of a `TestNet`, started the way a
 * user would: `node bin/run.js serve …` against the built `dist/`. It hands back the same
 * `GatewayHandle` as `startOcserv`, so tests and benches can run one body against both.
 */
import {existsSync, mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import type {NetProcess, TestNet} from './netns.js'
import {defaultUsers, writeUsersFile, type GatewayHandle, type TestUser} from './ocserv.js'
import {pinSha256} from './openconnect.js'

export interface AnygateOptions {
  /** Default 443 (the namespace is ours alone). */
  port?: number
  /** Default false: passes `--no-dtls`. */
  dtls?: boolean
  /** Default: one user `alice` with a random password. */
  users?: TestUser[]
  /** Extra `serve` flags, after ours. */
  extraArgs?: string[]
  /** Node options before the entry script, e.g. `--cpu-prof` for a bench's profile. */
  nodeArgs?: string[]
  /** The repository to run; default the one holding this file. */
  repoRoot?: string
  readyTimeoutMs?: number
}

/** Nets that already run an anygate serve. */
const started = new WeakSet<TestNet>()

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * Starts `anygate serve` in `net`'s server namespace with a fresh state dir and users file,
 * and resolves once it accepts TCP (or logs `listening`) and `<state-dir>/server.pem` (or the
 * `--cert` file given in `extraArgs`) holds a certificate. Rejects with its output if it exits
 * first or is not ready in time.
 */
export async function startAnygate(
  net: TestNet,
  opts: AnygateOptions = {},
): Promise<GatewayHandle> {
  const repoRoot = opts.repoRoot ?? REPO_ROOT
  const entry = join(repoRoot, 'bin', 'run.js')
  if (!existsSync(join(repoRoot, 'dist'))) {
    throw new Error(`${repoRoot}dist is missing: run \`npm run build\` before starting anygate`)
  }

  // The first instance in a net keeps `<dir>/anygate` (tests may prepare files there before
  // starting it); later ones get their own by port.
  const isFirst = !started.has(net)
  started.add(net)
  const dir = isFirst ? join(net.dir, 'anygate') : join(net.dir, `anygate-${opts.port ?? 443}`)
  const stateDir = join(dir, 'state')
  mkdirSync(stateDir, {recursive: true})
  const port = opts.port ?? 443
  const users = opts.users ?? defaultUsers()
  const usersFile = join(dir, 'users')
  await writeUsersFile(net, usersFile, users)

  const args = [
    ...(opts.nodeArgs ?? []),
    entry,
    'serve',
    '--listen',
    `${net.server.address}:${port}`,
    '--state-dir',
    stateDir,
    '--users',
    usersFile,
    '--ipv4-pool',
    net.pool.cidr,
    ...(opts.dtls ? [] : ['--no-dtls']),
    ...(opts.extraArgs ?? []),
  ]
  const proc = net.spawn(net.server, process.execPath, args, {cwd: repoRoot})
  const timeoutMs = opts.readyTimeoutMs ?? 15_000
  await waitUntilListening(net, proc, port, timeoutMs)
  // With --cert, serve presents that file and makes none in the state dir.
  const certFlag = opts.extraArgs?.indexOf('--cert') ?? -1
  const certFile = certFlag >= 0 ? opts.extraArgs![certFlag + 1] : join(stateDir, 'server.pem')
  const certPem = await readCertificate(certFile, proc, timeoutMs)

  return {
    kind: 'anygate',
    url: `https://${net.server.address}:${port}/`,
    host: net.server.address,
    tcpPort: port,
    udpPort: opts.dtls ? port : undefined,
    servercert: pinSha256(certPem),
    certFile,
    users,
    pool: net.pool,
    // anygate's own end of every tunnel is the pool's first address.
    tunnelAddress: net.pool.firstHost,
    process: proc,
    pid: proc.pid,
    log: () => proc.output,
    exited: proc.exited,
    stop: (stopTimeoutMs = 5000) => proc.stop('SIGTERM', stopTimeoutMs),
  }
}

async function waitUntilListening(
  net: TestNet,
  proc: NetProcess,
  port: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (/listening/i.test(proc.stderr)) return
    const {stdout} = await net.exec(net.server, 'ss', ['-Hlnt', 'sport', '=', `:${port}`])
    if (stdout.trim() !== '') return
    if (proc.hasExited) throw proc.failure(`exited before listening on ${port}`)
    if (Date.now() > deadline) throw proc.failure(`not listening on ${port} after ${timeoutMs} ms`)
    await sleep(50)
  }
}

async function readCertificate(file: string, proc: NetProcess, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const pem = existsSync(file) ? readFileSync(file, 'utf8') : ''
    if (pem.includes('-----END CERTIFICATE-----')) return pem
    if (proc.hasExited) throw proc.failure(`exited before writing ${file}`)
    if (Date.now() > deadline) throw proc.failure(`no certificate in ${file} after ${timeoutMs} ms`)
    await sleep(50)
  }
}
