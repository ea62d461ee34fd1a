import type { FastifyRequest } from 'fastify'
import { dataOf, privateSymbol } from './safe-read'

// Contract §17: what the trace is told of a panic. OpenTelemetry's semantic conventions: the span of
// a failed operation has status Error and `error.type`, low-cardinality — the error's type, never its
// message; `_OTHER` for a value that is not an Error. The request's server span is @fastify/otel's
// request span (SERVER when it traces alone) or, failing that, the active span when it is a SERVER
// span. `@opentelemetry/api` is an optional peer: it is loaded at the first panic of a request, never
// on a successful one, and when it is absent or no span records, nothing else happens.

interface Span {
  isRecording: () => boolean
  setAttribute: (key: string, value: string) => unknown
  setStatus: (status: { code: number }) => unknown
  status?: { code?: number }
  kind?: number
}

interface Api {
  trace: { getActiveSpan: () => Span | undefined }
  SpanKind: { SERVER: number }
  SpanStatusCode: { ERROR: number }
}

// undefined: not looked for yet; null: not installed
let api: Api | null | undefined

function apiOf (): Api | null {
  if (api === undefined) {
    try {
      api = require('@opentelemetry/api') as Api
    } catch {
      api = null
    }
  }
  return api
}

/**
 * Marks the server span of a panic's request failed; `errorType`: the thrown Error's type, undefined
 * for a value that is not one. A tracer that throws throws here: the recorder keeps it from the rest.
 */
export function markServerSpan (request: FastifyRequest, errorType: string | undefined): void {
  const otel = apiOf()
  if (otel === null) return
  const span = serverSpanOf(request, otel)
  if (span === undefined || !span.isRecording()) return
  span.setAttribute('error.type', errorType ?? '_OTHER')
  // @fastify/otel sets ERROR with a description of its own: it is kept
  if (span.status?.code !== otel.SpanStatusCode.ERROR) span.setStatus({ code: otel.SpanStatusCode.ERROR })
}

// @fastify/otel keeps its request span on the request, under a symbol of its own
const requestSpanOf = privateSymbol('fastify otel request spans')

function serverSpanOf (request: FastifyRequest, otel: Api): Span | undefined {
  const symbol = requestSpanOf(request)
  const span = symbol === undefined ? undefined : dataOf(request, symbol) as Span | null | undefined
  if (span !== null && typeof span === 'object') return span
  const active = otel.trace.getActiveSpan()
  return active?.kind === otel.SpanKind.SERVER ? active : undefined
}
