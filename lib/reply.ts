import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import Negotiator from 'negotiator'
import { readProperty } from './bound'
import type { CustomReply } from './custom-handler'

// What the client gets: contract §3 for panics, §2 for client and service errors, and the
// double-fault guard that keeps both true when the error reply itself fails.

/** A reply decided by the plugin, before Fastify sends it. */
export interface ReplyPlan {
  statusCode: number
  headers: Record<string, string>
  body: string | Buffer
  /** Headers set earlier that must not go out with this reply. */
  remove?: readonly string[]
}

export interface PanicReplySettings {
  message: string
  closeConnection: 'auto' | boolean
  requestIdHeader: string | false
}

const JSON_TYPE = 'application/json; charset=utf-8'
// RFC 9457 §3: the problem media type; sent as a Buffer so Fastify does not append a charset
const PROBLEM_TYPE = 'application/problem+json'
const OFFERED_TYPES = ['application/json', PROBLEM_TYPE]
// headers describing a body the panic reply replaces (Fastify already drops content-type and -length)
const STALE_HEADERS = ['content-disposition', 'content-encoding', 'content-language', 'content-location', 'content-range', 'etag', 'last-modified']
// closeConnection: false also drops the `connection: close` Fastify sets after a body parser failed
const STALE_HEADERS_KEEP_ALIVE = [...STALE_HEADERS, 'connection']
// RFC 9110 §5.5: what a header value may hold (the check Node applies in writeHead)
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]+$/
const MAX_ERROR_HEADERS = 50

/** Builds the default reply to a panic (contract §3) for a request, with status 500 unless told otherwise. */
export type PanicReplyBuilder = (request: FastifyRequest, statusCode?: number) => ReplyPlan

export function buildPanicReply (settings: PanicReplySettings): PanicReplyBuilder {
  const { requestIdHeader, closeConnection } = settings
  const remove = closeConnection === false ? STALE_HEADERS_KEEP_ALIVE : STALE_HEADERS
  // Everything but the request id is known at registration: a panic storm only escapes the id.
  // (JSON.stringify of a fresh object per panic costs more than the rest of the reply.)
  const message = JSON.stringify(settings.message)
  const prefixes = new Map<number, { json: string, problem: string }>()
  const prefixesOf = (statusCode: number): { json: string, problem: string } => {
    let prefix = prefixes.get(statusCode)
    if (prefix === undefined) {
      const title = JSON.stringify(STATUS_CODES[statusCode] ?? 'Error')
      prefix = {
        json: `{"statusCode":${statusCode},"error":${title},"message":${message},"requestId":`,
        problem: `{"type":"about:blank","title":${title},"status":${statusCode},"requestId":`
      }
      prefixes.set(statusCode, prefix) // at most 200 statuses: 400-599
    }
    return prefix
  }

  return function panicReply (request: FastifyRequest, statusCode = 500): ReplyPlan {
    const requestId = String(request.id)
    const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-type': JSON_TYPE }
    let body: string | Buffer
    if (prefersProblem(request)) {
      headers['content-type'] = PROBLEM_TYPE
      body = Buffer.from(`${prefixesOf(statusCode).problem}${JSON.stringify(requestId)}}`)
    } else {
      body = `${prefixesOf(statusCode).json}${JSON.stringify(requestId)}}`
    }
    if (requestIdHeader !== false && HEADER_VALUE.test(requestId)) {
      headers[requestIdHeader] = requestId
    }
    if (closeConnection === true || (closeConnection === 'auto' && !bodyFullyRead(request))) {
      headers.connection = 'close'
    }
    return { statusCode, headers, body, remove }
  }
}

/** The reply a custom handler chose: its status, headers and body over the default ones. */
export function customPanicReply (custom: CustomReply, request: FastifyRequest, panicReply: PanicReplyBuilder): ReplyPlan {
  const plan = panicReply(request, custom.statusCode)
  if (custom.body !== undefined) {
    plan.body = custom.body
    plan.headers['content-type'] = custom.contentType as string
  }
  Object.assign(plan.headers, custom.headers)
  return plan
}

/**
 * The reply to a client (4xx) or service (5xx) error: Fastify's shape and bytes, `err.headers` kept.
 * 5xx messages are replaced by the status text unless the error says `expose: true`.
 */
export function passThroughReply (value: object, statusCode: number, reply: FastifyReply): ReplyPlan {
  const title = STATUS_CODES[statusCode]
  const code = readProperty(value, 'code')
  let message = title
  if (statusCode < 500 || readProperty(value, 'expose') === true) {
    const own = readProperty(value, 'message')
    if (typeof own === 'string') message = own
  }
  const fields = {
    statusCode,
    code: code === undefined || code === null ? undefined : String(code),
    error: title,
    message
  }
  return {
    statusCode,
    headers: { 'content-type': JSON_TYPE, ...errorHeaders(value) },
    body: serializeWithRouteSchema(reply, statusCode, value, fields) ?? JSON.stringify(fields)
  }
}

