import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { SerializedError } from './serialize-error'

// Contract §6: one line per panic through the request's logger, so it carries the reqId binding.

export const PANIC_MESSAGE = 'panic recovered'
export const HANDLER_FAILED_MESSAGE = 'recovery handler failed'

/** The `panic` field of a line. */
export interface PanicFields {
  source: string
  method: string
  route: string
  statusCode?: number
  latencyMs?: number
  fingerprint: string
  task?: string
  stackSuppressed?: true
}

// The logger's own `err` serializer (pino's, in Fastify) would serialize the already bounded
// `err` again: it reads `constructor.name` for `type` and always writes a `stack`, even an empty
// one. Handing it an object without a string `message` makes it pass the value through, and the
// logger's JSON encoder writes what `toJSON` returns.
class PreSerializedError {
  readonly #value: SerializedError
  constructor (value: SerializedError) {
    this.#value = value
  }

  toJSON (): SerializedError {
    return this.#value
  }
}

/** Whether a line at `level` would be written (loggers without `isLevelEnabled` are asked to write). */
export function isLevelEnabled (log: FastifyBaseLogger, level: string): boolean {
  const { isLevelEnabled } = log as { isLevelEnabled?: (level: string) => boolean }
  try {
    return typeof isLevelEnabled !== 'function' || isLevelEnabled.call(log, level)
  } catch {
    return true
  }
}

/** Writes one line; a logger that throws (a failing destination, a hostile hook) loses the line, never the reply. */
export function writeLine (log: FastifyBaseLogger, level: string, err: SerializedError, panic: PanicFields, message: string): void {
  const write = (log as unknown as Record<string, (object: object, message: string) => void>)[level]
  try {
    write.call(log, { err: new PreSerializedError(err), panic }, message)
  } catch {
    try {
      write.call(log, { panic }, message)
    } catch {
      // nothing left to log with
    }
  }
}

/** Fastify's `disableRequestLogging` setting (`initialConfig`): `true`, or a function of the request. */
export type RequestLoggingDisabled = boolean | ((request: FastifyRequest) => boolean) | undefined

/**
 * Client and service errors are not panics, but Fastify's default error handler logs them (4xx at
 * `info`, 5xx at `error`, skipped when request logging is disabled); the plugin keeps those lines.
 * Call it after the reply's status is set: the `res` field shows it.
 */
export function logPassThrough (value: unknown, statusCode: number, request: FastifyRequest, reply: FastifyReply, disabled: RequestLoggingDisabled): void {
  try {
    if (disabled === true || (typeof disabled === 'function' && disabled(request))) return
    const message = (value as { message?: string }).message
    if (statusCode >= 500) {
      reply.log.error({ req: request, res: reply, err: value }, message)
    } else {
      reply.log.info({ res: reply, err: value }, message)
    }
  } catch {
    // a hostile error object or a failing logger: the reply still goes out
  }
}
