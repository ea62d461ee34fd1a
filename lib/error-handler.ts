import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicHandler, PanicInfo } from '../types/index'
import type { CopyRules } from './bounded-copy'
import { PANIC_STATUS, statusOf } from './classify'
import { askHandler, type HandlerOutcome } from './custom-handler'
import { FST_RECOVERY_HANDLER_SENT } from './errors'
import type { Shield } from './last-resort'
import { logPassThrough, type FastifyErrorLine } from './log'
import { handlerReply, type DefaultReplyBuilder } from './default-reply'
import { passThroughReply } from './pass-through'
import type { Incident, Recorder } from './record'
import { requestIdOf } from './request-facts'
import { breakResponse, guard, hasAnswered, refusedSend, responseState, sendPlan, type RawPlan } from './send'

// The Fastify error handler the plugin installs: the whole recovery path, top to bottom.
// Fastify calls it once per reply at most (error handlers are a chain that only moves down), so
// counting here counts each panic once, however often onError hooks fire.

export interface ErrorHandlerParts {
  handler: PanicHandler | undefined
  handlerTimeout: number
  defaultReply: DefaultReplyBuilder
  recorder: Recorder
  shield: Shield
  rules: CopyRules
  /** Fastify's own line for an error its default handler answers. */
  fastifyErrorLine: FastifyErrorLine
}

export function buildErrorHandler (parts: ErrorHandlerParts) {
  const { handler, handlerTimeout, defaultReply, recorder, shield, rules, fastifyErrorLine } = parts

  return function fastifyRecoveryErrorHandler (value: unknown, request: FastifyRequest, reply: FastifyReply): void {
    const incident: Incident = { value, source: 'request', request, reply }
    shield(incident, () => recover(incident, request, reply))
  }

  function recover (incident: Incident, request: FastifyRequest, reply: FastifyReply): void {
    const { value } = incident
    const statusCode = statusOf(value)
    // Client and service errors keep their status and Fastify's reply; a failure while sending them is a panic.
    if (statusCode !== PANIC_STATUS) {
      passThrough(incident, statusCode, request, reply)
      return
    }

    // The response already started (raw writes, then a throw): nothing more is written.
    const state = responseState(request, reply)
    if (state === 'started') {
      incident.source = 'response'
      incident.statusCode = reply.statusCode
      recorder.record(incident)
      breakResponse(reply)
      return
    }

    incident.statusCode = PANIC_STATUS
    const info = recorder.record(incident)
    if (state === 'gone') return
    const plan = defaultReply(request, info.requestId as string, PANIC_STATUS, info)
    // in place before the custom handler runs: it cannot send the failure itself either
    guard(reply, { value, fallback: () => plan })
    if (handler === undefined) {
      sendPlan(reply, plan)
      return
    }
    askHandler(handler, info, request, reply, handlerTimeout, rules).then((outcome) => {
      shield(incident, () => answer(outcome, info, plan, request, reply))
    })
  }

  function answer (outcome: HandlerOutcome, info: PanicInfo, plan: RawPlan, request: FastifyRequest, reply: FastifyReply): void {
    if (refusedSend(reply)) {
      recorder.handlerFailed(info, new FST_RECOVERY_HANDLER_SENT(), request)
      return
    }
    if (hasAnswered(reply) || responseState(request, reply) !== 'open') return
    if ('failure' in outcome) {
      recorder.handlerFailed(info, outcome.failure, request)
      sendPlan(reply, plan)
    } else {
      sendPlan(reply, outcome.custom === undefined ? plan : handlerReply(outcome.custom, request, info.requestId as string, defaultReply))
    }
  }

  // Fastify's default handler sets the error's headers and status, writes its line, then sends.
  function passThrough (incident: Incident, statusCode: number, request: FastifyRequest, reply: FastifyReply): void {
    const plan = passThroughReply(incident.value as object, statusCode, reply)
    reply.code(statusCode)
    logPassThrough(fastifyErrorLine, incident.value, request, reply)
    guard(reply, {
      fallback: () => defaultReply(request, requestIdOf(request)),
      onDoubleFault: (failure) => {
        const panic: Incident = { value: failure, source: 'request', request, reply, statusCode: PANIC_STATUS }
        shield(panic, () => { recorder.record(panic) })
      }
    })
    sendPlan(reply, plan)
  }
}
