import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isIgnored } from './foreign-promise'
import type { ProcessSettings } from './options'
import type { Recoverer } from './recover'
import { dataOf } from './safe-read'
import { responseState } from './send'

// Contract §9, the process-level safety net (opt-in): unhandled rejections and uncaught exceptions
// are attributed to the request whose async context raised them, logged, counted with
// source="process", and either survived ('log') or turned into a graceful exit ('exit'): the
// culprit gets the generic 500, the server stops accepting, in-flight requests finish (up to
// shutdownTimeout), logs are flushed, exit code 1. A second fatal error during that exits at once.
// The net never turns a failure into success: the error a failed start-up rejects with (a listen
// error such as EADDRINUSE while the server is not listening) is always an 'exit', so an unawaited
// `listen()` that fails still ends the process with code 1.

type Failure = 'unhandledRejection' | 'uncaughtException'

/** What the net needs of `process`; tests pass their own. */
export interface ProcessHost {
  on (event: Failure, listener: (value: unknown, promise?: unknown) => void): unknown
  removeListener (event: Failure, listener: (value: unknown, promise?: unknown) => void): unknown
  listeners (event: Failure): Function[]
  exit (code: number): void
}

export const SHUTDOWN_LISTENER_MESSAGE = 'fastify-recovery: another listener ends the process on the first unhandled rejection or ' +
  'uncaught exception (close-with-grace, as `fastify start` of fastify-cli installs it): the process net\'s \'log\' cannot keep the ' +
  'server serving, and that listener logs the raw error without its request; run the server from a file of your own ' +
  '(the README\'s fastify-cli section) to keep the net\'s choices'

/** The nets of one process, kept on the host: each failure goes to one of them. */
interface ProcessNets {
  nets: Set<ProcessNet>
  onRejection: (value: unknown, promise?: unknown) => void
  onException: (value: unknown) => void
  /** Set by the first 'exit': from then on another fatal failure exits at once, whichever instance it belongs to. */
  shuttingDown: boolean
}

// Kept on the host under a global symbol: one pair of listeners per process, however many
// instances (or copies of this module) opt in, so no failure is handled twice.
const kNets = Symbol.for('fastify-recovery.process-nets')
type HostWithNets = ProcessHost & { [kNets]?: ProcessNets }

interface RequestContext { request: FastifyRequest, reply: FastifyReply }

export interface ProcessNetParts {
  fastify: FastifyInstance
  settings: ProcessSettings
  recoverer: Recoverer
  host?: ProcessHost
}

