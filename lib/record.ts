import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { types } from 'node:util'
import type { PanicContext, PanicInfo, PanicSource } from '../types/index'
import { budgetOf, copyValue, truncate, type CopyRules } from './bounded-copy'
import { publishPanic } from './channel'
import { fingerprintOf } from './fingerprint'
import { HANDLER_FAILED_MESSAGE, isLevelEnabled, panicFieldsOf, PANIC_MESSAGE, RECOVERY_FAILED_MESSAGE, writeLine } from './log'
import { loggedError } from './logged-error'
import type { PanicCounter } from './metrics'
import { normalize } from './normalize'
import { latencyOf, methodOf, requestIdOf, routeOf } from './request-facts'
import type { StackBudget } from './stack-budget'
import { markHandled } from './foreign-promise'

// Recording a panic is the same whatever its source: normalise it, fingerprint it, add the
// application's context, write its one line, count it once, publish it. Every entry point hands the
// recorder an Incident; the recorder marks it counted, so the last resort (lib/last-resort.ts)
// counts exactly the panics it did not.

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
}

export interface Recorder {
  /** Logs and counts one panic; returns what the custom handler is given. */
  record (incident: Incident): PanicInfo
  /** The second line of a panic whose custom handler failed. */
  handlerFailed (info: PanicInfo, failure: unknown, request: FastifyRequest): void
  /** The plugin's own code failed on `incident`: a `recovery failed` line, and the count if it was not made. Never throws. */
  recoveryFailed (incident: Incident, failure: unknown): void
}

export interface RecorderParts {
  logLevel: string
  stackBudget: StackBudget | undefined
  counter: PanicCounter | undefined
  rules: CopyRules
  /** The logger for panics without a request. */
  log: FastifyBaseLogger
  /** The `context` option. */
  context: PanicContext | undefined
}

// a task name is the application's, but a line is bounded whatever it is given
const TASK_BYTES = 256
// contract §12: the context fields, bounded and redacted like `err`
const CONTEXT_BYTES = 4 * 1024

export function createRecorder ({ logLevel, stackBudget, counter, rules, log: rootLog, context }: RecorderParts): Recorder {
  return { record, handlerFailed, recoveryFailed }

  function record (incident: Incident): PanicInfo {
    const { value, source, request, reply, statusCode, task, level = logLevel } = incident
    const normalized = normalize(value, rules)
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
      task: task === undefined ? undefined : truncate(task, TASK_BYTES)
    }
    if (context !== undefined && request !== undefined) info.context = contextOf(context, request, info)
    const log = request?.log ?? rootLog
    if (isLevelEnabled(log, level)) {
      // the budget is spent only by lines that are written
      const withStack = stackBudget === undefined || stackBudget.take(info.fingerprint)
      const fields = panicFieldsOf(info, { statusCode, stackSuppressed: !withStack })
      writeLine(log, level, loggedError(normalized, withStack, rules), fields, PANIC_MESSAGE)
    }
    count(incident, method, route)
    publishPanic(info, request, reply)
    return info
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
    const copy = copyValue(fields, budgetOf(CONTEXT_BYTES), rules)
    return copy !== null && typeof copy === 'object' && !Array.isArray(copy) ? copy as Record<string, unknown> : undefined
  }

  function handlerFailed (info: PanicInfo, failure: unknown, request: FastifyRequest): void {
    if (!isLevelEnabled(request.log, logLevel)) return
    const err = loggedError(normalize(failure, rules), true, rules)
    writeLine(request.log, logLevel, err, panicFieldsOf(info, { statusCode: 500 }), HANDLER_FAILED_MESSAGE)
  }

  function recoveryFailed (incident: Incident, failure: unknown): void {
    const method = methodOf(incident.request)
    const route = routeOf(incident.request)
    try {
      if (incident.counted !== true) count(incident, method, route)
    } catch {
      // a registry that throws: the line below still says what happened
    }
    const log = incident.request?.log ?? rootLog
    const fields = panicFieldsOf({ source: incident.source, method, route }, { statusCode: incident.reply === undefined ? undefined : 500 })
    // the copy never throws, and writeLine keeps a failing logger to itself
    writeLine(log, 'error', loggedError(normalize(failure, rules), true, rules), fields, RECOVERY_FAILED_MESSAGE)
  }

  function count (incident: Incident, method: string, route: string): void {
    counter?.inc({ method, route, source: incident.source })
    incident.counted = true
  }
}
