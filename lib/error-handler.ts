import type { FastifyReply, FastifyRequest } from 'fastify'
import { PANIC_STATUS, statusOf } from './classify'
import type { ErrorHandlerFunction } from './error-handler-chain'
import { errorReply } from './error-reply'
import { awaitable } from './foreign-promise'
import { logClientError, type FastifyErrorLine } from './log'
import type { PanicReplies } from './panic-reply'
import type { Recoverer } from './recover'
import { requestIdOf } from './request'
import { causeChainOf, isError } from './safe-read'
import { failedWhileSending, guard, isGuarded, responseState, sendPlan, watcherOf, watchSends, type SendWatcher } from './send'

// What Fastify hands to error handlers (contract §2, §18). Fastify keeps a scope's error handlers as a
// chain (lib/error-handler-chain.ts): the application's own — `setErrorHandler` at the root or in a
// child scope, before or after the plugin, a route's `errorHandler` — then the plugin's, last before
// Fastify's default. Two functions of this module are in that chain:
// - `handle`, the plugin's link: a client or service error is answered as Fastify answers it; a
//   panic is recovered (lib/recover.ts);
// - `cover`, which every application handler of the chain runs inside. Fastify calls the application
//   handler as it would without the plugin, and the cover watches what it does: its answer is its
//   own (a panic it answers with a server error is recorded once, as if the plugin had answered it);
//   what it throws or rejects with goes on down the chain as Fastify hands on a rejection (a thrown
//   string is never sent as a 200); what it fails with after it answered is recorded, never lost.
// Neither runs on a successful request.

export interface ErrorHandlingParts {
  recoverer: Recoverer
  replies: PanicReplies
  /** Fastify's own line for an error its default handler answers. */
  fastifyErrorLine: FastifyErrorLine
}

/** An error handled by the application's handlers: what they were given, and what they did with it. */
class Episode implements SendWatcher {
  replied = false
  /** What a handler threw or rejected with: Fastify sends it on to the next handler with `reply.send`. */
  handingOn: unknown = NOTHING
  /** What the handler running now was given. */
  current: unknown

  constructor (
    /** What reached the first handler. */
    readonly original: unknown,
    /** The reply's status before any handler ran (`reply.code(401)` set before the error: contract §2). */
    readonly statusBefore: number,
    readonly handling: ErrorHandling
  ) {
    this.current = original
  }

  /** Whether what reached the first handler is a panic. */
  get panicked (): boolean {
    return statusOf(this.original, this.statusBefore) === PANIC_STATUS
  }

  sent (reply: FastifyReply, payload: unknown, send: (payload: unknown) => void): void {
    if (payload === this.handingOn) {
      // Fastify hands what a handler failed with on to the next one
      this.handingOn = NOTHING
      send(payload)
    } else if (this.replied) {
      // a second reply: Fastify's own warning once the first went out, else nothing (never two replies)
      if (reply.sent) send(payload)
    } else if (isError(payload)) {
      // `reply.send(error)`: Fastify hands it on to the next handler
      send(payload)
    } else if (payload === this.original || payload === this.current) {
      // the thrown value itself, sent or returned: never a payload
      this.handling.handle(payload, reply.request, reply)
    } else {
      this.replied = true
      const statusCode = reply.statusCode
      try {
        send(payload)
      } finally {
        if (statusCode >= 500 && this.panicked) this.handling.recordReplied(this.original, reply.request, reply, statusCode)
      }
    }
  }
}

const NOTHING = Symbol('nothing')

export class ErrorHandling {
  readonly #parts: ErrorHandlingParts

  constructor (parts: ErrorHandlingParts) {
    this.#parts = parts
  }

  /** The plugin's link in Fastify's chain of error handlers: the value some handler left unanswered. */
  readonly handle = (value: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    try {
      this.#handle(value, request, reply)
    } catch (error) {
      this.#parts.recoverer.lastResort({ value, source: 'request', request, reply, respond: 'reply' }, error)
    }
  }

