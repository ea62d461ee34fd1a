import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Recoverer } from './recover'
import { dataOf } from './safe-read'

// Two failures Fastify reports to its LogController once the response is under way, where no error
// handler sees them; each is a panic with source "response", recorded once:
// - a stream (Node, web, a Response body) that fails after the headers went out: Fastify destroys
//   the response; contract §3 wants the client to see a failure, and on HTTP/2 Fastify's destroy
//   would end the stream cleanly, so it is reset first. (A stream failing before its headers goes to
//   the error handler, which is where it is counted.)
// - an `onResponse` hook that fails (Fastify's `requestCompleted` with an error): the client already
//   has its reply; Fastify's own line for the request is then its "request completed" line, without
//   the raw error (contract §18: Fastify's line for a failure after the response carries no secret).

export function streamFailure (recoverer: Recoverer) {
  return function fastifyRecoveryStreamFailure (error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    // a client that disconnects mid-download is not a panic
    if (error !== null && typeof error === 'object' && dataOf(error, 'code') === 'ERR_STREAM_PREMATURE_CLOSE') return
    recoverer.recover({ value: error, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'break' })
  }
}

export function responseHookFailure (recoverer: Recoverer) {
  return function fastifyRecoveryResponseHookFailure (error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    recoverer.recover({ value: error, source: 'response', request, reply, statusCode: reply.statusCode, respond: 'none' })
  }
}
