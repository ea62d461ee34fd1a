import type { FastifyPluginAsync, FastifyReply, FastifyRequest, LogLevel } from 'fastify'
import type { Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** Added by fastify-recovery. */
    recovery: fastifyRecovery.Recovery
  }
}

type FastifyRecovery = FastifyPluginAsync<fastifyRecovery.FastifyRecoveryOptions>

declare namespace fastifyRecovery {
  /**
   * Where a panic happened: `request` (before the response started), `response` (after its headers
   * went out), `background` (`app.recovery.run`), `process` (the `process` net), `reported`
   * (`app.recovery.report`).
   */
  export type PanicSource = 'request' | 'response' | 'background' | 'process' | 'reported'

  /** What the plugin knows about one panic. Passed to the `handler` option. */
  export interface PanicInfo {
    /** The thrown value normalised to an Error (the value itself when it already was a readable Error). */
    error: Error
    /** What was thrown, untouched. */
    value: unknown
    source: PanicSource
    requestId?: string
    method?: string
    /** The route template (`/users/:id`), or `__not_found__`. */
    route?: string
    /** Milliseconds from the request's arrival to the panic, when Fastify tracks response times (a logger is set). */
    latencyMs?: number
    /** Short and stable for repeated occurrences of one failure: same source, method, route, error type and message shape. */
    fingerprint: string
    /** The name given to `app.recovery.run` or `app.recovery.report`. */
    task?: string
    /** What the `context` option returned for the panic's request, bounded and redacted. */
    context?: Record<string, unknown>
  }

  /** Fields the application adds to a panic of a request (user id, tenant, feature flag). */
  export type PanicContext = (request: FastifyRequest, info: PanicInfo) => Record<string, unknown> | undefined

  /** What a custom `handler` may answer instead of the default reply. Fields left out keep their default. */
  export interface PanicReply {
    /** 400–599; anything else makes the plugin send the default reply. */
    statusCode?: number
    /** Set over the default headers. */
    headers?: Record<string, string>
    /** An object (or any non-string, non-Buffer value) is sent as JSON; a string or Buffer as is. */
    body?: unknown
  }

  export type PanicHandler = (
    panic: PanicInfo,
    request: FastifyRequest,
    reply: FastifyReply
  ) => PanicReply | undefined | void | Promise<PanicReply | undefined | void>

  export interface StackDedupeOptions {
    /** How many lines of one fingerprint carry the stack within a window. Default 10. */
    max?: number
    /** The window, in milliseconds. Default 60000. */
    windowMs?: number
  }

  /** Log-storm sampling: per fingerprint and window, the first `first` lines, then one per `every` panics. */
  export interface SamplingOptions {
    /** How many panics of one fingerprint are logged as usual in a window. A positive integer. */
    first: number
    /** After those, one line per this many panics, carrying `panic.sampled.skipped`. A positive integer. */
    every: number
    /** The window, in milliseconds (at least 1). */
    windowMs: number
  }

  export interface MetricsOptions {
    /** The counter's name. Default `fastify_panics_total`. */
    name?: string
    /** Default: prom-client's global `register`. */
    registry?: Registry
    /** A path for a GET route serving the registry in Prometheus text format, or `false` (default). */
    endpoint?: string | false
  }

  export interface ProcessOptions {
    /** `'log'` (default): keep serving; `'exit'`: shut down gracefully and exit with code 1. */
    unhandledRejection?: 'log' | 'exit'
    /** `'exit'` (default): shut down gracefully and exit with code 1; `'log'`: keep serving. */
    uncaughtException?: 'exit' | 'log'
    /** Milliseconds in-flight requests get to finish before the exit. Default 10000. */
    shutdownTimeout?: number
  }

