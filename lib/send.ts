import { constants } from 'node:http2'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { keptHeaders, type HeaderValue } from './headers'
import { asTheRequest, inSubscribers } from './reentrancy'
import { isHttp2 } from './request'
import { isError, privateSymbol } from './safe-read'

// Sending: the one module that replaces `reply.send`, and the one answer to "can we still write?".
// Only on the error path, in two ways:
// - while an application's error handlers answer an error, their sends are watched: the watcher
//   (lib/error-handler.ts) says what each one means — an answer, or the failure handed on;
// - once the plugin replies itself, the reply is held and guarded. Held: Fastify's `reply.sent`
//   says true (its `hijacked` flag), as it does for a reply that was sent; Fastify checks it before
//   it goes on with a request (lib/hooks.js, lib/handle-request.js) and before it sends what a route
//   returned (lib/wrap-thenable.js), so an async hook or route that called `reply.send(error)`
//   without returning `reply` never runs the route or sends its data while the plugin awaits the
//   custom handler. The flag is lowered only for the moment the plugin hands its reply to Fastify.
//   Guarded: Fastify routes a failure while sending an error reply (an onSend hook that throws
//   again, a serializer) to the next error handler and finally to a fallback that puts the new
//   error's message in the body; every one of those paths calls `reply.send`, which now writes the
//   generic 500 straight to the socket, with the headers set so far (CORS, cookies written by an
//   onSend hook, security headers) but those describing the replaced body.

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

/** What the application's sends mean while its error handlers answer (lib/error-handler.ts). */
export interface SendWatcher {
  /** Whether the application replied (a send that was not the failure handed on). */
  readonly replied: boolean
  /** An application's send of `payload`: `send` hands a payload on to Fastify. */
  sent: (reply: FastifyReply, payload: unknown, send: (payload: unknown) => void) => void
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
  /** A reply is in Fastify's hands: another send now is a failure of that one. */
  inFlight: boolean
  /** The custom handler or a channel subscriber tried to send an Error or the thrown value itself. */
  refused: boolean
}

interface SendState {
  /** The reply's own `send`. */
  send: FastifyReply['send']
  watcher?: SendWatcher
  guard?: Guard
}

// On the reply itself, declared on every reply (`decorateReply`) so that its shape never changes.
// Not a WeakMap keyed by replies: V8's collector then processes a table of short-lived keys on
// every scavenge (with a closure per reply, below, it cost 20-35 µs per panic in a storm).
const kSend = Symbol('fastify-recovery.send')
type Sending = FastifyReply & { [kSend]?: SendState | null }

/** Declares the sending state's slot on the replies of the plugin's scope; called once, at registration. */
export function declareSendState (fastify: FastifyInstance): void {
  fastify.decorateReply(kSend, null)
}

function stateOf (reply: FastifyReply): SendState {
  let state = (reply as Sending)[kSend]
  if (state === null || state === undefined) {
    state = { send: reply.send }
    ;(reply as Sending)[kSend] = state
    reply.send = sendThroughPlugin
  }
  return state
}

/** From now on, the application's sends on `reply` go through `watcher` (until the plugin replies). */
export function watchSends (reply: FastifyReply, watcher: SendWatcher): void {
  stateOf(reply).watcher = watcher
}

export function watcherOf<T extends SendWatcher> (reply: FastifyReply): T | undefined {
  return (reply as Sending)[kSend]?.watcher as T | undefined
}

// One function for every reply the plugin sends through, reading its state from `this` as
// Reply.prototype.send does (Fastify always calls `reply.send` as a method). Not a closure per
// panic: a fresh closure on each reply kept the panic's whole context reachable from it, and V8's
// young-generation collector paid for that on every panic (scavenges 4-5 times longer in a storm).
function sendThroughPlugin (this: FastifyReply, payload?: unknown): FastifyReply {
  // a channel subscriber's send: the reply, and all that follows from it, are the request's
  if (inSubscribers()) return asTheRequest(() => sendOf(this, payload))
  return sendOf(this, payload)
}

function sendOf (reply: FastifyReply, payload: unknown): FastifyReply {
  const state = (reply as Sending)[kSend] as SendState
  // a state is made by `watchSends` or by `guard`: one of the two is there
  const { guard, watcher } = state
  if (guard !== undefined) guardedSend(reply, state, guard, payload)
  else (watcher as SendWatcher).sent(reply, payload, (handed) => { state.send.call(reply, handed) })
  return reply
}

