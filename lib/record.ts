import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { types } from 'node:util'
import type { PanicContext, PanicInfo, PanicSource } from '../types/index'
import { budgetOf } from './budget'
import { hasPanicSubscribers, publishPanic } from './channel'
import type { Copier, Normalized } from './copier'
import { fingerprintOf } from './fingerprint'
import { markHandled } from './foreign-promise'
import { errBytesFor, HANDLER_FAILED_MESSAGE, isLevelEnabled, panicFieldsOf, PANIC_MESSAGE, RECOVERY_FAILED_MESSAGE, SAMPLED_MESSAGE, writeLine } from './log'
import type { LogSampler, SampledPanic } from './log-sampling'
import type { PanicCounter } from './metrics'
import { rankNow, recording } from './reentrancy'
import { markServerSpan } from './span'
import { latencyOf, methodOf, requestIdOf, routeOf } from './request-facts'
import type { StackBudget } from './stack-budget'

// Recording a panic is the same whatever its source, in two steps. `read` is the plugin's own
// reading of the failure — normalised, its request's id, method and route, its fingerprint — and
// runs no code of the application: the reply is decided from it (lib/answer.ts) before anything
// else runs. `record` then hands the panic to the application's code and writes it down: the
// `context` fields, its one line, its one count, the diagnostics channel. What that code is given
// is a copy of the plugin's PanicInfo, so nothing it changes reaches the line, the count or the
// reply; what it records itself is a nested record (lib/reentrancy.ts). The recorder marks an
// incident counted, so the last resort (lib/last-resort.ts) counts exactly the panics it did not.

/** A failure as an entry point sees it. */
export interface Incident {
  value: unknown
  source: PanicSource
  request?: FastifyRequest
  reply?: FastifyReply
  /** The status the client gets or got; absent where there is no response. */
  statusCode?: number
  task?: string
  /** Overrides the `logLevel` option (uncaught exceptions log at `fatal`). */
  level?: string
  /** `false`: the request goes on (the process net's 'log'), so the last resort must not answer it. */
  respond?: boolean
  /** Set by the recorder once the panic is counted. */
  counted?: boolean
  /** The least rank of its record: a background task started inside a record stays nested in it. */
  rank?: number
}

/** The plugin's own reading of one failure. Never handed to the application: it gets copies of `info`. */
export interface Panic {
  /** What the line is written from, and the reply decided from. */
  readonly info: PanicInfo
  readonly normalized: Normalized
  readonly incident: Incident
  /** How deep in other records this one was started (lib/reentrancy.ts): 0 is a record of its own. */
  readonly rank: number
}

export interface Recorder {
  /** The plugin's reading of a failure; runs no code of the application. Throws only on a bug of the plugin's own. */
  read (incident: Incident): Panic
  /** Context, line, count, channel; returns a copy of the panic's PanicInfo for the caller. */
  record (panic: Panic): PanicInfo
  /** The second line of a panic whose custom handler (or a channel subscriber) failed. */
  handlerFailed (panic: Panic, failure: unknown): void
  /** The plugin's own code failed on `incident`: a `recovery failed` line, and the count if it was not made. Never throws. */
  recoveryFailed (incident: Incident, failure: unknown): void
  /** The instance closes: what log-storm sampling still carries is written. */
  close (): void
}

export interface RecorderParts {
  logLevel: string
  stackBudget: StackBudget | undefined
  /** Log-storm sampling (the `sampling` option). */
  sampler: LogSampler | undefined
  counter: PanicCounter | undefined
  copier: Copier
  /** The logger for panics without a request. */
  log: FastifyBaseLogger
  /** The scope that registered the plugin: its panics' channel messages say so. */
  scope: object
  /** The `context` option. */
  context: PanicContext | undefined
}

// a task name is the application's, but a line is bounded whatever it is given
const TASK_BYTES = 256
// contract §12: the context fields, bounded and redacted like `err`
const CONTEXT_BYTES = 4 * 1024

