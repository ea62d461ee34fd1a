import { STATUS_CODES } from 'node:http'
import type { FastifyRequest } from 'fastify'
import Negotiator from 'negotiator'
import type { PanicInfo } from '../types/index'
import type { CustomReply } from './custom-handler'
import { developmentFields, developmentPage } from './development-page'
import { isSendable } from './headers'
import { isHttp2, staleHeaders, type RawPlan } from './send'

// What the client gets for a panic (contract §3): the generic 500, as JSON or RFC 9457 problem+json,
// carrying the request id and nothing of the failure. With the `development` option (§13), a
// browser gets the developer page and a JSON client a `development` field.

export interface DefaultReplySettings {
  message: string
  closeConnection: 'auto' | boolean
  requestIdHeader: string | false
  development: boolean
}

const JSON_TYPE = 'application/json; charset=utf-8'
// RFC 9457 §3: the problem media type; sent as a Buffer so Fastify does not append a charset
const PROBLEM_TYPE = 'application/problem+json'
const HTML_TYPE = 'text/html'
const OFFERED_TYPES = ['application/json', PROBLEM_TYPE]
const OFFERED_IN_DEVELOPMENT = [...OFFERED_TYPES, HTML_TYPE]

/** Builds the default reply to a panic for a request, with status 500 unless told otherwise. */
export interface DefaultReplyBuilder {
  /** `info`: the panic, for the developer page and field (when the `development` option is on). */
  (request: FastifyRequest, requestId: string, statusCode?: number, info?: PanicInfo): RawPlan
  /** The reply of the last resort: plain JSON, no negotiation, the connection closed. Never throws. */
  lastResort (requestId: string, http2: boolean): RawPlan
}

export function buildDefaultReply (settings: DefaultReplySettings): DefaultReplyBuilder {
  const { requestIdHeader, closeConnection, development } = settings
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
  const idHeaders = (requestId: string): Record<string, string> => {
    const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-type': JSON_TYPE }
    // an id that is not a valid header value (CR/LF from genReqId or a client header) cannot inject headers
    if (requestIdHeader !== false && requestId !== '' && isSendable(requestIdHeader, requestId)) headers[requestIdHeader] = requestId
    return headers
  }

  const defaultReply = function defaultReply (request: FastifyRequest, requestId: string, statusCode = 500, info?: PanicInfo): RawPlan {
    const headers = idHeaders(requestId)
    const explained = development && info !== undefined
    const mediaType = preferredType(request, explained)
    let body: string | Buffer
    if (mediaType === HTML_TYPE) {
      const page = developmentPage(info as PanicInfo)
      headers['content-type'] = 'text/html; charset=utf-8'
      headers['content-security-policy'] = page.csp
      headers['x-content-type-options'] = 'nosniff'
      body = page.html
    } else {
      // the developer's additions, after the id: `,"development":{...}`
      const extra = explained ? `,"development":${JSON.stringify(developmentFields(info.error))}` : ''
      if (mediaType === PROBLEM_TYPE) {
        headers['content-type'] = PROBLEM_TYPE
        body = Buffer.from(`${prefixesOf(statusCode).problem}${JSON.stringify(requestId)}${extra}}`)
      } else {
        body = `${prefixesOf(statusCode).json}${JSON.stringify(requestId)}${extra}}`
      }
    }
    const http2 = isHttp2(request)
    // HTTP/2 has no connection header: each stream is independent
    if (!http2 && (closeConnection === true || (closeConnection === 'auto' && !bodyFullyRead(request)))) {
      headers.connection = 'close'
    }
    return { statusCode, headers, body, remove: staleHeaders(http2, closeConnection === false) }
  } as DefaultReplyBuilder

  defaultReply.lastResort = (requestId, http2) => {
    const headers = idHeaders(requestId)
    if (!http2) headers.connection = 'close'
    return { statusCode: 500, headers, body: `${prefixesOf(500).json}${JSON.stringify(requestId)}}` }
  }
  return defaultReply
}

/** The reply a custom handler chose: its status, headers and body over the default ones. */
export function handlerReply (custom: CustomReply, request: FastifyRequest, requestId: string, defaultReply: DefaultReplyBuilder): RawPlan {
  const plan = defaultReply(request, requestId, custom.statusCode)
  if (custom.body !== undefined) {
    plan.body = custom.body
    plan.headers['content-type'] = custom.contentType as string
  }
  Object.assign(plan.headers, custom.headers)
  return plan
}

// RFC 9110 §12.5.1: q-values and specificity decide; on a tie the order of the Accept header does.
// Without the developer page only problem+json can win over JSON.
function preferredType (request: FastifyRequest, development: boolean): string {
  const accept = request.headers.accept
  if (accept === undefined) return OFFERED_TYPES[0]
  if (development && accept.includes('html')) return new Negotiator({ headers: { accept } }).mediaType(OFFERED_IN_DEVELOPMENT) ?? OFFERED_TYPES[0]
  if (!accept.includes('problem')) return OFFERED_TYPES[0]
  return new Negotiator({ headers: { accept } }).mediaType(OFFERED_TYPES) ?? OFFERED_TYPES[0]
}

// 'auto': the connection is closed only when the request body may still be on the wire,
// so the next request's framing is in doubt (and an unread upload is not drained for nothing).
function bodyFullyRead (request: FastifyRequest): boolean {
  const { headers } = request
  const noBody = headers['transfer-encoding'] === undefined &&
    (headers['content-length'] === undefined || headers['content-length'] === '0')
  return noBody || request.raw.complete
}
