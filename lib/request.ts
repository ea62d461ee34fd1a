import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { types } from 'node:util'

// What the plugin tells of a request on every path: its id, method, route and age. None of these
// throws, whatever `genReqId` returned.

/** The `route` of panics in the not-found handler. */
export const NOT_FOUND_ROUTE = '__not_found__'

// A mark on the Request prototype of the plugin's scope (a function there, so that nothing is set per
// request): what tells a Fastify request from anything else an application hands to `report` or `run`
// (`request.raw`, a plain object, a Proxy), found without running any of its code.
const kRequestMark = Symbol('fastify-recovery.request')

/** Marks the requests of the plugin's scope; called once, at registration. */
export function declareRequests (fastify: FastifyInstance): void {
  fastify.decorateRequest(kRequestMark, isFastifyRequest)
}

/**
 * Whether `value` is a request of a scope the plugin is registered in. The whole prototype chain is
 * walked (not `dataOf`'s 32 steps): each nested plugin scope adds a prototype to its requests.
 */
export function isFastifyRequest (value: unknown): value is FastifyRequest {
  if (typeof value !== 'object' || value === null) return false
  for (let current: object | null = value; current !== null; current = Reflect.getPrototypeOf(current)) {
    if (types.isProxy(current)) return false
    if (Object.hasOwn(current, kRequestMark)) return true
  }
  return false
}

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

/** HTTP/2 (a stream of a session, not a connection of its own): connection headers and resets differ. */
export function isHttp2 (request: FastifyRequest): boolean {
  return request.raw.httpVersionMajor === 2
}

// Fastify tracks a reply's start time only when it logs requests or has onResponse hooks.
export function latencyOf (reply: FastifyReply | undefined): number | undefined {
  const elapsed = reply === undefined ? 0 : reply.elapsedTime
  return elapsed > 0 ? Math.round(elapsed * 1000) / 1000 : undefined
}