export function createRecorder ({ logLevel, stackBudget, sampler, counter, copier, log: rootLog, scope, context }: RecorderParts): Recorder {
  return { read, record, handlerFailed, recoveryFailed, close }

  function read (incident: Incident): Panic {
    const { value, source, request, reply, task } = incident
    const normalized = copier.normalize(value)
    const method = methodOf(request)
    const route = routeOf(request)
    const info: PanicInfo = {
      error: normalized.error,
      value,
      source,
      requestId: request === undefined ? undefined : requestIdOf(request),
      method,
      route,
      latencyMs: latencyOf(reply),
      fingerprint: fingerprintOf(source, method, route, normalized.type, normalized.message),
      // often made from the request (its url): redacted like any string of the line
      task: typeof task === 'string' ? copier.copy(task, budgetOf(TASK_BYTES)) as string : undefined
    }
    return { info, normalized, incident, rank: Math.max(rankNow(), incident.rank ?? 0) }
  }

  function record (panic: Panic): PanicInfo {
    const { info, incident, rank } = panic
    const { request, reply } = incident
    recording(rank, () => {
      if (rank === 0 && context !== undefined && request !== undefined) info.context = contextOf(context, request, copyOf(info))
      if (rank < 2) writePanicLine(panic)
      count(incident, info)
      // a request that failed: its trace says so (a request that reported and went on did not fail)
      // (a thrown Error is normalised to itself; anything else to an Error that describes it)
      if (info.source === 'request' || info.source === 'response') markServerSpan(request as FastifyRequest, info.error === info.value ? panic.normalized.type : undefined)
      if (rank === 0 && hasPanicSubscribers()) publishPanic({ info: copyOf(info), request, reply }, scope)
    })
    return copyOf(info)
  }

  // a panic of a request is written through its logger, so it carries the reqId binding
  function logOf (incident: Incident): FastifyBaseLogger {
    return incident.request?.log ?? rootLog
  }

  function writePanicLine ({ info, normalized, incident }: Panic): void {
    const log = logOf(incident)
    const level = incident.level ?? logLevel
    if (!isLevelEnabled(log, level)) return
    let sampled: number | null | undefined = null
    if (sampler !== undefined) {
      sampled = sampler.take(info)
      writeLeftOvers(sampler)
    }
    if (sampled === undefined) return
    // the budget is spent only by lines that are written
    const withStack = stackBudget === undefined || stackBudget.take(info.fingerprint)
    const fields = panicFieldsOf(info, { statusCode: incident.statusCode, stackSuppressed: !withStack, skipped: sampled ?? undefined })
    writeLine(log, level, copier.lineError(normalized, withStack, errBytesFor(log, fields)), fields, PANIC_MESSAGE)
  }

  // what sampling carried for a fingerprint it stopped tracking: one line, no err (nothing of those
  // panics is kept), so that lines plus what they carry still equal the panics
  function writeLeftOvers (from: LogSampler): void {
    while (from.leftOvers.length > 0) {
      const { panic, skipped } = from.leftOvers.shift() as { panic: SampledPanic, skipped: number }
      writeLine(rootLog, logLevel, undefined, panicFieldsOf(panic, { skipped }), SAMPLED_MESSAGE)
    }
  }

  function close (): void {
    if (sampler === undefined) return
    sampler.flush()
    writeLeftOvers(sampler)
  }

  // the application's function: if it throws or answers something that is not an object, the
  // panic goes on without its fields
  function contextOf (context: PanicContext, request: FastifyRequest, info: PanicInfo): Record<string, unknown> | undefined {
    let fields: unknown
    try {
      fields = context(request, info)
    } catch {
      return undefined
    }
    // a promise is something else; left alone, its rejection would end the process
    if (types.isPromise(fields)) {
      markHandled(fields)
      return undefined
    }
    const copy = copier.copy(fields, budgetOf(CONTEXT_BYTES))
    return copy !== null && typeof copy === 'object' && !Array.isArray(copy) ? copy as Record<string, unknown> : undefined
  }

  function handlerFailed ({ info, incident }: Panic, failure: unknown): void {
    const log = logOf(incident)
    if (!isLevelEnabled(log, logLevel)) return
    const fields = panicFieldsOf(info, { statusCode: 500 })
    writeLine(log, logLevel, copier.lineError(copier.normalize(failure), true, errBytesFor(log, fields)), fields, HANDLER_FAILED_MESSAGE)
  }

  function recoveryFailed (incident: Incident, failure: unknown): void {
    const labels = { source: incident.source, method: methodOf(incident.request), route: routeOf(incident.request) }
    try {
      if (incident.counted !== true) count(incident, labels)
    } catch {
      // a registry that throws: the line below still says what happened
    }
    const log = logOf(incident)
    const fields = panicFieldsOf(labels, { statusCode: incident.reply === undefined ? undefined : 500 })
    // the copy never throws, and writeLine keeps a failing logger to itself
    writeLine(log, 'error', copier.lineError(copier.normalize(failure), true, errBytesFor(log, fields)), fields, RECOVERY_FAILED_MESSAGE)
  }

  function count (incident: Incident, labels: Pick<PanicInfo, 'source' | 'method' | 'route'>): void {
    counter?.inc(labels)
    incident.counted = true
  }
}

// what the application's code is given: its own copy, so that what it changes stays its own
function copyOf (info: PanicInfo): PanicInfo {
  const copy = { ...info }
  if (info.context !== undefined) copy.context = structuredClone(info.context)
  return copy
}
