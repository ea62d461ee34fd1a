import type { FastifyInstance } from 'fastify'
import { FST_RECOVERY_UNSUPPORTED_FASTIFY } from './errors'

// Where the plugin's error handler sits in Fastify's chain of error handlers (contract §1).
//
// Fastify keeps a scope's error handlers as a chain (lib/error-handler.js, `buildErrorHandler`):
// each `setErrorHandler` adds a link in front, a handler that throws (or sends an Error) hands the
// error to the link behind it, and the last link is Fastify's default handler. A route captures the
// chain of its scope when it is registered. The plugin replaces only that default handler: its link
// goes last, just in front of Fastify's, so every application handler — set before the plugin or
// after it, in this scope or a parent — sees the errors first, as it would without the plugin, and
// what it rethrows (or fails with) reaches the plugin. Nothing else of Fastify's chain changes.
//
// `setErrorHandler` is not called: Fastify 6 refuses a second one in a scope
// (FST_ERR_ERROR_HANDLER_ALREADY_SET; Fastify 5 warns FSTWRN004), and the application's own call,
// before or after the plugin, must keep working as it does without the plugin. The chain is
// Fastify's internal state (found, as Fastify names it, by its symbol's description); links the
// application set before the plugin are rebuilt, in their order, in front of the plugin's.

type Handler = (...args: never[]) => unknown
interface Link { func?: Handler }

const CHAIN = 'fastify.errorHandler'

/** Puts `handler` last before Fastify's default error handler, for the routes `scope` registers from now on. */
export function installErrorHandler (scope: FastifyInstance, handler: Handler): void {
  const key = chainKeyOf(scope)
  const front = (scope as unknown as Record<symbol, Link>)[key]
  const applicationHandlers: Handler[] = []
  let root: Link = front
  for (let link = front; Object.getPrototypeOf(link) !== Object.prototype; link = Object.getPrototypeOf(link) as Link) {
    if (Object.hasOwn(link, 'func')) applicationHandlers.push(link.func as Handler)
    root = Object.getPrototypeOf(link) as Link
  }
  let chain = linkTo(root, handler)
  for (let i = applicationHandlers.length - 1; i >= 0; i--) chain = linkTo(chain, applicationHandlers[i])
  ;(scope as unknown as Record<symbol, Link>)[key] = chain
}

// as Fastify's buildErrorHandler makes a link: its `toJSON` and default handler are inherited
function linkTo (behind: Link, func: Handler): Link {
  const link = Object.create(behind) as Link
  link.func = func
  return link
}

function chainKeyOf (scope: FastifyInstance): symbol {
  for (let current: object | null = scope; current !== null; current = Object.getPrototypeOf(current)) {
    for (const symbol of Object.getOwnPropertySymbols(current)) {
      if (symbol.description !== CHAIN) continue
      const link = (current as Record<symbol, Link | undefined>)[symbol]
      if (link !== null && typeof link === 'object' && typeof link.func === 'function') return symbol
    }
  }
  throw new FST_RECOVERY_UNSUPPORTED_FASTIFY(scope.version)
}
