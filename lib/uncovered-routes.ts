import type { FastifyRequest } from 'fastify'
import { methodOf, routeOf } from './request'

// Routes capture their scope's error handler when they are set up, so a route registered before
// the plugin keeps Fastify's default error handler, which sends err.message to the client. The
// plugin cannot take those errors over, but Fastify's LogController tells it each time its default
// handler answers an error in the plugin's scope (lib/log-controller.ts): such a route is warned
// about once. Nothing runs on any other request.

export const UNCOVERED_ROUTE_MESSAGE = 'fastify-recovery: this route was registered before the plugin, so its errors get ' +
  'Fastify\'s default error handler, which sends err.message to the client; register fastify-recovery before your routes'

/** Warns once per route whose error Fastify's default handler answered. */
export function createUncoveredRouteWarning (): (request: FastifyRequest) => void {
  const warned = new Set<string>()
  return function warnUncoveredRoute (request) {
    const method = methodOf(request)
    const route = routeOf(request)
    const key = `${method} ${route}`
    if (warned.has(key)) return
    warned.add(key)
    request.log.warn({ route, method }, UNCOVERED_ROUTE_MESSAGE)
  }
}
