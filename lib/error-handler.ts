import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicHandler } from '../types/index'
import { PANIC_STATUS, statusOf } from './classify'
import { askHandler } from './custom-handler'
import { logPassThrough, type RequestLoggingDisabled } from './log'
import type { Recorder } from './record'
import { markRecovered } from './uncovered-routes'
import {
  breakResponse, clientGone, customPanicReply, passThroughReply, sendGuarded, type PanicReplyBuilder, type ReplyPlan
} from './reply'

// The Fastify error handler the plugin installs: the whole recovery path, top to bottom.
// Fastify calls it once per reply at most (error handlers are a chain that only moves down), so
// counting here counts each panic once, however often onError hooks fire.

export interface ErrorHandlerParts {
  handler: PanicHandler | undefined
  handlerTimeout: number
  panicReply: PanicReplyBuilder
  recorder: Recorder
  requestLoggingDisabled: RequestLoggingDisabled
}

export function buildErrorHandler ({ handler, handlerTimeout, panicReply, recorder, requestLoggingDisabled }: ErrorHandlerParts) {
  return function fastifyRecoveryErrorHandler (value: unknown, request: FastifyRequest, reply: FastifyReply): void {
    markRecovered(request)
    const statusCode = statusOf(value)

    // Client and service errors keep their status; a failure while sending them is a panic.
    if (statusCode !== PANIC_STATUS) {
      reply.code(statusCode)
      logPassThrough(value, statusCode, request, reply, requestLoggingDisabled)
      sendGuarded(reply, passThroughReply(value as object, statusCode, reply), () => panicReply(request), (failure) => {
        recorder.record({ value: failure, source: 'request', log: request.log, request, reply, statusCode: PANIC_STATUS })
      })
      return
    }

    // The response already started (a stream failing mid-body, raw writes): nothing more is written.
    if (reply.raw.headersSent) {
      recorder.brokenResponse(value, request, reply)
      breakResponse(reply)
      return
    }

    const info = recorder.record({ value, source: 'request', log: request.log, request, reply, statusCode: PANIC_STATUS })
    if (clientGone(request, reply)) return
    const plan = panicReply(request)
    const fallback = (): ReplyPlan => plan
    if (handler === undefined) {
      sendGuarded(reply, plan, fallback)
      return
    }

    askHandler(handler, info, request, reply, handlerTimeout).then((outcome) => {
      if (clientGone(request, reply) || reply.sent) return
      if ('failure' in outcome) {
        recorder.handlerFailed(info, outcome.failure, request.log, PANIC_STATUS)
        sendGuarded(reply, plan, fallback)
      } else {
        sendGuarded(reply, outcome.custom === undefined ? plan : customPanicReply(outcome.custom, request, panicReply), fallback)
      }
    })
  }
}