/**
 * Sends a reply the plugin built. Fastify routes a failure while sending an error reply (an onSend
 * hook that throws again) to the next error handler and finally to a fallback that puts the new
 * error's message in the body. Every one of those paths calls `reply.send`, so an own `send` on
 * this reply catches them and writes the `fallback` plan straight to the socket instead (built only
 * then: most replies never need it).
 */
export function sendGuarded (reply: FastifyReply, plan: ReplyPlan, fallback: () => ReplyPlan, onDoubleFault?: (value: unknown) => void): void {
  const send = reply.send
  const guard = function recoveryGuard (payload?: unknown): FastifyReply {
    if (reply.raw.writableEnded) return send.call(reply, payload) // a late send: Fastify's own "already sent" warning
    onDoubleFault?.(payload)
    writeRaw(reply, fallback())
    return reply
  }
  reply.send = guard
  try {
    if (plan.remove !== undefined) {
      // one snapshot: removeHeader costs more than looking, and these headers are rarely there
      const present = reply.getHeaders()
      for (const name of plan.remove) if (present[name] !== undefined) reply.removeHeader(name)
    }
    reply.code(plan.statusCode).headers(plan.headers)
    send.call(reply, plan.body)
  } catch (error) {
    // writeHead itself threw (a header set earlier is invalid): nothing was written yet
    guard(error)
  }
}

/** Whether the client is gone, so nothing can be written. */
export function clientGone (request: FastifyRequest, reply: FastifyReply): boolean {
  // not request.raw.destroyed: a request stream is destroyed once its body has been read
  return reply.raw.destroyed || request.raw.socket?.destroyed === true
}

/** Contract §3: after the headers went out nothing more is written; the client must see a broken response. */
export function breakResponse (reply: FastifyReply): void {
  reply.raw.destroy()
}

function writeRaw (reply: FastifyReply, plan: ReplyPlan): void {
  const res = reply.raw
  if (res.headersSent) {
    res.destroy()
    return
  }
  try {
    res.writeHead(plan.statusCode, { ...plan.headers, 'content-length': String(Buffer.byteLength(plan.body)) })
    res.end(plan.body)
  } catch {
    res.destroy()
  }
}

// RFC 9110 §12.5.1: q-values and specificity decide; on a tie the order of the Accept header does.
function prefersProblem (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  if (accept === undefined || !accept.includes('problem')) return false
  return new Negotiator({ headers: { accept } }).mediaType(OFFERED_TYPES) === PROBLEM_TYPE
}

// 'auto': the connection is closed only when the request body may still be on the wire,
// so the next request's framing is in doubt (and an unread upload is not drained for nothing).
function bodyFullyRead (request: FastifyRequest): boolean {
  const { headers } = request
  const noBody = headers['transfer-encoding'] === undefined &&
    (headers['content-length'] === undefined || headers['content-length'] === '0')
  return noBody || request.raw.complete
}

function errorHeaders (value: object): Record<string, string> {
  const headers = readProperty(value, 'headers')
  const valid: Record<string, string> = Object.create(null)
  if (headers === null || typeof headers !== 'object') return valid
  try {
    let count = 0
    for (const [name, header] of Object.entries(headers)) {
      if (++count > MAX_ERROR_HEADERS) break
      try {
        validateHeaderName(name)
        validateHeaderValue(name, header)
        valid[name.toLowerCase()] = header
      } catch {
        // an invalid header would make writeHead throw: it is dropped, the rest are kept
      }
    }
  } catch {
    // unreadable headers object
  }
  return valid
}

// Fastify serializes an error through the route's response schema for its status when there is
// one; doing the same keeps pass-through replies byte-identical on such routes.
function serializeWithRouteSchema (reply: FastifyReply, statusCode: number, value: object, fields: { message?: string }): string | undefined {
  let serializer = reply.getSerializationFunction(String(statusCode)) ?? reply.getSerializationFunction(`${Math.floor(statusCode / 100)}xx`)
  if (serializer !== undefined && typeof serializer !== 'function') {
    const byType = serializer as Record<string, ((input: unknown) => string) | undefined>
    serializer = byType['application/json'] ?? byType['*/*']
  }
  if (serializer === undefined) return undefined
  try {
    return serializer(Object.create(value, {
      error: { value: STATUS_CODES[statusCode] },
      message: { value: fields.message },
      statusCode: { value: statusCode }
    }))
  } catch {
    return undefined
  }
}
