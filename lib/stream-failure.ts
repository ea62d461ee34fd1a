import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Recoverer } from './recover'
import { dataOf } from './safe-read'

// A stream (Node, web, a Response body) that fails after the headers went out never reaches the
// error handler: Fastify reports it to its LogController and destroys the response. Contract §3
// wants it logged, counted once (source "response") and the response broken so the client sees a
// failure: on HTTP/2 Fastify's destroy would end the stream cleanly, so it is reset first.
// A stream failing before its headers goes to the error handler, which is where it is counted.

export function streamFailure (recoverer: Recoverer) {
  return function fastifyRecoveryStreamFailure (error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    // a client that disconnects mid-download is not a panic
    if (error !== null && typeof error === 'object' && dataOf(error, 'code') === 'ERR_STREAM_PREMATURE_CLOSE') return
    recoverer.recover({ value: error, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'break' })
  }
}
