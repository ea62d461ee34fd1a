import { types } from 'node:util'
import type { FastifyRequest } from 'fastify'
import type { PanicInfo, Recovery, RunOptions } from '../types/index'
import { FST_RECOVERY_NOT_RECORDED } from './errors'
import { awaitable } from './foreign-promise'
import type { Recoverer } from './recover'
import { copyOfInfo } from './record'
import { rankNow } from './reentrancy'
import { isFastifyRequest } from './request'
import { dataOf } from './safe-read'

// `app.recovery`: the failures the application hands to the plugin itself.
// - run (contract §8, Go's `go func() { defer recover() }()`): a task started outside the request's
//   promise chain fails on its own, so it is run here, where a failure is logged and counted.
// - report (contract §10, Rails' `Rails.error.report`): a failure the application caught itself
//   (a websocket handler, a queue consumer, a cron job) is recorded like a panic, and nothing is answered.
// One per scope (a child scope's `app.recovery` is its own), so that the test kit tells which scope
// recorded what (contract §16).

export class AppRecovery implements Recovery {
  readonly #recoverer: Recoverer
  readonly #scope: object
  readonly #currentRequest: () => FastifyRequest | undefined

  /** `currentRequest`: the request whose async context is running (known while the process net is on). */
  constructor (recoverer: Recoverer, scope: object, currentRequest: () => FastifyRequest | undefined) {
    this.#recoverer = recoverer
    this.#scope = scope
    this.#currentRequest = currentRequest
  }

  // arrow properties: `const { run } = app.recovery` works
  readonly run = async <T>(task: (() => T | PromiseLike<T>) | PromiseLike<T>, options?: RunOptions): Promise<Awaited<T> | undefined> => {
    // a task started while a panic was being recorded stays nested in that record, however late it fails
    const rank = rankNow()
    try {
      // a promise is awaited without its own `constructor` or species, which may throw
      return await awaitable(started(task)) as Awaited<T>
    } catch (value) {
      this.#record(value, 'background', options, rank)
      return undefined
    }
  }

  readonly report = (value: unknown, options?: RunOptions): PanicInfo => this.#record(value, 'reported', options)

  #record (value: unknown, source: 'background' | 'reported', options: RunOptions | undefined, rank = 0): PanicInfo {
    const { request = this.#currentRequest(), name } = readOptions(options)
    const task = typeof name === 'string' ? name : undefined
    const info = this.#recoverer.recover({ value, source, request, task, rank, scope: this.#scope, respond: 'none' })
    // the last resort wrote why the recording failed; the caller still gets an answer it can read
    return info === undefined ? { error: new FST_RECOVERY_NOT_RECORDED(), value, source, method: '', route: '', fingerprint: '' } : copyOfInfo(info)
  }
}

// `run(sendReceipt())`: a promise or thenable given instead of a function is what is awaited (its
// `then` read as data: an accessor is not run); anything else is called, and fails as a call would
function started (task: unknown): unknown {
  if (types.isPromise(task)) return task
  if (task !== null && typeof task === 'object') {
    const then = dataOf(task, 'then')
    if (typeof then === 'function') return new Promise((resolve, reject) => { Reflect.apply(then, task, [resolve, reject]) })
  }
  return (task as () => unknown)()
}

// neither run() nor report() throws, not even for options whose getters throw; a `request` that is
// not a Fastify request (`request.raw`, a plain object) is left out, as if none was given
function readOptions (options: RunOptions | undefined): RunOptions {
  try {
    const { request, name } = options ?? {}
    return { request: isFastifyRequest(request) ? request : undefined, name }
  } catch {
    return {}
  }
}