/**
 * The plugin replies to `reply`: held from now on, and every `reply.send` that is not the plugin's
 * own is guarded — a double fault gets the fallback; the custom handler's own send of an Error or of
 * the thrown value gets the default reply instead. Once per reply: the error handler sends a failure
 * on a guarded reply to the double fault, and the process net answers no reply that says it was sent.
 */
export function guard (reply: FastifyReply, parts: GuardParts): void {
  const state = stateOf(reply)
  state.guard = { value: parts.value, fallback: parts.fallback, onDoubleFault: parts.onDoubleFault, inFlight: false, refused: false }
  hold(reply, true)
}

function guardedSend (reply: FastifyReply, state: SendState, guard: Guard, payload: unknown): void {
  if (reply.raw.writableEnded) {
    state.send.call(reply, payload) // a late send: Fastify's own "already sent" warning
  } else if (guard.inFlight) {
    doubleFault(reply, guard, payload)
  } else if (payload === guard.value || isError(payload)) {
    guard.refused = true
    sendPlan(reply, guard.fallback())
  } else {
    // the custom handler (or a subscriber) answered itself, with something that is not the failure
    guard.inFlight = true
    handOn(reply, state, payload)
  }
}

/** Whether the plugin replies to this reply (Fastify's default handler then only sees a double fault). */
export function isGuarded (reply: FastifyReply): boolean {
  return (reply as Sending)[kSend]?.guard !== undefined
}

/** Whether a reply already went to Fastify (the plugin's, or the custom handler's own). */
export function replyInFlight (reply: FastifyReply): boolean {
  return (reply as Sending)[kSend]?.guard?.inFlight === true
}

/**
 * Whether the request was answered: its response sent or started, the plugin replying to it, or an
 * application's error handler having answered it (its reply may still be in its onSend hooks).
 */
export function hasReplied (reply: FastifyReply): boolean {
  if (reply.sent || reply.raw.headersSent) return true
  // declared on every reply of the scope: null until the plugin watches or guards it (one of the two)
  const state = (reply as Sending)[kSend] as SendState | null
  return state !== null && (state.guard !== undefined || (state.watcher as SendWatcher).replied)
}

/** Whether the custom handler or a subscriber tried to send the failure itself since this was last asked. */
export function takeRefusal (reply: FastifyReply): boolean {
  const guard = (reply as Sending)[kSend]?.guard
  if (guard?.refused !== true) return false
  guard.refused = false
  return true
}

/** Sends a plan through Fastify (onSend hooks and all), on a guarded reply. */
export function sendPlan (reply: FastifyReply, plan: ReplyPlan): void {
  const state = stateOf(reply)
  const guard = state.guard as Guard
  guard.inFlight = true
  try {
    const before = reply.getHeaders()
    for (const name of plan.remove ?? []) if (before[name] !== undefined) reply.removeHeader(name)
    reply.code(plan.statusCode).headers(plan.headers)
    handOn(reply, state, plan.body)
  } catch (error) {
    // writeHead itself threw (a header set earlier is invalid), or the reply's methods are broken
    doubleFault(reply, guard, error)
  }
}

/** A failure reached the plugin's error handler while the plugin was sending this reply: a double fault. */
export function failedWhileSending (reply: FastifyReply, failure: unknown): void {
  const state = stateOf(reply)
  doubleFault(reply, state.guard as Guard, failure)
}

function doubleFault (reply: FastifyReply, guard: Guard, failure: unknown): void {
  try {
    guard.onDoubleFault?.(failure)
  } finally {
    writeRaw(reply, guard.fallback())
  }
}

// Fastify's own send refuses a reply that says it was sent: the hold is lowered while it takes this one
function handOn (reply: FastifyReply, state: SendState, payload: unknown): void {
  hold(reply, false)
  try {
    state.send.call(reply, payload)
  } finally {
    hold(reply, true)
  }
}

// Fastify's `hijacked` flag, an own property of every reply (set in its constructor)
const hijackedOf = privateSymbol('fastify.reply.hijacked')

function hold (reply: FastifyReply, held: boolean): void {
  const hijacked = hijackedOf(reply)
  if (hijacked !== undefined) (reply as unknown as Record<symbol, boolean>)[hijacked] = held
}

/**
 * Writes `plan` straight to the socket, with the headers set so far but those it removes and those
 * that cannot be sent. A response whose headers already went out is broken instead. Never throws.
 */
export function writeRaw (reply: FastifyReply, plan: RawPlan): void {
  const res = reply.raw
  if (res.writableEnded) return
  if (res.headersSent) {
    breakResponse(reply)
    return
  }
  let kept: Record<string, HeaderValue> = {}
  try {
    kept = keptHeaders(reply.getHeaders(), plan.remove)
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
