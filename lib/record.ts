import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { PanicInfo, PanicSource } from '../types/index'
import { fingerprintOf } from './fingerprint'
import { HANDLER_FAILED_MESSAGE, isLevelEnabled, PANIC_MESSAGE, writeLine, type PanicFields } from './log'
import { NOT_FOUND_ROUTE, type PanicCounter } from './metrics'
import { normalize } from './normalize'
import { serializeError } from './serialize-error'
import type { StackBudget } from './stack-budget'

// Recording a panic is the same whatever its source: normalise it, fingerprint it, write its one
// line, count it once. Nothing here throws.

export interface PanicEvent {
  value: unknown
  source: PanicSource
  /** `request.log` when there is a request, so the line carries its reqId. */
  log: FastifyBaseLogger
  request?: FastifyRequest
  reply?: FastifyReply
  /** The status the client gets or got; absent where there is no response. */
  statusCode?: number
  task?: string
  /** Overrides the `logLevel` option (uncaught exceptions log at `fatal`). */
  level?: string
}

export interface Recorder {
  /** Logs and counts one panic; returns what the custom handler is given. */
  record (event: PanicEvent): PanicInfo
  /** A response that broke after its headers went out (a failing stream, raw writes): source "response". */
  brokenResponse (value: unknown, request: FastifyRequest, reply: FastifyReply): void
  /** The second line of a panic whose custom handler failed. */
  handlerFailed (info: PanicInfo, failure: unknown, log: FastifyBaseLogger, statusCode: number): void
}

export interface RecorderParts {
  logLevel: string
  stackBudget: StackBudget | undefined
  counter: PanicCounter | undefined
}

export function createRecorder ({ logLevel, stackBudget, counter }: RecorderParts): Recorder {
  return { record, brokenResponse, handlerFailed }

  function brokenResponse (value: unknown, request: FastifyRequest, reply: FastifyReply): void {
    record({ value, source: 'response', log: request.log, request, reply, statusCode: reply.statusCode })
  }

  function record ({ value, source, log, request, reply, statusCode, task, level = logLevel }: PanicEvent): PanicInfo {
    const { error, type, message } = normalize(value)
    const method = request === undefined ? '' : request.method
    const route = request === undefined ? '' : routeOf(request)
    const info: PanicInfo = {
      error,
      value,
      source,
      requestId: request === undefined ? undefined : String(request.id),
      method: request === undefined ? undefined : method,
      route: request === undefined ? undefined : route,
      latencyMs: reply === undefined ? undefined : latencyOf(reply),
      fingerprint: fingerprintOf(source, method, route, type, message),
      task
    }
    if (isLevelEnabled(log, level)) {
      // the budget is spent only by lines that are written
      const withStack = stackBudget === undefined || stackBudget.take(info.fingerprint)
      const panic = fieldsOf(info, statusCode)
      if (!withStack) panic.stackSuppressed = true
      writeLine(log, level, serializeError(error, withStack, type), panic, PANIC_MESSAGE)
    }
    counter?.inc(method, route, source)
    return info
  }

  function handlerFailed (info: PanicInfo, failure: unknown, log: FastifyBaseLogger, statusCode: number): void {
    if (isLevelEnabled(log, logLevel)) {
      writeLine(log, logLevel, serializeError(normalize(failure).error, true), fieldsOf(info, statusCode), HANDLER_FAILED_MESSAGE)
    }
  }
}

/** The route template of a request, `__not_found__` in the not-found handler. */
function routeOf (request: FastifyRequest): string {
  return request.is404 ? NOT_FOUND_ROUTE : request.routeOptions.url as string
}

// Fastify tracks a reply's start time only when it logs requests or has onResponse hooks.
function latencyOf (reply: FastifyReply): number | undefined {
  const elapsed = reply.elapsedTime
  return elapsed > 0 ? Math.round(elapsed * 1000) / 1000 : undefined
}

function fieldsOf (info: PanicInfo, statusCode: number | undefined): PanicFields {
  return {
    source: info.source,
    method: info.method ?? '',
    route: info.route ?? '',
    statusCode,
    latencyMs: info.latencyMs,
    fingerprint: info.fingerprint,
    task: info.task
  }
}
