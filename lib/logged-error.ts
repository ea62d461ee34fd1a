import { budgetOf, copyProperties, fit, hasSeen, see, type Budget, type CopyRules } from './bounded-copy'
import type { Normalized } from './normalize'
import { normalize } from './normalize'
import { FST_RECOVERY_NON_ERROR } from './errors'
import { dataOf, errorMessageOf, errorTypeOf, GETTER, inherits, isArray, isError, stackOf } from './safe-read'
import { redactText } from './secrets'

// The `err` of a log line (contract §6): an Error, so that the logger's own `err` serializer and
// formatters decide its shape (pino's `type`/`message`/`stack` with the `cause` chain folded in,
// a custom serializer, ECS's `error.*`), but never the thrown value itself. It is a copy built by
// the bounded copy: reading it runs no code of the thrown value, secrets are redacted, and its size
// is bounded whatever was thrown. Like a native Error, its `message`, `stack`, `cause` and `errors`
// are not enumerable; the thrown value's own enumerable properties are.

/** The line's `err.message`, the messages of the `cause` chain included (pino folds them in). */
export const MESSAGE_BYTES = 4 * 1024
/** The line's `err.stack`, the stacks of the `cause` chain included. */
export const STACK_BYTES = 16 * 1024
/** The whole `err`, as JSON: well inside the 64 KiB line. */
export const ERR_BYTES = 48 * 1024

const MAX_CAUSES = 8
const MAX_AGGREGATED = 10
// pino folds a chain as "outer: inner" and "stack\ncaused by: stack"
const MESSAGE_SEPARATOR = 2
const STACK_SEPARATOR = 12
// what a serializer writes for an error besides its strings: `{"type":,"message":,"stack":}`
const ERROR_FIELDS = 32
// V8 starts a stack with "Name: message"; the frames follow this marker
const FRAMES = '\n    at '

/** What is left for the messages and stacks of one `cause` chain. */
interface Chain { message: number, stack: number, length: number }

interface Copying {
  budget: Budget
  rules: CopyRules
  withStack: boolean
}

/**
 * The Error the line carries for a normalised throwable. `withStack: false` leaves every stack out
 * (and never reads one: reading `stack` is what makes V8 format it).
 */
export function loggedError (normalized: Normalized, withStack: boolean, rules: CopyRules): Error {
  const { error, type } = normalized
  const copying: Copying = {
    budget: budgetOf(ERR_BYTES, error),
    withStack,
    // errors met among the properties are copied as Errors too, each with a chain of its own
    rules: { secrets: rules.secrets, copyError: (nested, _budget, depth) => copyError(nested, copying, newChain(), depth) }
  }
  // a non-Error's description is the message of the error that describes it, read from there
  const message = inherits(error, FST_RECOVERY_NON_ERROR.prototype) ? undefined : normalized.message
  return copyError(error, copying, newChain(), 0, type, message)
}

// the separators pino puts between the links of a chain are kept aside from the start
function newChain (): Chain {
  return { message: MESSAGE_BYTES - MAX_CAUSES * MESSAGE_SEPARATOR, stack: STACK_BYTES - MAX_CAUSES * STACK_SEPARATOR, length: 0 }
}

// the thrown error's own properties that the copy writes in its own way
const REWRITTEN = new Set(['message', 'stack', 'constructor'])
const REWRITTEN_WITH_CAUSE = new Set([...REWRITTEN, 'cause'])

