import type { FastifyReply, FastifyRequest } from 'fastify'

// A stream that fails after the headers went out never reaches an error handler or an onError
// hook: Fastify logs a warning and destroys the response. Contract §3 wants that failure logged
// and counted (source "response"), so stream payloads are watched on their way out.
// Before the headers are sent, Fastify routes a stream failure to the error handler itself: the
// watcher leaves those alone, so each failure is counted once.

type StreamFailure = (error: unknown, request: FastifyRequest, reply: FastifyReply) => void
type OnSendDone = (error: Error | null, payload?: unknown) => void

/** An onSend hook; for replies that are not streams it is one `typeof` check. */
export function buildStreamWatch (onFailure: StreamFailure) {
  return function fastifyRecoveryStreamWatch (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: OnSendDone): void {
    if (payload === null || typeof payload !== 'object') {
      done(null, payload)
      return
    }
    if (typeof (payload as { pipe?: unknown }).pipe === 'function') {
      // 'error', not finished(): a client that disconnects destroys the stream without an error
      ;(payload as NodeJS.ReadableStream).once('error', afterHeaders(onFailure, request, reply))
    } else if (payload instanceof ReadableStream) {
      payload = watchWebStream(payload, afterHeaders(onFailure, request, reply))
    } else if (payload instanceof Response && payload.body !== null) {
      payload = new Response(watchWebStream(payload.body, afterHeaders(onFailure, request, reply)), payload)
    }
    done(null, payload)
  }
}

// built only for stream payloads: an object payload such as a Buffer costs no closure
function afterHeaders (onFailure: StreamFailure, request: FastifyRequest, reply: FastifyReply): (error: unknown) => void {
  return (error) => {
    if (reply.raw.headersSent) onFailure(error, request, reply)
  }
}

// A web stream cannot be listened to without reading it: the payload becomes a stream that reads
// the original and sees its failure before Fastify does, while headersSent is still accurate.
function watchWebStream (source: ReadableStream, failed: (error: unknown) => void): ReadableStream {
  const reader = source.getReader()
  return new ReadableStream({
    async pull (controller) {
      let result
      try {
        result = await reader.read()
      } catch (error) {
        failed(error)
        controller.error(error)
        return
      }
      if (result.done) controller.close()
      else controller.enqueue(result.value)
    },
    cancel (reason) {
      return reader.cancel(reason)
    }
  })
}
