import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'

// Routes capture their scope's error handler when they are registered, so a route registered
// before the plugin keeps Fastify's default handler, which sends err.message to the client.
// The plugin cannot take those errors over, but an onError hook still sees them: it warns once
// per such route. onError hooks run only for failing requests, so this costs nothing otherwise.

const kCovered = Symbol('fastify-recovery.covered')

export const UNCOVERED_ROUTE_MESSAGE = 'fastify-recovery: this route was registered before the plugin, so its errors get ' +
  'Fastify\'s default error handler, which sends err.message to the client; register fastify-recovery before your routes'

/** onRoute: marks a route registered after the plugin, in its scope or a child scope. */
export function markCovered (route: RouteOptions): void {
  route.config = { ...route.config, [kCovered]: true }
}

/** An onError hook warning once per uncovered route. */
export function buildUncoveredRouteWarning () {
  const warned = new Set<string>()
  return function fastifyRecoveryUncoveredRoute (request: FastifyRequest, _reply: FastifyReply, _error: unknown, done: () => void): void {
    // the not-found handler takes its scope's error handler when the server starts: it is covered
    if (!request.is404 && (request.routeOptions.config as unknown as Record<symbol, unknown>)[kCovered] !== true) {
      const { method, url } = request.routeOptions
      const key = `${method} ${url}`
      if (!warned.has(key)) {
        warned.add(key)
        request.log.warn({ route: url, method }, UNCOVERED_ROUTE_MESSAGE)
      }
    }
    done()
  }
}
