import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Recorder } from './record'
import { clientGone, sendGuarded, type PanicReplyBuilder } from './reply'

// Contract §9, the process-level safety net (opt-in): unhandled rejections and uncaught exceptions
// are attributed to the request whose async context raised them, logged, counted with
// source="process", and either survived ('log') or turned into a graceful exit ('exit'): the
// culprit gets the generic 500, the server stops accepting, in-flight requests finish (up to
// shutdownTimeout), logs are flushed, exit code 1. A second fatal error during that exits at once.

export interface ProcessSettings {
  unhandledRejection: 'log' | 'exit'
  uncaughtException: 'exit' | 'log'
  shutdownTimeout: number
}

type Failure = 'unhandledRejection' | 'uncaughtException'

/** What the net needs of `process`; tests pass their own. */
export interface ProcessHost {
  on (event: Failure, listener: (value: unknown) => void): unknown
  removeListener (event: Failure, listener: (value: unknown) => void): unknown
  exit (code: number): void
}

/** One Fastify instance's net; the registry below dispatches each failure to one of them. */
interface Net {
  owns (): boolean
  handle (failure: Failure, value: unknown): void
  close (): Promise<void>
}

interface Registry {
  nets: Set<Net>
  onRejection: (value: unknown) => void
  onException: (value: unknown) => void
  /** Set by the first 'exit': from then on another fatal failure exits at once, whichever instance it belongs to. */
  shuttingDown: boolean
}

// Kept on the host under a global symbol: one pair of listeners per process, however many
// instances (or copies of this module) opt in, so no failure is handled twice.
const kRegistry = Symbol.for('fastify-recovery.process-nets')
type HostWithRegistry = ProcessHost & { [kRegistry]?: Registry }

interface RequestContext { request: FastifyRequest, reply: FastifyReply }

export interface ProcessNetParts {
  fastify: FastifyInstance
  settings: ProcessSettings
  recorder: Recorder
  /** The generic 500 for a culprit request. */
  panicReply: PanicReplyBuilder
  host?: ProcessHost
}

export class ProcessNet implements Net {
  readonly #storage = new AsyncLocalStorage<RequestContext>()
  readonly #parts: Required<ProcessNetParts>

  constructor (parts: ProcessNetParts) {
    this.#parts = { host: process, ...parts }
  }

  /** onRequest hook: the rest of the request runs in its context. */
  readonly enter = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    this.#storage.run({ request, reply }, done)
  }

  /** The request whose async context is running, if any. */
  currentRequest (): FastifyRequest | undefined {
    return this.#storage.getStore()?.request
  }

  attach (): void {
    const host = this.#parts.host as HostWithRegistry
    let registry = host[kRegistry]
    if (registry === undefined) {
      const nets = new Set<Net>()
      const dispatch = (failure: Failure) => (value: unknown): void => {
        let chosen: Net | undefined
        for (const net of nets) {
          if (net.owns()) { chosen = net; break }
          chosen ??= net // the oldest, for failures outside any request
        }
        chosen?.handle(failure, value)
      }
      registry = { nets, onRejection: dispatch('unhandledRejection'), onException: dispatch('uncaughtException'), shuttingDown: false }
      host[kRegistry] = registry
      host.on('unhandledRejection', registry.onRejection)
      host.on('uncaughtException', registry.onException)
    }
    registry.nets.add(this)
  }

  /** onClose: the listeners go with the last instance. During a shutdown they stay, so a second fatal error still exits at once. */
  detach (): void {
    const host = this.#parts.host as HostWithRegistry
    const registry = host[kRegistry]
    if (registry === undefined || registry.shuttingDown) return
    registry.nets.delete(this)
    if (registry.nets.size === 0) {
      host.removeListener('unhandledRejection', registry.onRejection)
      host.removeListener('uncaughtException', registry.onException)
      delete host[kRegistry]
    }
  }

  owns (): boolean {
    return this.#storage.getStore() !== undefined
  }

  close (): Promise<void> {
    return this.#parts.fastify.close()
  }

  handle (failure: Failure, value: unknown): void {
    const { fastify, settings, recorder, host } = this.#parts
    const registry = (host as HostWithRegistry)[kRegistry] as Registry
    const fatal = failure === 'uncaughtException'
    const exit = (fatal ? settings.uncaughtException : settings.unhandledRejection) === 'exit'
    const context = this.#storage.getStore()
    const culprit = exit && !registry.shuttingDown && context !== undefined && unanswered(context) ? context : undefined
    recorder.record({
      value,
      source: 'process',
      log: context?.request.log ?? fastify.log,
      request: context?.request,
      reply: context?.reply,
      statusCode: culprit === undefined ? undefined : 500,
      level: fatal ? 'fatal' : undefined
    })
    if (!exit) return
    if (registry.shuttingDown) {
      host.exit(1)
      return
    }
    registry.shuttingDown = true
    if (culprit !== undefined) {
      const plan = this.#parts.panicReply(culprit.request)
      plan.headers.connection = 'close'
      sendGuarded(culprit.reply, plan, () => plan)
    }
    this.#shutdown(registry)
  }

  // Every opted-in instance stops accepting and lets its in-flight requests finish, for at most
  // shutdownTimeout; then the logs are flushed and the process exits with code 1.
  #shutdown (registry: Registry): void {
    const { fastify, settings, host } = this.#parts
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise((resolve) => { timer = setTimeout(resolve, settings.shutdownTimeout) })
    const closed = Promise.allSettled([...registry.nets].map((net) => Promise.resolve().then(() => net.close())))
    Promise.race([closed, timedOut])
      .then(() => { clearTimeout(timer); return flush(fastify) })
      .then(() => host.exit(1))
  }
}

function unanswered ({ request, reply }: RequestContext): boolean {
  return !reply.sent && !reply.raw.headersSent && !clientGone(request, reply)
}

// pino's asynchronous destinations hold lines in a buffer until flushed
function flush (fastify: FastifyInstance): Promise<void> {
  const { flush } = fastify.log as { flush?: (callback: (error?: Error) => void) => void }
  if (typeof flush !== 'function') return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000)
    try {
      flush.call(fastify.log, () => { clearTimeout(timer); resolve() })
    } catch {
      clearTimeout(timer)
      resolve()
    }
  })
}
