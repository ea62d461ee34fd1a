import type { FastifyRequest } from 'fastify'
import type { Recovery, RunOptions } from '../types/index'
import type { Shield } from './last-resort'
import type { Incident, Recorder } from './record'

// Contract §8, Go's `go func() { defer recover() }()`: a task started outside the request's
// promise chain fails on its own, so it is run here, where a failure is logged and counted.

/** `currentRequest`: the request whose async context is running (known while the process net is on). */
export function createRun (recorder: Recorder, shield: Shield, currentRequest: () => FastifyRequest | undefined): Recovery['run'] {
  return async function run<T> (task: () => T | PromiseLike<T>, options?: RunOptions): Promise<Awaited<T> | undefined> {
    try {
      return await task()
    } catch (value) {
      const incident: Incident = { value, source: 'background' }
      shield(incident, () => {
        const { request = currentRequest(), name } = readRunOptions(options)
        incident.request = request
        incident.task = typeof name === 'string' ? name : undefined
        recorder.record(incident)
      })
      return undefined
    }
  }
}

// run() never rejects, not even for options whose getters throw
function readRunOptions (options: RunOptions | undefined): RunOptions {
  try {
    return { request: options?.request, name: options?.name }
  } catch {
    return {}
  }
}
