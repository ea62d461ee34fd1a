import type { FastifyRequest } from 'fastify'
import type { PanicInfo, Recovery, RunOptions } from '../types/index'
import { FST_RECOVERY_NOT_RECORDED } from './errors'
import type { Shield } from './last-resort'
import type { Incident, Recorder } from './record'
import { isFastifyRequest } from './request-facts'
import { awaitable } from './foreign-promise'

// `app.recovery`: the failures the application hands to the plugin itself.
// - run (contract §8, Go's `go func() { defer recover() }()`): a task started outside the request's
//   promise chain fails on its own, so it is run here, where a failure is logged and counted.
// - report (contract §10, Rails' `Rails.error.report`): a failure the application caught itself
//   (a websocket handler, a queue consumer, a cron job) is recorded like a panic, and nothing is answered.

/** `currentRequest`: the request whose async context is running (known while the process net is on). */
export function createRecovery (recorder: Recorder, shield: Shield, currentRequest: () => FastifyRequest | undefined): Recovery {
  return { run, report }

  async function run<T> (task: () => T | PromiseLike<T>, options?: RunOptions): Promise<Awaited<T> | undefined> {
    try {
      // a promise is awaited without its own `constructor` or species, which may throw
      return await awaitable(task()) as Awaited<T>
    } catch (value) {
      record(value, 'background', options)
      return undefined
    }
  }

  function report (value: unknown, options?: RunOptions): PanicInfo {
    return record(value, 'reported', options)
  }

  function record (value: unknown, source: 'background' | 'reported', options: RunOptions | undefined): PanicInfo {
    const incident: Incident = { value, source }
    const info = shield(incident, () => {
      const { request = currentRequest(), name } = readOptions(options)
      incident.request = request
      incident.task = typeof name === 'string' ? name : undefined
      return recorder.record(incident)
    })
    // the shield wrote why the recording failed; the caller still gets an answer it can read
    return info ?? { error: new FST_RECOVERY_NOT_RECORDED(), value, source, method: '', route: '', fingerprint: '' }
  }
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
