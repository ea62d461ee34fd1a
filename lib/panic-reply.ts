import { STATUS_CODES } from 'node:http'
import type { FastifyRequest } from 'fastify'
import Negotiator from 'negotiator'
import type { PanicInfo } from '../types/index'
import { panicHeaders, type PanicHeaderSettings } from './headers'
import type { RawPlan } from './send'

// What the client gets for a panic (contract §3): the generic 500, as JSON or RFC 9457 problem+json,
// carrying the request id and nothing of the failure; the custom handler's reply over it (§4); and
// the reply of the last resort. The headers are lib/headers.ts's `panicHeaders`. With the
// `development` option (§13), the developer page (lib/development-page.ts, given here as an
// `Explainer`) shows a browser the failure and a JSON client gets a `development` field.

// RFC 9457 §3: the problem media type; sent as a Buffer so Fastify does not append a charset
const PROBLEM_TYPE = 'application/problem+json'
const HTML_TYPE = 'text/html'
const OFFERED_TYPES = ['application/json', PROBLEM_TYPE]
const OFFERED_IN_DEVELOPMENT = [...OFFERED_TYPES, HTML_TYPE]

/** What a panic reply tells of the failure: the plugin's own reading, never an object the application was given. */
export type PanicView = Pick<PanicInfo, 'requestId' | 'error' | 'source' | 'method' | 'route' | 'fingerprint'>

/** The developer page (opt-in): what a developer is shown of a panic. */
export interface Explainer {
  /** The page, and the content-security-policy it must be sent with. */
  page: (panic: PanicView) => { html: string, csp: string }
  /** The `development` field of a JSON reply. */
  fields: (error: Error) => object
}

/** A custom handler's reply (contract §4), checked, with its body encoded. */
export interface CustomReply {
  statusCode: number
  headers: Record<string, string>
  body?: string | Buffer
  contentType?: string
}

export interface PanicReplySettings extends PanicHeaderSettings {
  message: string
}

export class PanicReplies {
  readonly #settings: PanicReplySettings
  readonly #explainer: Explainer | undefined
  // Everything but the request id is known at registration: a panic storm only escapes the id.
  // (JSON.stringify of a fresh object per panic costs more than the rest of the reply.)
  readonly #message: string
  readonly #prefixes = new Map<number, { json: string, problem: string }>()

  constructor (settings: PanicReplySettings, explainer?: Explainer) {
    this.#settings = settings
    this.#explainer = explainer
    this.#message = JSON.stringify(settings.message)
  }

  /** The reply to `panic` (status 500 unless told otherwise; `close`: the connection closed whatever `closeConnection` says). */
  panic (request: FastifyRequest, panic: PanicView, { statusCode = 500, close = false }: { statusCode?: number, close?: boolean } = {}): RawPlan {
    const requestId = panic.requestId as string
    const { set: headers, remove } = panicHeaders(request, requestId, this.#settings, close)
    const explainer = this.#explainer
    const mediaType = preferredType(request, explainer !== undefined)
    let body: string | Buffer
    if (mediaType === HTML_TYPE) {
      const page = (explainer as Explainer).page(panic)
      headers['content-type'] = 'text/html; charset=utf-8'
      headers['content-security-policy'] = page.csp
      headers['x-content-type-options'] = 'nosniff'
      body = page.html
    } else {
      // the developer's additions, after the id: `,"development":{...}`
      const extra = explainer === undefined ? '' : `,"development":${JSON.stringify(explainer.fields(panic.error))}`
      if (mediaType === PROBLEM_TYPE) {
        headers['content-type'] = PROBLEM_TYPE
        body = Buffer.from(`${this.#prefixesOf(statusCode).problem}${JSON.stringify(requestId)}${extra}}`)
      } else {
        body = `${this.#prefixesOf(statusCode).json}${JSON.stringify(requestId)}${extra}}`
      }
    }
    return { statusCode, headers, body, remove }
  }

  /** The reply a custom handler chose: its status, headers and body over the default ones. */
  chosen (custom: CustomReply, request: FastifyRequest, panic: PanicView): RawPlan {
    const plan = this.panic(request, panic, { statusCode: custom.statusCode })
    if (custom.body !== undefined) {
      plan.body = custom.body
      plan.headers['content-type'] = custom.contentType as string
    }
    Object.assign(plan.headers, custom.headers)
    return plan
  }

  /** The reply of the last resort: plain JSON, no negotiation, the connection closed. Never throws. */
  lastResort (request: FastifyRequest, requestId: string): RawPlan {
    const { set: headers, remove } = panicHeaders(request, requestId, this.#settings, true)
    return { statusCode: 500, headers, body: `${this.#prefixesOf(500).json}${JSON.stringify(requestId)}}`, remove }
  }

  #prefixesOf (statusCode: number): { json: string, problem: string } {
    let prefix = this.#prefixes.get(statusCode)
    if (prefix === undefined) {
      const title = JSON.stringify(STATUS_CODES[statusCode] ?? 'Error')
      prefix = {
        json: `{"statusCode":${statusCode},"error":${title},"message":${this.#message},"requestId":`,
        problem: `{"type":"about:blank","title":${title},"status":${statusCode},"requestId":`
      }
      this.#prefixes.set(statusCode, prefix) // at most 200 statuses: 400-599
    }
    return prefix
  }
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
