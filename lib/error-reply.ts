import { STATUS_CODES } from 'node:http'
import type { FastifyReply } from 'fastify'
import { isSendable, type HeaderValue } from './headers'
import { dataOf, errorMessageOf, inherits, ownKeysOf } from './safe-read'
import type { ReplyPlan } from './send'

// What the client gets for a client (4xx) or service (5xx) error (contract §2): exactly what Fastify's
// default error handler sends. Its rule (lib/error-handler.js, lib/reply.js): the error's `headers`
// and status are set, then `reply.send(error)`; an Error (`instanceof Error`) is written in Fastify's
// error shape `{statusCode, code?, error, message}` (through the route's response schema for the
// status when there is one), anything else is serialized as any payload is (a plain object as JSON,
// through the same schema), so other plugins' shapes (rate-limit's `errorResponseBuilder`) go out
// as they are.

const JSON_TYPE = 'application/json; charset=utf-8'
const MAX_ERROR_HEADERS = 50

/** The reply to a client or service error with status `statusCode`. */
export function errorReply (value: object, statusCode: number, reply: FastifyReply): ReplyPlan {
  const headers = errorHeaders(value)
  // Fastify's `instanceof Error`, found without running code (a Proxy on the chain would)
  if (!inherits(value, Error.prototype)) return { statusCode, headers, body: value }
  const title = STATUS_CODES[statusCode]
  // 5xx messages are replaced by the status text unless the error says `expose: true`
  const message = statusCode < 500 || dataOf(value, 'expose') === true ? errorMessageOf(value) : title
  const fields = { statusCode, code: codeOf(dataOf(value, 'code')), error: title, message }
  return {
    statusCode,
    headers: { 'content-type': JSON_TYPE, ...headers },
    body: serializeWithRouteSchema(reply, statusCode, value, fields) ?? JSON.stringify(fields)
  }
}

// Fastify's serializer writes `code` as a string; a value that is not plain data is left out
function codeOf (code: unknown): string | undefined {
  switch (typeof code) {
    case 'string':
      return code
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(code)
    default:
      return undefined
  }
}

function errorHeaders (value: object): Record<string, HeaderValue> {
  const headers = dataOf(value, 'headers')
  const valid: Record<string, HeaderValue> = Object.create(null)
  if (headers === null || typeof headers !== 'object') return valid
  const names = ownKeysOf(headers) ?? []
  for (let i = 0; i < names.length && i < MAX_ERROR_HEADERS; i++) {
    const name = names[i]
    const header = dataOf(headers, name)
    // an invalid header would make writeHead throw: it is dropped, the rest are kept
    if (isSendable(name, header)) valid[name.toLowerCase()] = header as HeaderValue
  }
  return valid
}

// Fastify serializes an error through the route's response schema for its status when there is
// one; doing the same keeps these replies byte-identical on such routes.
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
