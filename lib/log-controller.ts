import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FST_RECOVERY_UNSUPPORTED_FASTIFY } from './errors'
import type { FastifyErrorLine } from './log'
import { privateSymbol } from './safe-read'

// Three failures never reach an error handler or an onError hook, and Fastify (5.12 and later)
// reports each to its LogController, the object it writes its own lines with: a stream that failed
// after the response's headers went out (`streamError`), an error its default error handler
// answered (`defaultErrorLog`), and an `onResponse` hook that failed (`requestCompleted` with an
// error). Listening there costs a successful request one call and one test: no hook runs.
// The controller is Fastify's own (or the one given as the `logController` option): its methods are
// wrapped once, and each failure goes to the registration of the plugin whose scope holds the route.

type Report = (error: unknown, request: FastifyRequest, reply: FastifyReply) => void

// global: two copies of this module share one wiring per controller
const kWiring = Symbol.for('fastify-recovery.log-controller')

export interface LogControllerListener {
  /** A stream failed after the headers went out. */
  streamError: Report
  /** Fastify's default error handler answered this error. */
  defaultErrorLog: Report
  /** An `onResponse` hook failed (Fastify's own line for the request then tells no error: it is the listener's). */
  responseFailed: Report
}

type RequestCompleted = (error: unknown, request: FastifyRequest, reply: FastifyReply, ...rest: unknown[]) => void

interface Controller {
  streamError: Report
  defaultErrorLog: Report
  requestCompleted: RequestCompleted
  [kWiring]?: Wiring
}

interface Wiring {
  listeners: Map<FastifyInstance, LogControllerListener>
  /** The controller's own methods. */
  streamError: Report
  defaultErrorLog: Report
  requestCompleted: RequestCompleted
}

/**
 * Listens for `scope`'s routes (the scope that registered the plugin and its children). Returns
 * Fastify's own line for an error its default handler answers, and how to stop listening.
 */
export function listenToLogController (scope: FastifyInstance, listener: LogControllerListener): { fastifyErrorLine: FastifyErrorLine, stop: () => void } {
  const controller = logControllerOf(scope)
  const wiring = controller[kWiring] ?? wire(controller)
  wiring.listeners.set(scope, listener)
  return {
    fastifyErrorLine: (error, request, reply) => wiring.defaultErrorLog.call(controller, error, request, reply),
    stop: () => { wiring.listeners.delete(scope) }
  }
}

function wire (controller: Controller): Wiring {
  const wiring: Wiring = { listeners: new Map(), streamError: controller.streamError, defaultErrorLog: controller.defaultErrorLog, requestCompleted: controller.requestCompleted }
  controller[kWiring] = wiring
  controller.streamError = function fastifyRecoveryStreamError (this: Controller, ...report: Parameters<Report>) {
    listenerOf(wiring, report[2])?.streamError(...report)
    return wiring.streamError.apply(this, report)
  }
  controller.defaultErrorLog = function fastifyRecoveryDefaultErrorLog (this: Controller, ...report: Parameters<Report>) {
    listenerOf(wiring, report[2])?.defaultErrorLog(...report)
    return wiring.defaultErrorLog.apply(this, report)
  }
  // at the end of every request Fastify logs (one test when it succeeded); Fastify itself tells no
  // error that is falsy (a hook that throws `undefined`)
  controller.requestCompleted = function fastifyRecoveryRequestCompleted (this: Controller, error, request, reply, ...rest) {
    const listener = error ? listenerOf(wiring, reply) : undefined
    if (listener !== undefined) {
      listener.responseFailed(error, request, reply)
      error = null
    }
    return wiring.requestCompleted.call(this, error, request, reply, ...rest)
  }
  return wiring
}

// The listener whose scope holds the route: child scopes are created from their parent's instance.
function listenerOf (wiring: Wiring, reply: FastifyReply): LogControllerListener | undefined {
  const server = reply.server
  for (const [scope, listener] of wiring.listeners) {
    if (scope === server || Object.prototype.isPrototypeOf.call(scope, server)) return listener
  }
  return undefined
}

const controllerOf = privateSymbol('fastify.logController', { inherited: true })

function logControllerOf (fastify: FastifyInstance): Controller {
  const key = controllerOf(fastify)
  const controller = key === undefined ? undefined : (fastify as unknown as Record<symbol, Controller | undefined>)[key]
  if (typeof controller?.streamError !== 'function' || typeof controller.defaultErrorLog !== 'function' || typeof controller.requestCompleted !== 'function') throw new FST_RECOVERY_UNSUPPORTED_FASTIFY(fastify.version)
  return controller
}
