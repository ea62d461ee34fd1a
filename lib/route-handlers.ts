import { types } from 'node:util'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { Recoverer } from './recover'
import { hasAnswered } from './send'

// Route handlers whose failures never reach an error handler, covered where they are registered (an
// onRoute hook of the plugin's scope):
// - A handler that fails after it answered (`reply.code(202).send()`, then a post-processing step
//   throws or rejects), contract §18: Fastify only warns that the reply was sent, or writes its own
//   "Promise errored, but reply.sent = true" line with the raw error, secrets and all. It is a panic
//   with source 'response': one line, one count; nothing more is written to the client, and Fastify
//   writes no line of its own for it.
// - A `{ websocket: true }` route of @fastify/websocket, contract §14: its handler runs after the
//   upgrade, outside Fastify's error handling; @fastify/websocket catches what it throws or rejects
//   with and hands it to its own `errorHandler`. A failure is recorded as a panic of its request (one
//   line, one count, the channel) and handed on unchanged, so @fastify/websocket treats the socket as
//   it always does. The plugin's onRoute hook runs before @fastify/websocket's when the plugin is
//   registered first. A throw inside a socket's event listener never reaches either: it is an
//   uncaught exception (the process net's), or reported (`app.recovery.report`).
// What fails before the handler answered goes to Fastify, as without the plugin. On a successful
// request, the cover costs a call, and a `then` on an async handler's promise.

type RouteHandler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown
type WebsocketHandler = (this: FastifyInstance, socket: unknown, request: FastifyRequest) => unknown
type CoveredRoute = Omit<RouteOptions, 'handler'> & { handler: unknown, websocket?: boolean, wsHandler?: WebsocketHandler }

export const WEBSOCKET_ORDER_MESSAGE = 'fastify-recovery: @fastify/websocket was registered before this plugin, so the failures ' +
  'of websocket route handlers reach only its errorHandler; register fastify-recovery before @fastify/websocket to cover them'

/** Covers the route handlers `scope` registers from now on. */
export function coverRouteHandlers (scope: FastifyInstance, recoverer: Recoverer): void {
  // @fastify/websocket's onRoute hook would run first and keep the websocket handler to itself
  const websocketFirst = scope.hasDecorator('websocketServer')
  if (websocketFirst) scope.log.warn(WEBSOCKET_ORDER_MESSAGE)
  scope.addHook('onRoute', (options) => {
    const route = options as CoveredRoute
    if (route.websocket === true && typeof route.wsHandler !== 'function') {
      if (!websocketFirst && typeof route.handler === 'function') route.handler = coveredWebsocket(route.handler as WebsocketHandler)
      return
    }
    if (typeof route.wsHandler === 'function' && !websocketFirst) route.wsHandler = coveredWebsocket(route.wsHandler)
    if (typeof route.handler === 'function') route.handler = covered(route.handler as RouteHandler)
  })

  // before the reply, or a response broken mid-body (raw writes, then a throw): the error handler's,
  // which answers or breaks it (contract §3); after it, recorded here
  const failedAfterReply = (failure: unknown, request: FastifyRequest, reply: FastifyReply): boolean => {
    if (!hasAnswered(reply) || (reply.raw.headersSent && !reply.raw.writableEnded)) return false
    recoverer.recover({ value: failure, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'none' })
    return true
  }
  // recorded, then handed on unchanged (what @fastify/websocket `.catch`es); the socket is
  // @fastify/websocket's: nothing is answered
  const websocketFailed = (failure: unknown, _socket: unknown, request: FastifyRequest): boolean => {
    recoverer.recover({ value: failure, source: 'request', request, respond: 'none' })
    return false
  }

  function covered (handler: RouteHandler): RouteHandler {
    return function fastifyRecoveryRouteHandler (request, reply) {
      return settled(handler, this, request, reply, failedAfterReply)
    }
  }

  function coveredWebsocket (handler: WebsocketHandler): WebsocketHandler {
    return function fastifyRecoveryWebsocketHandler (socket, request) {
      return settled(handler, this, socket, request, websocketFailed)
    }
  }
}

/**
 * Calls `handler` as Fastify would; what it throws, or its promise rejects with, goes to `failed`,
 * which says whether it was taken care of (the handler then returns, or resolves to, `undefined`) or
 * goes on as it came. Nothing is made on a successful synchronous call.
 */
function settled<A, B> (handler: (this: FastifyInstance, a: A, b: B) => unknown, self: FastifyInstance, a: A, b: B,
  failed: (failure: unknown, a: A, b: B) => boolean): unknown {
  let result: unknown
  try {
    result = handler.call(self, a, b)
  } catch (failure) {
    if (failed(failure, a, b)) return undefined
    throw failure
  }
  if (!types.isPromise(result)) return result
  try {
    return result.then(undefined, (failure: unknown) => {
      if (failed(failure, a, b)) return undefined
      throw failure
    })
  } catch {
    // a promise whose `then` cannot be used (a hostile constructor): Fastify's, as without the plugin
    return result
  }
}
