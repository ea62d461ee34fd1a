import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicHandler, PanicInfo } from '../types/index'
import { FST_RECOVERY_HANDLER_INVALID_REPLY, FST_RECOVERY_HANDLER_TIMEOUT } from './errors'
import { awaitable } from './foreign-promise'
import { FRAMING_HEADERS, isSendable } from './headers'
import type { CustomReply } from './panic-reply'
import { typeOf } from './safe-read'

// Contract §4: the custom handler may choose the reply to a panic. Whatever it does — throw, reject,
// answer nonsense, never settle — the outcome is either a checked reply or a failure; never an exception.

export type HandlerOutcome = { custom: CustomReply | undefined } | { failure: unknown }

/** How a value the handler answered is described in a failure's message: bounded and redacted like any line. */
export type Describe = (value: unknown) => string

export function askHandler (
  handler: PanicHandler,
  info: PanicInfo,
  request: FastifyRequest,
  reply: FastifyReply,
  timeoutMs: number,
  describe: Describe
): Promise<HandlerOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ failure: new FST_RECOVERY_HANDLER_TIMEOUT(timeoutMs) }), timeoutMs)
    const settle = (outcome: HandlerOutcome): void => {
      clearTimeout(timer)
      resolve(outcome)
    }
    const answered = (answer: unknown): void => settle(check(answer, describe))
    const failed = (failure: unknown): void => settle({ failure })
    try {
      const answer = handler(info, request, reply)
      // a native promise is awaited without its own `constructor` or species, which may throw;
      // Promise.resolve turns any other thenable whose `then` getter throws into a rejection
      Promise.resolve(awaitable(answer)).then(answered, failed)
    } catch (failure) {
      failed(failure)
    }
  })
}

// The answer is the application's own object: its fields are read once each, and a field that
// cannot be read is a failure of the handler, never a reply.
function check (answer: unknown, describe: Describe): HandlerOutcome {
  if (answer === undefined || answer === null) return { custom: undefined }
  if (typeof answer !== 'object') return invalid(`a ${typeOf(answer)} instead of an object`)
  let statusCode: unknown, headers: unknown, body: unknown
  try {
    ({ statusCode = 500, headers, body } = answer as Record<string, unknown>)
  } catch (failure) {
    return { failure }
  }
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 400 || statusCode > 599) {
    return invalid(`statusCode ${describe(statusCode)}, which is not an integer in 400-599`)
  }
  const checked = checkHeaders(headers, describe)
  if (typeof checked === 'string') return invalid(checked)
  const custom: CustomReply = { statusCode, headers: checked }
  if (typeof body === 'string') {
    custom.body = body
    custom.contentType = 'text/plain; charset=utf-8'
  } else if (Buffer.isBuffer(body)) {
    custom.body = body
    custom.contentType = 'application/octet-stream'
  } else if (body !== undefined) {
    let json: string | undefined
    try {
      json = JSON.stringify(body)
    } catch (failure) {
      return { failure }
    }
    if (typeof json !== 'string') return invalid(`a body that is not JSON: ${describe(body)}`)
    custom.body = json
    custom.contentType = 'application/json; charset=utf-8'
  }
  return { custom }
}

/** The headers lower-cased, or why they cannot be sent. */
function checkHeaders (headers: unknown, describe: Describe): Record<string, string> | string {
  const checked: Record<string, string> = Object.create(null)
  if (headers === undefined) return checked
  if (headers === null || typeof headers !== 'object') return `headers ${describe(headers)}, not an object`
  let entries: Array<[string, unknown]>
  try {
    entries = Object.entries(headers)
  } catch {
    return 'headers that cannot be read'
  }
  for (const [name, value] of entries) {
    const lower = name.toLowerCase()
    // the plugin decides the framing and the connection: a handler's would contradict them
    if (FRAMING_HEADERS.has(lower)) return `header "${lower}", which only the plugin may set`
    if (typeof value !== 'string') return `header "${lower}" with a ${typeOf(value)} value`
    if (!isSendable(name, value)) return `headers that cannot be sent: header ${JSON.stringify(name)}`
    checked[lower] = value
  }
  return checked
}

function invalid (what: string): HandlerOutcome {
  return { failure: new FST_RECOVERY_HANDLER_INVALID_REPLY(what) }
}
