import { types } from 'node:util'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { Recoverer } from './recover'
import { hasReplied } from './send'

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
// request, the cover costs a call, and one reaction on an async handler's promise.

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

  // Before the reply, or a response broken mid-body (raw writes, then a throw): the error handler's,
  // which answers or breaks it (contract §3). After the reply: recorded here. A synchronous throw is
  // then taken (the handler returns nothing); a rejection is seen beside Fastify, which is told to
  // keep its own line for it (lib/wrap-thenable.js logs the raw error when the reply was sent).
  const failedAfterReply = (failure: unknown, request: FastifyRequest, reply: FastifyReply, rejected: boolean): boolean => {
    if (!hasReplied(reply) || (reply.raw.headersSent && !reply.raw.writableEnded)) return false
    recoverer.recover({ value: failure, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'none' })
    if (rejected) muteFastifyErrorLine(reply)
    return true
  }
  // recorded, then handed on unchanged (@fastify/websocket `.catch`es the same promise); the socket is
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
 * Calls `handler` as Fastify would. What it throws goes to `failed`, which says whether it was taken
 * care of (the handler then returns `undefined`) or goes on as it came. What its promise rejects with
 * goes to `failed` too, beside whoever awaits that same promise (Fastify, @fastify/websocket): the
 * promise they get is the handler's own, so a failure costs them no extra turn and no rethrow.
 */
function settled<A, B> (handler: (this: FastifyInstance, a: A, b: B) => unknown, self: FastifyInstance, a: A, b: B,
  failed: (failure: unknown, a: A, b: B, rejected: boolean) => boolean): unknown {
  let result: unknown
  try {
    result = handler.call(self, a, b)
  } catch (failure) {
    if (failed(failure, a, b, false)) return undefined
    throw failure
  }
  if (!types.isPromise(result)) return result
  try {
    result.then(undefined, (failure: unknown) => { failed(failure, a, b, true) })
  } catch {
    // a promise whose `then` cannot be used (a hostile constructor): Fastify's, as without the plugin
  }
  return result
}

// Fastify's reaction to the same rejection runs next, in this turn of microtasks, and writes
// `reply.log.error({ err }, 'Promise errored, but reply.sent = true was set')` with the raw error:
// that one call goes nowhere, and the reply's logger is itself again right after it (or after this
// turn, whatever happens).
function muteFastifyErrorLine (reply: FastifyReply): void {
  const log = reply.log
  const restore = (): void => { reply.log = log }
  reply.log = Object.create(log, { error: { value: restore, configurable: true } })
  process.nextTick(restore)
}
