/**
 * Password checks off the event loop. A crypt(3) check costs ~10 ms of CPU, so `serve` sends each
 * one to a worker thread; the loop only posts a message and awaits the answer.
 *
 * The same module is the worker's entry: loaded in a worker started by `PasswordVerifier`, it
 * answers `{id, password, hash}` with `{id, ok}`. Under tsx (tests, bin/dev.js) the worker must
 * register tsx itself, since Node 20 workers do not inherit `--import` hooks.
 */
import {isMainThread, parentPort, Worker, workerData} from 'node:worker_threads'

import {AnygateError} from '../errors.js'
import {verifyPassword} from './password-hash.js'

const WORKER_ROLE = 'anygate-password-worker'

interface Job {
  id: number
  password: string
  hash: string
}

interface Answer {
  id: number
  ok: boolean
}

if (!isMainThread && workerData?.role === WORKER_ROLE && parentPort) {
  const port = parentPort
  port.on('message', (job: Job) => {
    port.postMessage({id: job.id, ok: verifyPassword(job.password, job.hash)} satisfies Answer)
  })
}

function bootstrapSource(): string {
  const self = JSON.stringify(import.meta.url)
  if (!import.meta.url.endsWith('.ts')) return `import(${self})`
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'))
  return `import(${tsx}).then((m) => { m.register(); return import(${self}) })`
}

/**
 * One worker thread that checks passwords in order. Started on first use, restarted after a
 * crash, unreferenced while idle so it never keeps the process alive. `close()` ends it.
 */
export class PasswordVerifier {
  private worker?: Worker
  private readonly pending = new Map<number, (result: boolean | Error) => void>()
  private nextId = 1
  private closed = false

  /** Resolves true when `password` matches `hash`; rejects only if the worker cannot run. */
  verify(password: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new AnygateError('VERIFIER_CLOSED', 'verifier closed'))
    const worker = this.worker ?? this.start()
    const id = this.nextId++

    return new Promise<boolean>((resolve, reject) => {
      this.pending.set(id, (result) => (result instanceof Error ? reject(result) : resolve(result)))
      if (this.pending.size === 1) worker.ref()
      worker.postMessage({id, password, hash} satisfies Job)
    })
  }

  close(): void {
    this.closed = true
    this.failAll(new AnygateError('VERIFIER_CLOSED', 'verifier closed'))
    void this.worker?.terminate()
    this.worker = undefined
  }

  private start(): Worker {
    const worker = new Worker(bootstrapSource(), {eval: true, workerData: {role: WORKER_ROLE}})
    worker.unref()
    worker.on('message', (answer: Answer) => this.settle(answer.id, answer.ok))
    worker.on('error', (err) => this.crashed(worker, err))
    worker.on('exit', (code) => this.crashed(worker, new Error(`exited with code ${code}`)))
    this.worker = worker
    return worker
  }

  private settle(id: number, result: boolean | Error): void {
    const done = this.pending.get(id)
    if (!done) return
    this.pending.delete(id)
    if (this.pending.size === 0) this.worker?.unref()
    done(result)
  }

  private crashed(worker: Worker, err: Error): void {
    if (this.worker !== worker) return
    this.worker = undefined
    this.failAll(new AnygateError('VERIFIER_FAILED', `password worker failed: ${err.message}`))
  }

  private failAll(err: Error): void {
    for (const id of [...this.pending.keys()]) this.settle(id, err)
  }
}