export class ProcessNet {
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
    const host = this.#parts.host as HostWithNets
    let registry = host[kNets]
    if (registry === undefined) {
      const nets = new Set<ProcessNet>()
      const dispatch = (failure: Failure) => (value: unknown, promise?: unknown): void => {
        // a thrown Promise's own rejection: its panic was recorded when it was thrown
        if (isIgnored(promise)) return
        let chosen: ProcessNet | undefined
        for (const net of nets) {
          if (net.owns()) { chosen = net; break }
          chosen ??= net // the oldest, for failures outside any request
        }
        chosen?.handle(failure, value)
      }
      registry = { nets, onRejection: dispatch('unhandledRejection'), onException: dispatch('uncaughtException'), shuttingDown: false }
      host[kNets] = registry
      host.on('unhandledRejection', registry.onRejection)
      host.on('uncaughtException', registry.onException)
    }
    registry.nets.add(this)
    this.#warnOfShutdownListeners(registry)
  }

  // close-with-grace listens to both failures with one function that closes the app and exits;
  // nothing the plugin does stops it (only its caller can tell it which events to skip): it is told
  #warnOfShutdownListeners (registry: ProcessNets): void {
    const { host, fastify } = this.#parts
    const ours = new Set<Function>([registry.onRejection, registry.onException])
    const onException = new Set(host.listeners('uncaughtException'))
    const shared = host.listeners('unhandledRejection').some((listener) => !ours.has(listener) && onException.has(listener))
    if (shared) fastify.log.warn(SHUTDOWN_LISTENER_MESSAGE)
  }

  /** onClose: the listeners go with the last instance. During a shutdown they stay, so a second fatal error still exits at once. */
  detach (): void {
    const host = this.#parts.host as HostWithNets
    const registry = host[kNets]
    if (registry === undefined || registry.shuttingDown) return
    registry.nets.delete(this)
    if (registry.nets.size === 0) {
      host.removeListener('unhandledRejection', registry.onRejection)
      host.removeListener('uncaughtException', registry.onException)
      delete host[kNets]
    }
  }

  owns (): boolean {
    return this.#storage.getStore() !== undefined
  }

  close (): Promise<void> {
    return this.#parts.fastify.close()
  }

  handle (failure: Failure, value: unknown): void {
    const { settings, recoverer, host } = this.#parts
    const registry = (host as HostWithNets)[kNets] as ProcessNets
    const fatal = failure === 'uncaughtException'
    const exit = this.#isStartupFailure(value) || (fatal ? settings.uncaughtException : settings.unhandledRejection) === 'exit'
    let context = this.#storage.getStore()
    // Fastify runs the onClose hooks where the last in-flight request ended: during the shutdown,
    // what runs in the context of a request already answered is the shutdown's, and belongs to none
    if (registry.shuttingDown && context !== undefined && !unanswered(context)) context = undefined
    // the net answers the culprit only (the request whose context raised it): any other request goes on
    const culprit = exit && !registry.shuttingDown && context !== undefined && unanswered(context)
    recoverer.recover({
      value,
      source: 'process',
      request: context?.request,
      reply: context?.reply,
      statusCode: culprit ? 500 : undefined,
      level: fatal ? 'fatal' : undefined,
      respond: culprit ? 'reply' : 'none',
      close: true
    })
    if (!exit) return
    if (registry.shuttingDown) {
      host.exit(1)
      return
    }
    registry.shuttingDown = true
    // the shutdown belongs to no request: what fails in it (an onClose hook) is attributed to none
    outsideRequests([...registry.nets], () => this.#shutdown(registry))
  }

  /** Runs `work` outside this net's request contexts. */
  exitContext<T> (work: () => T): T {
    return this.#storage.exit(work)
  }

  // Node's listen errors (EADDRINUSE, EACCES, ...) say `syscall: 'listen'`; an application may wrap one as a cause
  #isStartupFailure (value: unknown): boolean {
    if (this.#parts.fastify.server.listening !== false || value === null || typeof value !== 'object') return false
    const cause = dataOf(value, 'cause')
    return dataOf(value, 'syscall') === 'listen' || (cause !== null && typeof cause === 'object' && dataOf(cause, 'syscall') === 'listen')
  }

  // Every opted-in instance stops accepting and lets its in-flight requests finish, for at most
  // shutdownTimeout; then the logs are flushed and the process exits with code 1. An instance whose
  // close fails (an onClose hook that rejects) is a failure of the shutdown: recorded, with no request.
  #shutdown (registry: ProcessNets): void {
    const { fastify, settings, host } = this.#parts
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise((resolve) => { timer = setTimeout(resolve, settings.shutdownTimeout) })
    const closed = Promise.all([...registry.nets].map((net) => Promise.resolve().then(() => net.close()).catch((failure: unknown) => net.#shutdownFailed(failure))))
    Promise.race([closed, timedOut])
      .then(() => { clearTimeout(timer); return flush(fastify) })
      .then(() => host.exit(1))
  }

  #shutdownFailed (value: unknown): void {
    this.#parts.recoverer.recover({ value, source: 'process', respond: 'none' })
  }
}

function outsideRequests (nets: ProcessNet[], work: () => void): void {
  const [net, ...others] = nets
  if (net === undefined) work()
  else net.exitContext(() => outsideRequests(others, work))
}

function unanswered ({ request, reply }: RequestContext): boolean {
  return !reply.sent && responseState(request, reply) === 'open'
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
