import { constants } from 'node:http2'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { keptHeaders, type HeaderValue } from './headers'
import { asTheRequest, inSubscribers } from './reentrancy'
import { isError } from './safe-read'

// Sending: the one module that replaces `reply.send`, and the one answer to "can we still write?".
// Fastify routes a failure while sending an error reply (an onSend hook that throws again, a
// serializer) to the next error handler and finally to a fallback that puts the new error's message
// in the body; every one of those paths calls `reply.send`. While the plugin answers a reply, its
// own `send` catches them and writes the generic 500 straight to the socket, with the headers set
// before the failure (CORS, cookies, security headers) but those describing the replaced body.

/** A reply decided by the plugin: Fastify sends it (serializing `body` if it is not a string or Buffer). */
export interface ReplyPlan {
  statusCode: number
  /** Set over the headers set earlier (lib/headers.ts decides them for a panic reply). */
  headers: Record<string, HeaderValue>
  body: unknown
  /** Headers set earlier that must not go out with this reply. */
  remove?: readonly string[]
}

/** The generic reply, written to the socket when sending through Fastify failed: its body is a string. */
export interface RawPlan extends ReplyPlan {
  body: string | Buffer
  remove: readonly string[]
}

export interface GuardParts {
  /** The thrown value: the custom handler may not send it. */
  value?: unknown
  /** The generic 500; built only when a double fault needs it. */
  fallback: () => RawPlan
  /** A failure while sending (a double fault), before the fallback goes out. */
  onDoubleFault?: (failure: unknown) => void
}

interface Guard extends GuardParts {
  send: FastifyReply['send']
  /** A reply is in Fastify's hands: another send now is a failure of that one. */
  inFlight: boolean
  /** The custom handler or a channel subscriber tried to send an Error or the thrown value itself. */
  refused: boolean
  /** The headers as they were before the plugin's reply went to Fastify. */
  before?: Record<string, unknown>
}

// On the reply itself, declared on every reply (`decorateReply`) so that its shape never changes.
// Not a WeakMap keyed by replies: V8's collector then processes a table of short-lived keys on
// every scavenge (with a closure per reply, below, it cost 20-35 µs per panic in a storm).
const kGuard = Symbol('fastify-recovery.guard')
type Guarded = FastifyReply & { [kGuard]?: Guard | null }

/** Declares the guard's slot on the replies of the plugin's scope; called once, at registration. */
export function declareGuard (fastify: FastifyInstance): void {
  fastify.decorateReply(kGuard, null)
}

function guardOf (reply: FastifyReply): Guard | undefined {
  return (reply as Guarded)[kGuard] ?? undefined
}

/**
 * From now on, every `reply.send` that is not the plugin's own: a double fault gets the fallback;
 * the custom handler's own send of an Error or of the thrown value gets the default reply instead.
 */
export function guard (reply: FastifyReply, parts: GuardParts): void {
  if (guardOf(reply) !== undefined) return
  const state: Guard = { value: parts.value, fallback: parts.fallback, onDoubleFault: parts.onDoubleFault, send: reply.send, inFlight: false, refused: false }
  ;(reply as Guarded)[kGuard] = state
  reply.send = guardedSend
}

// One function for every guarded reply, reading its state from `this` as Reply.prototype.send
// does (Fastify always calls `reply.send` as a method). Not a closure per panic: a fresh closure on
// each reply kept the panic's whole context reachable from it, and V8's young-generation collector
// paid for that on every panic (measured: scavenges 4-5 times longer in a panic storm).
function guardedSend (this: FastifyReply, payload?: unknown): FastifyReply {
  // a channel subscriber's send: the reply, and all that follows from it, are the request's
  if (inSubscribers()) return asTheRequest(() => guardedSendOf(this, payload))
  return guardedSendOf(this, payload)
}

