import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicHandler, PanicInfo } from '../types/index'
import { armAnswer, sendAnswer } from './answer'
import { PANIC_STATUS, statusOf } from './classify'
import type { Copier } from './copier'
import { askHandler, type HandlerOutcome } from './custom-handler'
import { handlerReply, type DefaultReplyBuilder } from './default-reply'
import type { Shield } from './last-resort'
import { logPassThrough, type FastifyErrorLine } from './log'
import { passThroughReply } from './pass-through'
import type { Incident, Panic, Recorder } from './record'
import { recording } from './reentrancy'
import { requestIdOf } from './request-facts'
import { breakResponse, guard, responseState, sendPlan, type RawPlan } from './send'

// The Fastify error handler the plugin installs: the whole recovery path, top to bottom.
// Fastify calls it once per reply at most (error handlers are a chain that only moves down), so
// counting here counts each panic once, however often onError hooks fire.

export interface ErrorHandlerParts {
  handler: PanicHandler | undefined
  handlerTimeout: number
  defaultReply: DefaultReplyBuilder
  recorder: Recorder
  shield: Shield
  copier: Copier
  /** Fastify's own line for an error its default handler answers. */
  fastifyErrorLine: FastifyErrorLine
}

export function buildErrorHandler (parts: ErrorHandlerParts) {
  const { handler, handlerTimeout, defaultReply, recorder, shield, copier, fastifyErrorLine } = parts

  return function fastifyRecoveryErrorHandler (value: unknown, request: FastifyRequest, reply: FastifyReply): void {
    const incident: Incident = { value, source: 'request', request, reply }
    shield(incident, () => recover(incident, request, reply))
  }

  function recover (incident: Incident, request: FastifyRequest, reply: FastifyReply): void {
    const statusCode = statusOf(incident.value, reply)
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
      recorder.record(recorder.read(incident))
      breakResponse(reply)
      return
    }

    incident.statusCode = PANIC_STATUS
    const panic = recorder.read(incident)
    if (state === 'gone') {
      recorder.record(panic)
      return
    }
    // decided and guarded before the application's code runs: context, subscribers, the custom handler
    const plan = armAnswer(defaultReply, panic, request, reply)
    const info = recorder.record(panic)
    if (handler === undefined) {
      sendAnswer(recorder, panic, request, reply, plan)
      return
    }
    // what the handler records while it runs is nested in this panic's record
    recording(panic.rank, () => askHandler(handler, info, request, reply, handlerTimeout, copier)).then((outcome) => {
      shield(incident, () => answer(outcome, panic, plan, request, reply))
    })
  }

  function answer (outcome: HandlerOutcome, panic: Panic, plan: RawPlan, request: FastifyRequest, reply: FastifyReply): void {
    if ('failure' in outcome) {
      sendAnswer(recorder, panic, request, reply, plan, outcome)
      return
    }
    const requestId = (panic.info as PanicInfo & { requestId: string }).requestId
    sendAnswer(recorder, panic, request, reply, outcome.custom === undefined ? plan : handlerReply(outcome.custom, request, requestId, defaultReply))
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
        shield(panic, () => { recorder.record(recorder.read(panic)) })
      }
    })
    sendPlan(reply, plan)
  }
}
