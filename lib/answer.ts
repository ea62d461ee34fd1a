import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DefaultReplyBuilder } from './default-reply'
import { FST_RECOVERY_HANDLER_SENT } from './errors'
import type { Panic, Recorder } from './record'
import { guard, hasAnswered, responseState, sendPlan, takeRefusal, type RawPlan, type ReplyPlan } from './send'

// The answer to a panic's request (contract §3, §4, §11): decided from the plugin's own reading of
// the panic and guarded before any code of the application runs — the `context` function, the
// channel's subscribers, the custom handler — then sent after them, unless one of them answered.
// Whatever they change in the PanicInfo they are given, the reply is the plugin's; if one of them
// sends the failure itself (an Error, the thrown value), the client gets the default reply and a
// `recovery handler failed` line says so. The error handler and the process net's culprit both
// answer through here.

/** The default reply for `panic`, built and guarded now, before the panic is recorded. */
export function armAnswer (defaultReply: DefaultReplyBuilder, panic: Panic, request: FastifyRequest, reply: FastifyReply, close = false): RawPlan {
  const plan = defaultReply(request, panic.info.requestId as string, { panic: panic.info, close })
  guard(reply, { value: panic.info.value, fallback: () => plan })
  return plan
}

/** Sends `plan` unless the application's code answered meanwhile; `failure`: why the custom handler's answer was not taken. */
export function sendAnswer (recorder: Recorder, panic: Panic, request: FastifyRequest, reply: FastifyReply, plan: ReplyPlan, failure?: { failure: unknown }): void {
  if (takeRefusal(reply)) recorder.handlerFailed(panic, new FST_RECOVERY_HANDLER_SENT())
  if (hasAnswered(reply) || responseState(request, reply) !== 'open') return
  if (failure !== undefined) recorder.handlerFailed(panic, failure.failure)
  sendPlan(reply, plan)
}
