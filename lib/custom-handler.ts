import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicHandler, PanicInfo } from '../types/index'
import { describe, readProperty, typeOf } from './bound'
import { FST_RECOVERY_HANDLER_INVALID_REPLY, FST_RECOVERY_HANDLER_TIMEOUT } from './errors'

// Contract §4: the custom handler may answer the panic. Whatever it does — throw, reject, answer
// nonsense, never settle — the outcome is either a checked reply or a failure; never an exception.

/** A handler's answer, checked and with its body encoded. */
export interface CustomReply {
  statusCode: number
  headers: Record<string, string>
  body?: string | Buffer
  contentType?: string
}

export type HandlerOutcome = { custom: CustomReply | undefined } | { failure: unknown }

export function askHandler (
  handler: PanicHandler,
  info: PanicInfo,
  request: FastifyRequest,
  reply: FastifyReply,
  timeoutMs: number
): Promise<HandlerOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ failure: new FST_RECOVERY_HANDLER_TIMEOUT(timeoutMs) }), timeoutMs)
    const settle = (outcome: HandlerOutcome): void => {
      clearTimeout(timer)
      resolve(outcome)
    }
    try {
      // Promise.resolve turns a thenable whose `then` getter throws into a rejection
      Promise.resolve(handler(info, request, reply)).then((answer) => settle(check(answer)), (failure) => settle({ failure }))
    } catch (failure) {
      settle({ failure })
    }
  })
}

function check (answer: unknown): HandlerOutcome {
  if (answer === undefined || answer === null) return { custom: undefined }
  if (typeof answer !== 'object') return invalid(`a ${typeOf(answer)} instead of an object`)
  const statusCode = readProperty(answer, 'statusCode') ?? 500
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 400 || statusCode > 599) {
    return invalid(`statusCode ${describe(statusCode)}, which is not an integer in 400-599`)
  }
  const headers = checkHeaders(readProperty(answer, 'headers'))
  if (typeof headers === 'string') return invalid(headers)
  const custom: CustomReply = { statusCode, headers }
  const body = readProperty(answer, 'body')
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
    } catch (error) {
      return { failure: error }
    }
    if (json === undefined) return invalid(`a body that is not JSON: ${describe(body)}`)
    custom.body = json
    custom.contentType = 'application/json; charset=utf-8'
  }
  return { custom }
}

/** The headers lower-cased, or why they cannot be sent. */
function checkHeaders (headers: unknown): Record<string, string> | string {
  const checked: Record<string, string> = Object.create(null)
  if (headers === undefined) return checked
  if (headers === null || typeof headers !== 'object') return `headers ${describe(headers)}, not an object`
  try {
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') return `header "${name}" with a ${typeOf(value)} value`
      validateHeaderName(name)
      validateHeaderValue(name, value)
      checked[name.toLowerCase()] = value
    }
  } catch (error) {
    return `headers that cannot be sent: ${(error as Error).message}`
  }
  return checked
}

function invalid (what: string): HandlerOutcome {
  return { failure: new FST_RECOVERY_HANDLER_INVALID_REPLY(what) }
}
