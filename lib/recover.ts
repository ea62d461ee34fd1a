import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicHandler, PanicInfo } from '../types/index'
import { askHandler, type Describe, type HandlerOutcome } from './custom-handler'
import { FST_RECOVERY_HANDLER_SENT } from './errors'
import type { PanicReplies } from './panic-reply'
import { copyOfInfo, type Incident, type Panic, type Recorder } from './record'
import { recording } from './reentrancy'
import { requestIdOf } from './request'
import { breakResponse, guard, replyInFlight, responseState, sendPlan, takeRefusal, writeRaw, type RawPlan } from './send'

// The one path every failure takes. A way in — the error handler (lib/error-handler.ts), an
// application error handler's answer, the process net, `run` and `report`, a stream broken after its
// headers, a websocket route — says what it knows as an Incident and what the client is to get, and
// `recover` does the rest, top to bottom:
//   read      the plugin's own reading of the failure (lib/record.ts), no application code runs;
//   decide    the reply (lib/panic-reply.ts), and guard it (lib/send.ts) before any application
//             code can send something else;
//   record    one line (lib/log.ts), one count (lib/metrics.ts), the trace, the channel — once per
//             failure: an object recorded before is not recorded again;
//   answer    the reply, or the custom handler's, unless the application's code answered meanwhile.
// Contract §3's invariant lives here too: a failure of the plugin's own code anywhere on the way
// ends in the last resort — a `recovery failed` line with that error, the panic counted if it was
// not yet, and the generic 500 written straight to the socket — never in Fastify's default handler.

/** What the client gets: the panic reply; its response broken (the headers went out); or nothing more. */
export type Respond = 'reply' | 'break' | 'none'

/** A failure, and what its request is to get. */
export interface Failure extends Incident {
  respond: Respond
  /** With 'reply': close the connection whatever `closeConnection` says (the process net's culprit). */
  close?: boolean
}

export interface RecovererParts {
  recorder: Recorder
  replies: PanicReplies
  /** The custom handler: it chooses the reply to a request's own panics. */
  handler: PanicHandler | undefined
  handlerTimeout: number
  describe: Describe
}

export class Recoverer {
  readonly #parts: RecovererParts

  constructor (parts: RecovererParts) {
    this.#parts = parts
  }

  /**
   * Reads, decides, records and answers one failure. Returns the PanicInfo of its record (of its first
   * record, for an object recorded before) — the plugin's own: a caller that hands it on copies it —,
   * or `undefined` when the plugin's own code failed and the last resort answered. Never throws.
   */
  recover (failure: Failure): PanicInfo | undefined {
    try {
      return this.#recover(failure)
    } catch (error) {
      this.lastResort(failure, error)
      return undefined
    }
  }

  #recover (failure: Failure): PanicInfo {
    const { recorder, handler } = this.#parts
    const known = recorder.recordOf(failure.value)
    if (known !== undefined) failure.counted = true
    if (failure.respond !== 'reply') {
      const info = known ?? recorder.record(recorder.read(failure))
      if (failure.handlerFailure !== undefined) recorder.handlerFailed(failure, info, failure.handlerFailure.failure)
      if (failure.respond === 'break') breakResponse(failure.reply as FastifyReply)
      return info
    }
    const request = failure.request as FastifyRequest
    const reply = failure.reply as FastifyReply
    const panic = recorder.read(failure)
    const plan = this.#parts.replies.panic(request, panic.info, { close: failure.close })
    guard(reply, { value: failure.value, fallback: () => plan })
    const info = known ?? recorder.record(panic)
    if (failure.handlerFailure !== undefined) recorder.handlerFailed(failure, info, failure.handlerFailure.failure)
    if (handler === undefined || failure.source !== 'request') {
      this.#reply(panic, plan)
      return info
    }
    // what the handler records while it runs is nested in this panic's record (lib/reentrancy.ts)
    const asked = recording(panic.rank, () => askHandler(handler, copyOfInfo(info), request, reply, this.#parts.handlerTimeout, this.#parts.describe))
    asked.then((outcome) => {
      try {
        this.#replyChosen(outcome, panic, plan)
      } catch (error) {
        this.lastResort(failure, error)
      }
    })
    return info
  }

  #replyChosen (outcome: HandlerOutcome, panic: Panic, plan: RawPlan): void {
    if ('failure' in outcome) {
      this.#reply(panic, plan, outcome)
    } else if (outcome.custom === undefined) {
      this.#reply(panic, plan)
    } else {
      this.#reply(panic, this.#parts.replies.chosen(outcome.custom, panic.incident.request as FastifyRequest, panic.info))
    }
  }

  /** Sends `plan` unless the application's code answered meanwhile; `failed`: why the custom handler's reply was not taken. */
  #reply (panic: Panic, plan: RawPlan, failed?: { failure: unknown }): void {
    const { recorder } = this.#parts
    const request = panic.incident.request as FastifyRequest
    const reply = panic.incident.reply as FastifyReply
    if (takeRefusal(reply)) recorder.handlerFailed(panic.incident, panic.info, new FST_RECOVERY_HANDLER_SENT())
    if (replyInFlight(reply) || responseState(request, reply) !== 'open') return
    if (failed !== undefined) recorder.handlerFailed(panic.incident, panic.info, failed.failure)
    sendPlan(reply, plan)
  }

  /**
   * The plugin's own code failed on `failure`: a `recovery failed` line with `error`, the count if it
   * was not made, and a request still unanswered gets the generic 500 written straight to the socket
   * (built from strings the plugin made, by functions that never throw). Never throws.
   */
  lastResort (failure: Failure, error: unknown): void {
    this.#parts.recorder.recoveryFailed(failure, error)
    const { request, reply } = failure
    if (request === undefined || reply === undefined) return
    if (failure.respond === 'reply') writeRaw(reply, this.#parts.replies.lastResort(request, requestIdOf(request)))
    else if (failure.respond === 'break') breakResponse(reply)
  }
}
