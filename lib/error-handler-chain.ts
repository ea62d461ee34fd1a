import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FST_RECOVERY_UNSUPPORTED_FASTIFY } from './errors'
import { privateSymbol } from './safe-read'

// Where the plugin's error handler sits in Fastify's chain of error handlers (contract §1, §18).
//
// Fastify keeps a scope's error handlers as a chain (lib/error-handler.js, `buildErrorHandler`):
// each `setErrorHandler` adds a link in front — `Object.create(front)`, then `link.func = handler` —
// a handler that throws (or sends an Error) hands the error to the link behind it, and the last link
// is Fastify's default handler. A route captures the chain of its scope when its plugin has loaded;
// a route's `errorHandler` option is one more link in front of it, made the same way. The plugin
// replaces only the default handler: its link goes last, just in front of Fastify's, so every
// application handler — set before the plugin or after it, in this scope or a parent, or on a route —
// sees the errors first, as it would without the plugin, and what it rethrows (or fails with)
// reaches the plugin. Nothing else of Fastify's chain changes.
//
// Every application handler runs inside the plugin's cover (lib/error-handler.ts), by one mechanism:
// the plugin's link holds `func` as an accessor, so Fastify's `link.func = handler`, on any link made
// in front of it, runs its setter, which puts the covered handler there (as an accessor too, for the
// links made in front of that one). Nothing runs on a successful request.
//
// `setErrorHandler` is not called: Fastify 6 refuses a second one in a scope
// (FST_ERR_ERROR_HANDLER_ALREADY_SET; Fastify 5 warns FSTWRN004), and the application's own call,
// before or after the plugin, must keep working as it does without the plugin. The chain is
// Fastify's internal state, under its symbol `fastify.errorHandler`; links the application set
// before the plugin are rebuilt, in their order, in front of the plugin's.

/** An error handler as Fastify calls it (`setErrorHandler` binds it to its scope first). */
export type ErrorHandlerFunction = (this: unknown, error: unknown, request: FastifyRequest, reply: FastifyReply) => unknown
type Handler = ErrorHandlerFunction
interface Link { func?: Handler }

const chainOf = privateSymbol('fastify.errorHandler', { inherited: true })

/**
 * Puts `handler` last before Fastify's default error handler, for the routes `scope` registers from
 * now on, and every application handler of that chain inside `cover`.
 */
export function joinErrorHandlers (scope: FastifyInstance, handler: Handler, cover: (handler: Handler) => Handler): void {
  const key = chainOf(scope)
  const front = key === undefined ? undefined : (scope as unknown as Record<symbol, Link | undefined>)[key]
  if (front === null || typeof front !== 'object' || typeof front.func !== 'function') throw new FST_RECOVERY_UNSUPPORTED_FASTIFY(scope.version)
  const applicationHandlers: Handler[] = []
  let root: Link = front
  for (let link = front; Object.getPrototypeOf(link) !== Object.prototype; link = Object.getPrototypeOf(link) as Link) {
    if (Object.hasOwn(link, 'func')) applicationHandlers.push(link.func as Handler)
    root = Object.getPrototypeOf(link) as Link
  }

  // Fastify assigns `func` on each new link: a setter on the chain behind it decides what is put there
  function coverOnAssign (this: Link, assigned: Handler): void {
    const covered = cover(assigned)
    Object.defineProperty(this, 'func', { get: () => covered, set: coverOnAssign, enumerable: true, configurable: true })
  }
  const plugin = Object.create(root) as Link
  Object.defineProperty(plugin, 'func', { get: () => handler, set: coverOnAssign, enumerable: true, configurable: true })

  let chain = plugin
  for (let i = applicationHandlers.length - 1; i >= 0; i--) {
    // as Fastify's buildErrorHandler makes a link: its `toJSON` and default handler are inherited
    const link = Object.create(chain) as Link
    link.func = applicationHandlers[i]
    chain = link
  }
  ;(scope as unknown as Record<symbol, Link>)[key as symbol] = chain
}
