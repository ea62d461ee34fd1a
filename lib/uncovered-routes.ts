import type { FastifyReply, FastifyRequest } from 'fastify'

// Routes capture their scope's error handler when they are set up, so a route registered before
// the plugin keeps Fastify's default error handler, which sends err.message to the client. The
// plugin cannot take those errors over, but an onError hook still sees them and warns once per
// such route. onError hooks run only for failing requests: this costs nothing otherwise.
//
// The test is exact: Fastify's default handler answers by sending the very error it was given
// through reply.send(error). When the plugin's handler is in the route's chain, it runs
// synchronously inside that same call (or was called directly before it); so after such a
// re-send, a request the plugin never saw was answered by the default handler. A custom error
// handler that answers the error itself is not the leak this warns about, and stays silent.

const kRecovered = Symbol('fastify-recovery.recovered')

export const UNCOVERED_ROUTE_MESSAGE = 'fastify-recovery: this route was registered before the plugin, so its errors get ' +
  'Fastify\'s default error handler, which sends err.message to the client; register fastify-recovery before your routes'

/** Called first by the plugin's error handler: this request's error reached it. */
export function markRecovered (request: FastifyRequest): void {
  (request as unknown as Record<symbol, boolean>)[kRecovered] = true
}

/** An onError hook warning once per route whose errors Fastify's default handler answers. */
export function buildUncoveredRouteWarning () {
  const warned = new Set<string>()
  return function fastifyRecoveryUncoveredRoute (request: FastifyRequest, reply: FastifyReply, error: unknown, done: () => void): void {
    // An own send that delegates and never puts anything back: the plugin's double-fault guard,
    // when it comes, wraps this one.
    const send = reply.send
    reply.send = function fastifyRecoveryResendCheck (payload?: unknown): FastifyReply {
      const result = send.call(reply, payload)
      if (payload === error && (request as unknown as Record<symbol, boolean>)[kRecovered] !== true) {
        const { method, url } = request.routeOptions
        const key = `${method} ${url}`
        if (!warned.has(key)) {
          warned.add(key)
          request.log.warn({ route: url, method }, UNCOVERED_ROUTE_MESSAGE)
        }
      }
      return result
    }
    done()
  }
}
