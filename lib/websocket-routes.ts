import { types } from 'node:util'
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import { awaitable } from './foreign-promise'
import type { Shield } from './last-resort'
import type { Incident, Recorder } from './record'

// Contract §14: a `{ websocket: true }` route of @fastify/websocket is covered like any other. Its
// handler runs after the upgrade, outside Fastify's error handling: @fastify/websocket catches what it
// throws or rejects with and hands it to its own `errorHandler`. The plugin's onRoute hook, which runs
// before @fastify/websocket's when the plugin is registered first, wraps the websocket handler: a
// failure is recorded as a panic of its request (one line, one count, the channel) and handed on
// unchanged, so @fastify/websocket treats the socket as it always does. A throw inside a socket's event
// listener never reaches either: it is an uncaught exception (the process net's), or reported.

type WebsocketHandler = (this: FastifyInstance, socket: unknown, request: FastifyRequest) => unknown
type WebsocketRoute = Omit<RouteOptions, 'handler'> & { handler: unknown, websocket?: boolean, wsHandler?: WebsocketHandler }

export const WEBSOCKET_ORDER_MESSAGE = 'fastify-recovery: @fastify/websocket was registered before this plugin, so the failures ' +
  'of websocket route handlers reach only its errorHandler; register fastify-recovery before @fastify/websocket to cover them'

/** Covers the websocket routes `scope` registers from now on. */
export function coverWebsocketRoutes (scope: FastifyInstance, recorder: Recorder, shield: Shield): void {
  // its onRoute hook would run first and keep the handler to itself
  if (scope.hasDecorator('websocketServer')) {
    scope.log.warn(WEBSOCKET_ORDER_MESSAGE)
    return
  }
  scope.addHook('onRoute', (options) => {
    const route = options as WebsocketRoute
    if (typeof route.wsHandler === 'function') route.wsHandler = covered(route.wsHandler)
    else if (route.websocket === true && typeof route.handler === 'function') route.handler = covered(route.handler as WebsocketHandler)
  })

  function covered (handler: WebsocketHandler): WebsocketHandler {
    return function fastifyRecoveryWebsocketHandler (socket, request) {
      let result: unknown
      try {
        result = handler.call(this, socket, request)
      } catch (error) {
        record(error, request)
        throw error
      }
      if (!types.isPromise(result)) return result
      // what @fastify/websocket `.catch`es: the same failure, once it is recorded
      return Promise.resolve(awaitable(result)).catch((error: unknown) => {
        record(error, request)
        throw error
      })
    }
  }

  function record (value: unknown, request: FastifyRequest): void {
    // the socket is @fastify/websocket's: nothing is answered
    const incident: Incident = { value, source: 'request', request, respond: false }
    shield(incident, () => recorder.record(recorder.read(incident)))
  }
}
