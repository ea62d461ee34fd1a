import { STATUS_CODES } from 'node:http'
import type { FastifyRequest } from 'fastify'
import Negotiator from 'negotiator'
import type { CustomReply } from './custom-handler'
import { developmentFields, developmentPage, type PanicFacts } from './development-page'
import { panicHeaders } from './headers'
import type { DefaultReplySettings } from './options'
import type { RawPlan } from './send'

// What the client gets for a panic (contract §3): the generic 500, as JSON or RFC 9457 problem+json,
// carrying the request id and nothing of the failure. With the `development` option (§13), a
// browser gets the developer page and a JSON client a `development` field. The headers are
// lib/headers.ts's `panicHeaders`.

// RFC 9457 §3: the problem media type; sent as a Buffer so Fastify does not append a charset
const PROBLEM_TYPE = 'application/problem+json'
const HTML_TYPE = 'text/html'
const OFFERED_TYPES = ['application/json', PROBLEM_TYPE]
const OFFERED_IN_DEVELOPMENT = [...OFFERED_TYPES, HTML_TYPE]

export interface ReplyOptions {
  statusCode?: number
  /** The panic, for the developer page and field (when the `development` option is on). */
  panic?: PanicFacts
  /** Close the connection whatever `closeConnection` says (the process net's culprit). */
  close?: boolean
}

/** Builds the default reply to a panic for a request, with status 500 unless told otherwise. */
export interface DefaultReplyBuilder {
  (request: FastifyRequest, requestId: string, options?: ReplyOptions): RawPlan
  /** The reply of the last resort: plain JSON, no negotiation, the connection closed. Never throws. */
  lastResort (request: FastifyRequest, requestId: string): RawPlan
}

export function buildDefaultReply (settings: DefaultReplySettings): DefaultReplyBuilder {
  const { development } = settings
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

  const defaultReply = function defaultReply (request: FastifyRequest, requestId: string, { statusCode = 500, panic, close }: ReplyOptions = {}): RawPlan {
    const { set: headers, remove } = panicHeaders(request, requestId, settings, close)
    const explained = development && panic !== undefined
    const mediaType = preferredType(request, explained)
    let body: string | Buffer
    if (mediaType === HTML_TYPE) {
      const page = developmentPage(panic as PanicFacts, settings.root)
      headers['content-type'] = 'text/html; charset=utf-8'
      headers['content-security-policy'] = page.csp
      headers['x-content-type-options'] = 'nosniff'
      body = page.html
    } else {
      // the developer's additions, after the id: `,"development":{...}`
      const extra = explained ? `,"development":${JSON.stringify(developmentFields(panic.error))}` : ''
      if (mediaType === PROBLEM_TYPE) {
        headers['content-type'] = PROBLEM_TYPE
        body = Buffer.from(`${prefixesOf(statusCode).problem}${JSON.stringify(requestId)}${extra}}`)
      } else {
        body = `${prefixesOf(statusCode).json}${JSON.stringify(requestId)}${extra}}`
      }
    }
    return { statusCode, headers, body, remove }
  } as DefaultReplyBuilder

  defaultReply.lastResort = (request, requestId) => {
    const { set: headers, remove } = panicHeaders(request, requestId, settings, true)
    return { statusCode: 500, headers, body: `${prefixesOf(500).json}${JSON.stringify(requestId)}}`, remove }
  }
  return defaultReply
}

/** The reply a custom handler chose: its status, headers and body over the default ones. */
export function handlerReply (custom: CustomReply, request: FastifyRequest, requestId: string, defaultReply: DefaultReplyBuilder): RawPlan {
  const plan = defaultReply(request, requestId, { statusCode: custom.statusCode })
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
