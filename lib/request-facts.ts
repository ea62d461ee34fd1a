import type { FastifyReply, FastifyRequest } from 'fastify'

// What the plugin tells of a request on every path: its id, method, route and age. None of these
// throws, whatever `genReqId` returned.

/** The `route` of panics in the not-found handler. */
export const NOT_FOUND_ROUTE = '__not_found__'

/** `request.id` as a string; `''` when it cannot be made one (an object whose toString throws). */
export function requestIdOf (request: FastifyRequest): string {
  const id: unknown = request.id
  if (typeof id === 'string') return id
  try {
    return String(id)
  } catch {
    return ''
  }
}

export function methodOf (request: FastifyRequest | undefined): string {
  return request === undefined ? '' : request.method
}

/** The route template of a request, `__not_found__` in the not-found handler, `''` without one. */
export function routeOf (request: FastifyRequest | undefined): string {
  if (request === undefined) return ''
  return request.is404 ? NOT_FOUND_ROUTE : request.routeOptions.url as string
}

// Fastify tracks a reply's start time only when it logs requests or has onResponse hooks.
export function latencyOf (reply: FastifyReply | undefined): number | undefined {
  const elapsed = reply === undefined ? 0 : reply.elapsedTime
  return elapsed > 0 ? Math.round(elapsed * 1000) / 1000 : undefined
}
