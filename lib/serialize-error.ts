import { boundedCopy, describe, readProperty, truncate, typeOf, type Budget } from './bound'
import { errorTypeOf, isError, messageOf } from './normalize'

// The `err` of a log line, in the shape of pino's standard `err` serializer (the one Fastify
// configures): `type`, `message` and `stack` with the `cause` chain folded in ("outer: inner",
// "caused by: ..."), `aggregateErrors`, and the error's enumerable properties.
// Unlike pino's serializer it never throws (every read is guarded), bounds the line's size, and
// reads `stack` only when the line will carry it, since reading it is what makes V8 format it.

const MESSAGE_BYTES = 4 * 1024
const STACK_BYTES = 16 * 1024
const LINE_BYTES = 48 * 1024
const MAX_CAUSES = 8
const MAX_AGGREGATED = 10
const MAX_NESTING = 3
const OWN_KEYS = new Set(['type', 'message', 'stack', 'aggregateErrors'])
// V8 starts a stack with "Name: message"; the frames follow this marker
const FRAMES = '\n    at '

export interface SerializedError {
  type: string
  message: string
  stack?: string
  aggregateErrors?: SerializedError[]
  [property: string]: unknown
}

/** `type`: the error's type when the caller already knows it (normalize computed it). */
export function serializeError (error: Error, withStack: boolean, type = errorTypeOf(error)): SerializedError {
  return serialize(error, withStack, { bytes: LINE_BYTES }, 0, type)
}

function serialize (error: Error, withStack: boolean, budget: Budget, nesting: number, type = errorTypeOf(error)): SerializedError {
  // most errors have no cause: no chain to build then
  const cause = readProperty(error, 'cause')
  const causes = cause !== undefined && cause !== null && isError(cause) ? causeChain(error) : undefined
  const message = take(budget, causes === undefined ? messageOrEmpty(error) : causes.map(messageOrEmpty).join(': '), MESSAGE_BYTES)
  let stack = ''
  if (withStack) stack = causes === undefined ? stackOf(error) : causes.map(stackOf).join('\ncaused by: ')
  // one shape or the other, never a property added then deleted (that slows what follows)
  const out: SerializedError = stack === '' ? { type, message } : { type, message, stack: take(budget, stack, STACK_BYTES) }
  const errors = readProperty(error, 'errors')
  if (Array.isArray(errors) && nesting < MAX_NESTING) {
    out.aggregateErrors = errors.slice(0, MAX_AGGREGATED).map((item) =>
      isError(item) ? serialize(item, withStack, budget, nesting + 1) : { type: typeOf(item), message: describe(item) })
  }
  copyProperties(error, out, withStack, budget, nesting)
  return out
}

function copyProperties (error: Error, out: SerializedError, withStack: boolean, budget: Budget, nesting: number): void {
  let keys: string[]
  try {
    keys = []
    for (const key in error) {
      if (keys.length === 20) break
      keys.push(key)
    }
  } catch {
    out.properties = '[unreadable]'
    return
  }
  for (const key of keys) {
    if (OWN_KEYS.has(key) || key === 'errors' || key === 'raw') continue
    const value = readProperty(error, key)
    if (typeof value === 'function') continue // methods: JSON has no place for them
    if (isError(value)) {
      // pino folds an Error `cause` into message and stack; other Error properties nest
      if (key !== 'cause' && nesting < MAX_NESTING) out[key] = serialize(value, withStack, budget, nesting + 1)
    } else {
      out[key] = boundedCopy(value, budget)
    }
  }
}

/** The error followed by its causes, as far as they are Errors, without cycles. */
function causeChain (error: Error): Error[] {
  const chain = [error]
  for (let current: Error = error; chain.length <= MAX_CAUSES;) {
    const cause = readProperty(current, 'cause')
    if (!isError(cause) || chain.includes(cause)) break
    chain.push(cause)
    current = cause
  }
  return chain
}

function messageOrEmpty (error: Error): string {
  return messageOf(error) ?? '[unreadable message]'
}

function stackOf (error: Error): string {
  const stack = readProperty(error, 'stack')
  if (typeof stack !== 'string') return ''
  // a huge message makes a huge first line: keep its head and every frame
  const frames = stack.indexOf(FRAMES)
  return frames > MESSAGE_BYTES ? truncate(stack.slice(0, frames), MESSAGE_BYTES) + stack.slice(frames) : stack
}

function take (budget: Budget, text: string, limit: number): string {
  const kept = truncate(text, Math.max(64, Math.min(limit, budget.bytes)))
  budget.bytes -= kept.length
  return kept
}
