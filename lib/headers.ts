import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { isHttp2 } from './request'

// Which headers a reply of the plugin carries: one place for the rules of RFC 9110 and 9113, and
// the one answer to "which headers does this panic reply set, and which set before does it remove"
// (`panicHeaders`), for the reply Fastify sends and for the one written straight to the socket.

/** Headers that describe a body: a panic reply replaces the body, so these go (contract §3). */
export const BODY_HEADERS: readonly string[] = ['content-type', 'content-length', 'content-disposition', 'content-encoding',
  'content-language', 'content-location', 'content-range', 'etag', 'last-modified', 'transfer-encoding']

/** RFC 9113 §8.2.2: connection-specific headers, never sent on HTTP/2. */
export const CONNECTION_HEADERS: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']

/** Contract §4: what a custom handler may not decide, the message's framing and the connection. */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive',
  'proxy-connection', 'upgrade', 'trailer', 'te'])

/** Whether `name` can be a header's name. Never throws. */
export function isHeaderName (name: unknown): name is string {
  try {
    validateHeaderName(name as string)
    return typeof name === 'string'
  } catch {
    return false
  }
}

/** Whether `name: value` can be written (what Node checks in writeHead). Never throws. */
export function isSendable (name: string, value: unknown): boolean {
  try {
    validateHeaderName(name)
    if (Array.isArray(value)) {
      for (const item of value) {
        if (typeof item !== 'string') return false
        validateHeaderValue(name, item)
      }
      return value.length > 0
    }
    if (typeof value !== 'string' && typeof value !== 'number') return false
    validateHeaderValue(name, String(value))
    return true
  } catch {
    return false
  }
}

export type HeaderValue = string | number | string[]

/** The headers of `headers` set before a panic that its reply keeps: sendable, and not in `remove`. */
export function keptHeaders (headers: Record<string, unknown>, remove: readonly string[]): Record<string, HeaderValue> {
  const kept: Record<string, HeaderValue> = Object.create(null)
  for (const [name, value] of Object.entries(headers)) {
    if (!remove.includes(name) && isSendable(name, value)) kept[name] = value as HeaderValue
  }
  return kept
}

export interface PanicHeaderSettings {
  requestIdHeader: string | false
  closeConnection: 'auto' | boolean
}

/** What a panic reply does to the headers: those it sets, and those set before that it removes. */
export interface PanicHeaders {
  set: Record<string, HeaderValue>
  remove: readonly string[]
}

const JSON_TYPE = 'application/json; charset=utf-8'
const REMOVED_HTTP2 = [...new Set([...BODY_HEADERS, ...CONNECTION_HEADERS])]
// closeConnection: false also drops the `connection: close` Fastify sets after a body parser failed
const REMOVED_KEEP_ALIVE = [...BODY_HEADERS, 'connection']

/**
 * Contract §3: `cache-control: no-store`, a JSON content type (a body of another kind sets its own),
 * the request id when it is a valid header value, and `connection: close` per `closeConnection`
 * (`'auto'`: when the request body may still be on the wire) or when `close` asks for it (the last
 * resort, the process net's culprit). Headers set before (CORS, cookies, security headers) stay but
 * those describing the replaced body, and on HTTP/2 the connection-specific ones. Never throws.
 */
export function panicHeaders (request: FastifyRequest, requestId: string, settings: PanicHeaderSettings, close = false): PanicHeaders {
  const { requestIdHeader, closeConnection } = settings
  const set: Record<string, HeaderValue> = { 'cache-control': 'no-store', 'content-type': JSON_TYPE }
  // an id that is not a valid header value (CR/LF from genReqId or a client header) cannot inject headers
  if (requestIdHeader !== false && requestId !== '' && isSendable(requestIdHeader, requestId)) set[requestIdHeader] = requestId
  // HTTP/2 has no connection header: each stream is independent
  if (isHttp2(request)) return { set, remove: REMOVED_HTTP2 }
  if (close || closeConnection === true || (closeConnection === 'auto' && !bodyFullyRead(request))) set.connection = 'close'
  return { set, remove: closeConnection === false && !close ? REMOVED_KEEP_ALIVE : BODY_HEADERS }
}

// 'auto': the connection is closed only when the request body may still be on the wire,
// so the next request's framing is in doubt (and an unread upload is not drained for nothing).
// `complete`: every byte arrived (a socket's request); `readableEnded`: the body was read to its end
// (what `inject`'s request says: it never sets `complete`).
function bodyFullyRead (request: FastifyRequest): boolean {
  const { headers } = request
  const noBody = headers['transfer-encoding'] === undefined &&
    (headers['content-length'] === undefined || headers['content-length'] === '0')
  return noBody || request.raw.complete || request.raw.readableEnded
}