  export interface FastifyRecoveryOptions {
    /** The fixed `message` of the panic reply. Default `Internal Server Error`. */
    message?: string
    /** `'auto'` (default): close only when the request body was not fully read; `true`: always; `false`: never. */
    closeConnection?: 'auto' | boolean
    /** The response header carrying the request id, or `false`. Default `x-request-id`. */
    requestIdHeader?: string | false
    /** The level of the `panic recovered` line. Default `error`. */
    logLevel?: Exclude<LogLevel, 'silent'>
    /** Called once per panic, after it is logged and counted; `undefined` sends the default reply. */
    handler?: PanicHandler
    /** Milliseconds the handler may take before the default reply is sent. Default 1000. */
    handlerTimeout?: number
    /** Leave the stack out of repeated lines of one failure. Default `{ max: 10, windowMs: 60000 }`. */
    stackDedupe?: StackDedupeOptions | false
    /**
     * Log-storm sampling, off by default: per fingerprint and window, the first `first` panics are
     * logged, then one line per `every` panics, carrying `panic.sampled.skipped` (the panics not logged
     * since the previous line). Nothing is lost: lines plus what they carry equal the panics. The
     * counter, the channel and the reply are unchanged.
     */
    sampling?: SamplingOptions | false
    /** The Prometheus counter, or `false` to turn metrics off. */
    metrics?: MetricsOptions | false
    /**
     * The process-level safety net for unhandled rejections and uncaught exceptions, attributed to
     * the request that raised them. Default `false`; `true` is
     * `{ unhandledRejection: 'log', uncaughtException: 'exit', shutdownTimeout: 10000 }`.
     */
    process?: boolean | ProcessOptions
    /**
     * More key names whose values are written as `[redacted]` wherever they appear in a thrown value
     * (compared without case, `-`, `_` or `.`), besides the built-in credential names
     * (`authorization`, `cookie`, `password`, `token`, ... and keys ending in `password`, `secret`, `token`).
     */
    redact?: string[]
    /**
     * Fields for the panics of a request, written under `panic.context` and given to the handler and
     * the diagnostics channel as `info.context`; copied with the bounds (4 KiB) and redaction of `err`.
     * Synchronous (an `async` function is refused at registration). If it throws or returns
     * something that is not an object (a Promise included), the panic goes on without them.
     */
    context?: PanicContext
    /**
     * The developer page: a browser gets a page with the error, its `cause` chain and the source
     * around each frame of the application; a JSON client the generic body plus
     * `development: { type, message, stack }`. Default `false`; `true` is refused (a TypeError at
     * registration) unless `NODE_ENV` is exactly `development`.
     */
    development?: boolean
  }

  export interface RunOptions {
    /**
     * The request the task belongs to: its reqId, method and route label the panic (with `process` on,
     * the current request is the default). The Fastify request itself: anything else (`request.raw`) is left out.
     */
    request?: FastifyRequest
    /** A name for the task, logged as `panic.task`. */
    name?: string
  }

  export type ReportOptions = RunOptions

  /** What is published on the `fastify-recovery.panic` diagnostics channel for each panic. */
  export interface PanicMessage {
    info: PanicInfo
    request?: FastifyRequest
    reply?: FastifyReply
  }

  export interface Recovery {
    /**
     * Runs `task` now — or awaits it, when it is a promise or thenable already started
     * (`run(sendReceipt())`). Resolves to its result, or to `undefined` when it threw or rejected
     * (the failure is logged and counted with `source="background"`). Never rejects.
     */
    run<T>(task: (() => T | PromiseLike<T>) | PromiseLike<T>, options?: RunOptions): Promise<Awaited<T> | undefined>
    /**
     * Records a failure the application caught itself: one line, one count with
     * `source="reported"`, the diagnostics channel. Answers nothing, never throws, works for any value.
     */
    report(value: unknown, options?: ReportOptions): PanicInfo
  }

  export const fastifyRecovery: FastifyRecovery
  export { fastifyRecovery as default }
}

declare function fastifyRecovery (...params: Parameters<FastifyRecovery>): ReturnType<FastifyRecovery>
export = fastifyRecovery
