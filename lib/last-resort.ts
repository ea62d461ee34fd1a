import type { DefaultReplyBuilder } from './default-reply'
import type { Incident, Recorder } from './record'
import { requestIdOf } from './request-facts'
import { writeRaw } from './send'

// Contract §3's invariant: a route covered by the plugin is never answered by Fastify's default
// error handler, whatever was thrown and whatever goes wrong inside the plugin. Every entry point
// (the error handler and the custom handler's answer, Fastify's report of a broken stream,
// background tasks, the process net, `report`) runs its work through `shield`: a failure of the
// plugin's own code ends here, in a path that cannot throw — a `recovery failed` line with that
// error, the panic counted if it was not yet, and a request still unanswered gets the generic 500
// written straight to the socket.

/** Runs an entry point's work for `incident`, and returns what it returned (`undefined` when it failed); never throws. */
export type Shield = <T>(incident: Incident, work: () => T) => T | undefined

export function createShield (recorder: Recorder, defaultReply: DefaultReplyBuilder): Shield {
  return function shield<T> (incident: Incident, work: () => T): T | undefined {
    try {
      return work()
    } catch (failure) {
      recorder.recoveryFailed(incident, failure)
      const { request, reply } = incident
      if (request === undefined || reply === undefined || incident.respond === false) return undefined
      // built from strings the plugin made, and written by a function that never throws
      writeRaw(reply, defaultReply.lastResort(request, requestIdOf(request)))
      return undefined
    }
  }
}