  #handle (value: unknown, request: FastifyRequest, reply: FastifyReply): void {
    // a failure while the plugin sends its own reply (an onSend hook that throws again)
    if (isGuarded(reply)) {
      failedWhileSending(reply, value)
      return
    }
    const episode = watcherOf<Episode>(reply)
    let statusCode: number
    let panic = value
    let handlerFailure: { failure: unknown } | undefined
    if (episode === undefined || value === episode.original) {
      statusCode = statusOf(value, episode?.statusBefore ?? reply.statusCode)
    } else {
      // what an application handler failed with, or handed on in place of the error: its own status
      // only (a status it set on the reply speaks for what it answers, not for what it fails with)
      statusCode = statusOf(value)
      // A panic it was given and answers with a server error this way is recorded once, as if the
      // plugin had answered it: what reached the plugin carries it as its cause (a wrapper: that is
      // its record), or is a service error (recorded with that status), or is the handler's own
      // failure — then the panic is the line, and the failure a `recovery handler failed` line.
      const carried = isError(value) && causeChainOf(value).includes(episode.original as Error)
      if (statusCode >= 500 && episode.panicked && !carried) {
        if (statusCode !== PANIC_STATUS) {
          this.recordReplied(episode.original, request, reply, statusCode)
        } else {
          panic = episode.original
          handlerFailure = { failure: value }
        }
      }
    }
    if (statusCode !== PANIC_STATUS) {
      this.#replyToClientError(value as object, statusCode, request, reply)
      return
    }
    // the response already started (raw writes, then a throw): nothing more is written
    const state = responseState(request, reply)
    if (state === 'started') {
      this.#parts.recoverer.recover({ value: panic, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'break', handlerFailure })
    } else {
      this.#parts.recoverer.recover({ value: panic, source: 'request', request, reply, statusCode: PANIC_STATUS, respond: state === 'open' ? 'reply' : 'none', handlerFailure })
    }
  }

  /** A panic an application handler answered itself with `statusCode` (≥ 500): recorded, its reply kept. */
  recordReplied (value: unknown, request: FastifyRequest, reply: FastifyReply, statusCode: number): void {
    this.#parts.recoverer.recover({ value, source: 'request', request, reply, statusCode, respond: 'none' })
  }

  // Fastify's default handler sets the error's headers and status, writes its line, then sends.
  #replyToClientError (value: object, statusCode: number, request: FastifyRequest, reply: FastifyReply): void {
    const plan = errorReply(value, statusCode, reply)
    reply.code(statusCode)
    logClientError(this.#parts.fastifyErrorLine, value, request, reply)
    const { recoverer, replies } = this.#parts
    guard(reply, {
      fallback: () => replies.lastResort(request, requestIdOf(request)),
      onDoubleFault: (failure) => { recoverer.recover({ value: failure, source: 'request', request, reply, statusCode: PANIC_STATUS, respond: 'none' }) }
    })
    sendPlan(reply, plan)
  }

  /** An application's error handler, as the plugin puts it in the chain (lib/error-handler-chain.ts). */
  cover (handler: ErrorHandlerFunction): ErrorHandlerFunction {
    const handling = this
    return function fastifyRecoveryCoveredHandler (this: unknown, error, request, reply) {
      return handling.#run(handler, this, error, request, reply)
    }
  }

  #run (handler: ErrorHandlerFunction, self: unknown, error: unknown, request: FastifyRequest, reply: FastifyReply): unknown {
    let episode = watcherOf<Episode>(reply)
    if (episode === undefined) {
      episode = new Episode(error, reply.statusCode, this)
      watchSends(reply, episode)
    }
    episode.current = error
    let result: unknown
    try {
      result = handler.call(self, error, request, reply)
    } catch (failure) {
      return this.#failed(episode, failure, request, reply)
    }
    if (!isThenable(result)) return result
    const failed = (failure: unknown): unknown => this.#failed(episode, failure, request, reply)
    return Promise.resolve(awaitable(result)).then(undefined, failed)
  }

  // What a handler threw or rejected with. After it (or the plugin) answered: a failure of its own,
  // recorded (the reply stands). Else it goes on to the next handler, as Fastify hands on a rejection —
  // a synchronous throw too, which Fastify would otherwise send as the reply when it is not an Error
  // (a response the route itself started with raw writes is the plugin's to break).
  #failed (episode: Episode, failure: unknown, request: FastifyRequest, reply: FastifyReply): unknown {
    if (episode.replied || reply.sent || isGuarded(reply)) {
      this.#parts.recoverer.recover({ value: failure, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'none' })
      return undefined
    }
    episode.handingOn = failure
    return Promise.reject(failure)
  }
}

function isThenable (value: unknown): boolean {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  return typeof (value as { then?: unknown }).then === 'function'
}