function guardedSendOf (reply: FastifyReply, payload: unknown): FastifyReply {
  const state = guardOf(reply) as Guard
  if (reply.raw.writableEnded) return state.send.call(reply, payload) // a late send: Fastify's own "already sent" warning
  if (state.inFlight) {
    doubleFault(reply, state, payload)
  } else if (payload === state.value || isError(payload)) {
    state.refused = true
    sendPlan(reply, state.fallback())
  } else {
    // the custom handler (or a subscriber) answered itself, with something that is not the failure
    state.inFlight = true
    state.send.call(reply, payload)
  }
  return reply
}

/** Whether the plugin is answering this reply (Fastify's default handler then only sees a double fault). */
export function isGuarded (reply: FastifyReply): boolean {
  return guardOf(reply) !== undefined
}

/** Whether a reply already went to Fastify (the plugin's, or the custom handler's own). */
export function hasAnswered (reply: FastifyReply): boolean {
  return guardOf(reply)?.inFlight === true
}

/** Whether the custom handler or a subscriber tried to send the failure itself since this was last asked. */
export function takeRefusal (reply: FastifyReply): boolean {
  const state = guardOf(reply)
  if (state?.refused !== true) return false
  state.refused = false
  return true
}

/** Sends a plan through Fastify (onSend hooks and all), on a guarded reply. */
export function sendPlan (reply: FastifyReply, plan: ReplyPlan): void {
  const state = guardOf(reply) as Guard
  state.inFlight = true
  try {
    const before = state.before = reply.getHeaders()
    for (const name of plan.remove ?? []) if (before[name] !== undefined) reply.removeHeader(name)
    reply.code(plan.statusCode).headers(plan.headers)
    state.send.call(reply, plan.body)
  } catch (error) {
    // writeHead itself threw (a header set earlier is invalid), or the reply's methods are broken
    doubleFault(reply, state, error)
  }
}

function doubleFault (reply: FastifyReply, state: Guard, failure: unknown): void {
  try {
    state.onDoubleFault?.(failure)
  } finally {
    writeRaw(reply, state.fallback(), state.before)
  }
}

/**
 * Writes `plan` straight to the socket, with the headers set before (`before`, default: as they are
 * now) but those it removes and those that cannot be sent. A response whose headers already went out
 * is broken instead. Never throws.
 */
export function writeRaw (reply: FastifyReply, plan: RawPlan, before?: Record<string, unknown>): void {
  const res = reply.raw
  if (res.writableEnded) return
  if (res.headersSent) {
    breakResponse(reply)
    return
  }
  let kept: Record<string, HeaderValue> = {}
  try {
    kept = keptHeaders(before ?? reply.getHeaders(), plan.remove)
  } catch {
    // headers that cannot even be listed: the reply goes out with its own
  }
  try {
    const headers = { ...kept, ...plan.headers, 'content-length': String(Buffer.byteLength(plan.body)) }
    res.writeHead(plan.statusCode, headers)
    res.end(reply.request.method === 'HEAD' ? undefined : plan.body)
  } catch {
    breakResponse(reply)
  }
}

/** Can the plugin still write to this response? 'started': its headers went out (Fastify never hands an ended one to an error handler). */
export type ResponseState = 'open' | 'started' | 'gone'

export function responseState (request: FastifyRequest, reply: FastifyReply): ResponseState {
  const res = reply.raw
  if (res.headersSent) return 'started'
  // not request.raw.destroyed: a request stream is destroyed once its body has been read
  if (res.destroyed || request.raw.socket?.destroyed === true) return 'gone'
  return 'open'
}

/**
 * Contract §3: after the headers went out nothing more is written, and the client must see a broken
 * response: HTTP/1 loses its connection (no final chunk, a short body); an HTTP/2 stream is reset
 * with INTERNAL_ERROR, where a plain destroy would end it cleanly (NO_ERROR).
 */
export function breakResponse (reply: FastifyReply): void {
  const res = reply.raw as FastifyReply['raw'] & { stream?: { destroyed: boolean, close: (code: number) => void } }
  if (isHttp2(reply.request) && res.stream !== undefined) {
    if (!res.stream.destroyed) res.stream.close(constants.NGHTTP2_INTERNAL_ERROR)
    return
  }
  res.destroy()
}

export function isHttp2 (request: FastifyRequest): boolean {
  return request.raw.httpVersionMajor === 2
}
