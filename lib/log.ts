import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { PanicInfo } from '../types/index'
import { jsonBytes } from './budget'
import { privateSymbol } from './safe-read'

// Contract §6: one line per panic through the request's logger, so it carries the reqId binding.
// The line's `panic` field is PanicInfo itself, but for what the line carries elsewhere: a field
// the recorder adds to PanicInfo is logged.

export const PANIC_MESSAGE = 'panic recovered'
export const HANDLER_FAILED_MESSAGE = 'recovery handler failed'
export const RECOVERY_FAILED_MESSAGE = 'recovery failed'
/** What log-storm sampling still carried for a fingerprint it stopped tracking. */
export const SAMPLED_MESSAGE = 'panics sampled'

// `error`/`value` are the line's `err`; `requestId` is the logger's own reqId binding
const ELSEWHERE: ReadonlySet<string> = new Set(['error', 'value', 'requestId'] satisfies Array<keyof PanicInfo>)

/** What the line tells beside PanicInfo: the status the client gets or got, a left-out stack, the panics sampling skipped. */
export interface LineExtras {
  statusCode?: number
  stackSuppressed?: boolean
  /** `panic.sampled.skipped` (contract §15). */
  skipped?: number
}

/** The line's `panic` field. */
export function panicFieldsOf (info: Partial<PanicInfo>, { statusCode, stackSuppressed, skipped }: LineExtras = {}): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  for (const key in info) {
    const value = info[key as keyof PanicInfo]
    if (value !== undefined && !ELSEWHERE.has(key)) fields[key] = value
  }
  if (statusCode !== undefined) fields.statusCode = statusCode
  if (stackSuppressed === true) fields.stackSuppressed = true
  if (skipped !== undefined) fields.sampled = { skipped }
  return fields
}

/** Contract §6: the whole line, the logger's own bindings (a client's request id, child-logger fields) included. */
export const LINE_BYTES = 64 * 1024
// what a logger adds beside the bindings and the fields: level, time, pid, hostname, msg, separators
const LINE_OVERHEAD = 320
// the least `err` gets, even when the bindings took the rest (a line that big is the logger's own)
const MIN_ERR_BYTES = 2 * 1024

/**
 * What the line's `err` may take: the line less what the logger's bindings and the `panic` fields
 * take, measured once per line. A logger that cannot tell its bindings (not pino) is taken to have none.
 */
export function errBytesFor (log: FastifyBaseLogger, fields: Record<string, unknown>): number {
  return Math.max(MIN_ERR_BYTES, LINE_BYTES - LINE_OVERHEAD - bindingsBytesOf(log) - fieldsBytesOf(fields))
}

// The JSON bytes of the `panic` field, counted rather than written: its values are strings and
// numbers but `context` and `sampled`, which are plain copies (lib/copier.ts) and are written to count them.
function fieldsBytesOf (fields: Record<string, unknown>): number {
  let bytes = 2
  for (const key in fields) {
    const value = fields[key]
    bytes += jsonBytes(key) + 2 // the colon, and the comma before the next (one too many, which the braces' count leaves room for)
    switch (typeof value) {
      case 'string':
        bytes += jsonBytes(value)
        break
      case 'number':
        bytes += Number.isFinite(value) ? String(value).length : 4 // JSON writes null
        break
      case 'boolean':
        bytes += value ? 4 : 5
        break
      default:
        bytes += Buffer.byteLength(JSON.stringify(value))
    }
  }
  return bytes
}

// pino keeps a logger's bindings as the JSON text it writes (`,"pid":1,"reqId":"…"`, after its
// bindings formatter), under a symbol of its own: read, rather than parsed by bindings() and
// serialised again at every panic
const chindingsOf = privateSymbol('pino.chindings')

function bindingsBytesOf (log: FastifyBaseLogger): number {
  try {
    const symbol = chindingsOf(log)
    const text = symbol === undefined ? undefined : (log as unknown as Record<symbol, unknown>)[symbol]
    if (typeof text === 'string') return Buffer.byteLength(text)
    // not pino: its bindings(), when it has one
    const { bindings } = log as { bindings?: () => unknown }
    if (typeof bindings !== 'function') return 0
    return Buffer.byteLength(JSON.stringify(bindings.call(log)) ?? '')
  } catch {
    return 0
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

/**
 * Writes one line through the first of `logs` that takes it (the request's logger, then the
 * instance's): a logger that throws (a getter, a failing destination, a hostile hook) hands the line
 * to the next, and the last one is tried without `err` too. `errOf` builds the line's `err` within
 * the bytes the first logger leaves it, once. Never throws.
 */
export function writeLine (logs: FastifyBaseLogger[], level: string, errOf: ((bytes: number) => Error) | undefined, panic: Record<string, unknown>, message: string): void {
  // neither measuring the bindings nor the copy throws
  const err = errOf?.(errBytesFor(logs[0], panic))
  for (const [i, log] of logs.entries()) {
    const fields = err === undefined ? { panic } : { err, panic }
    if (write(log, level, fields, message)) return
    if (i === logs.length - 1 && err !== undefined) write(log, level, { panic }, message)
  }
}

function write (log: FastifyBaseLogger, level: string, fields: object, message: string): boolean {
  try {
    const method = (log as unknown as Record<string, (object: object, message: string) => void>)[level]
    method.call(log, fields, message)
    return true
  } catch {
    return false
  }
}

/** Fastify's own line for an error its default handler answers (4xx at info, 5xx at error), as it writes it. */
export type FastifyErrorLine = (error: unknown, request: FastifyRequest, reply: FastifyReply) => void

/** Client and service errors are not panics: they keep the line Fastify's default handler writes for them. */
export function logClientError (fastifyLine: FastifyErrorLine, value: unknown, request: FastifyRequest, reply: FastifyReply): void {
  try {
    fastifyLine(value, request, reply)
  } catch {
    // a hostile error object that the logger's serializer trips on: the reply still goes out
  }
}