function copyError (error: Error, copying: Copying, chain: Chain, depth: number, type = errorTypeOf(error), message?: string): Error {
  const { budget, rules, withStack } = copying
  budget.bytes -= ERROR_FIELDS + type.length
  // plain assignments on an object of a class made for its type: a serializer reads a copy fast
  const copy = new (loggedErrorClass(type))()
  copy.message = fitChain(redactText(message ?? errorMessageOf(error), rules.secrets, MESSAGE_BYTES), chain, 'message', budget)
  if (withStack) {
    const stack = stackTextOf(error, rules.secrets)
    if (stack !== undefined) copy.stack = fitChain(stack, chain, 'stack', budget)
  }

  let rewritten = REWRITTEN
  const cause = dataOf(error, 'cause')
  if (isError(cause) && !hasSeen(budget, cause) && chain.length < MAX_CAUSES) {
    see(budget, cause)
    chain.length++
    // pino folds it into message and stack, and skips it as a property
    copy.cause = copyError(cause, copying, chain, depth)
    rewritten = REWRITTEN_WITH_CAUSE
  }

  const errors = dataOf(error, 'errors')
  if (isArray(errors)) {
    // AggregateError: pino lists these as `aggregateErrors`; not enumerable, or it would list them twice
    const items: Error[] = []
    for (let i = 0; i < errors.length && i < MAX_AGGREGATED && budget.bytes > 0; i++) {
      const data = dataOf(errors, i)
      // an error met before (the aggregate itself, a repeated one) is a marker, as in any copy
      const item = data === GETTER ? '[Getter]' : data !== null && typeof data === 'object' && hasSeen(budget, data) ? '[Repeated]' : data
      if (isError(item)) {
        see(budget, item)
        items.push(copyError(item, copying, newChain(), depth + 1))
      } else {
        items.push(copyError(normalize(item, rules).error, copying, newChain(), depth + 1, typeOfItem(item)))
      }
    }
    Object.defineProperty(copy, 'errors', { value: items, enumerable: false, writable: true, configurable: true })
  }

  copyProperties(error, budget, rules, depth, copy as unknown as Record<string, unknown>, rewritten)
  return copy
}

// A logger without an `err` serializer writes the copy with JSON.stringify: `toJSON` gives it
// pino's standard shape (not enumerable, so a serializer copying the properties leaves it out).
const FOLDED = new Set(['message', 'stack', 'cause'])
const LoggedError: Error = Object.create(Error.prototype, {
  toJSON: {
    value: function toJSON (this: Error): Record<string, unknown> {
      const plain: Record<string, unknown> = { type: this.constructor.name, message: folded(this, 'message', ': ') }
      if (typeof this.stack === 'string') plain.stack = folded(this, 'stack', '\ncaused by: ')
      const errors = (this as { errors?: unknown }).errors
      if (Array.isArray(errors)) plain.aggregateErrors = errors
      for (const key of Object.keys(this)) if (!FOLDED.has(key)) plain[key] = (this as unknown as Record<string, unknown>)[key]
      return plain
    }
  }
})

function folded (error: Error, part: 'message' | 'stack', separator: string): string {
  const cause = error.cause as Error | undefined
  const own = error[part] ?? ''
  return cause === undefined ? own : `${own}${separator}${folded(cause, part, separator)}`
}

function typeOfItem (item: unknown): string {
  return item === null ? 'null' : typeof item
}

// A huge message makes a huge first line: its head is kept, and every frame. The message in it is
// redacted as the message is.
function stackTextOf (error: Error, secrets: ReadonlySet<string>): string | undefined {
  const stack = stackOf(error)
  if (stack === GETTER) return '[Getter]'
  if (typeof stack !== 'string' || stack === '') return undefined
  const frames = stack.indexOf(FRAMES)
  if (frames === -1) return redactText(stack, secrets, STACK_BYTES)
  const header = frames <= MESSAGE_BYTES ? stack.slice(0, frames) : `${stack.slice(0, MESSAGE_BYTES)}…[truncated, ${frames} chars]`
  const redacted = redactText(header, secrets, header.length)
  return redacted === header && frames <= MESSAGE_BYTES ? stack : redacted + stack.slice(frames)
}

function fitChain (text: string, chain: Chain, part: 'message' | 'stack', budget: Budget): string {
  const before = budget.bytes
  const kept = fit(text, chain[part], budget)
  chain[part] -= Math.min(before - budget.bytes, chain[part])
  return kept
}

// pino and ECS name an error after `err.constructor.name`: a copy is made by a constructor that
// carries the type of the thrown value (a few names are seen again and again: they are kept)
const classes = new Map<string, new () => Error>()

function loggedErrorClass (type: string): new () => Error {
  let named = classes.get(type)
  if (named === undefined) {
    const constructor = function () {} as unknown as new () => Error
    Object.defineProperty(constructor, 'name', { value: type })
    constructor.prototype = Object.create(LoggedError, {
      constructor: { value: constructor, writable: true, configurable: true },
      name: { value: type, writable: true, configurable: true }
    })
    named = constructor
    if (classes.size < 100) classes.set(type, named)
  }
  return named
}
