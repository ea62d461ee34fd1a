import { types } from 'node:util'
import { budgetOf, fit, hasSeen, JsonSizes, listKeys, mayList, see, spend, truncate, type Budget } from './budget'
import { FST_RECOVERY_NON_ERROR } from './errors'
import { markHandled } from './foreign-promise'
import { LoggedErrors } from './logged-error'
import { bigintText, causeChainOf, constructorNameOf, dataOf, errorMessageOf, errorTypeOf, GETTER, inherits, isArray, isError, stackOf, typeOf } from './safe-read'
import { REDACTED, type Secrets } from './secrets'
import { kindOf, tagOf } from './tags'

// What a thrown value becomes when it is written (contract §5, §6): one copier, built once from the
// options (the credential names, `redact` included), makes every copy — the line's `err`, the
// description of a non-Error, the `context` fields. A copy is plain and JSON-safe, never the value:
// it runs no code of the value (accessors are `[Getter]`, a Proxy is `[Proxy]`), visits each object
// once, counts every key and leaf against one budget, tags objects that carry a request, and redacts
// credentials (lib/secrets.ts).

/** Contract §5: a thrown non-Error is described in at most 1 KiB. */
export const DESCRIPTION_BYTES = 1024
/** The line's `err.message`, the messages of the `cause` chain included (pino folds them in). */
export const MESSAGE_BYTES = 4 * 1024
/** The line's `err.stack`, the stacks of the `cause` chain included. */
export const STACK_BYTES = 16 * 1024

// a string inside a structure
const STRING_BYTES = 1024
const KEY_BYTES = 128
const MAX_DEPTH = 5
const MAX_ENTRIES = 20
const MAX_AGGREGATED = 10
// pino folds a chain as "outer: inner" and "stack\ncaused by: stack"
const MESSAGE_SEPARATOR = 2
const STACK_SEPARATOR = 12
// what a serializer writes for an error besides its strings: `{"type":,"message":,"stack":}`
const ERROR_FIELDS = 32
// V8 starts a stack with "Name: message"; the frames follow this marker
const FRAMES = '\n    at '

/** A thrown value as an Error (contract §5). */
export interface Normalized {
  /** The thrown value itself when it is an Error (not a Proxy), else an FST_RECOVERY_NON_ERROR describing it. */
  error: Error
  /** The error's type (constructor name), or the thrown value's `typeof` for non-Errors. */
  type: string
  /** The error's message, or the value's description; may be long (bounded where it is written). */
  message: string
}

/** What is left for the messages and stacks of one `cause` chain. */
interface Chain { message: number, stack: number }

// the thrown error's own properties that the line's copy writes in its own way
const REWRITTEN = new Set(['message', 'stack', 'constructor'])
const REWRITTEN_WITH_CAUSE = new Set([...REWRITTEN, 'cause'])

export class Copier {
  /** The credential names (the `redact` option's included), and how to find credentials in text. */
  readonly secrets: Secrets
  readonly #sizes = new JsonSizes()
  readonly #loggedErrors = new LoggedErrors()

  constructor (secrets: Secrets) {
    this.secrets = secrets
  }

  /** A budget of `bytes` for a copy (`root`: the value it starts from). */
  budget (bytes: number, root?: object): Budget {
    return budgetOf(bytes, this.#sizes, root)
  }

  /** A JSON-safe copy of `value` in at most `bytes`. Never throws, never runs code of the value. */
  copyWithin (value: unknown, bytes: number): unknown {
    return this.copy(value, this.budget(bytes))
  }

  /**
   * Whatever was thrown, as an Error; never throws, hangs or runs code of the value. A readable Error is
   * kept as it is (handlers can still test `instanceof`); its message is read once, here, and its stack
   * not at all (reading `stack` makes V8 format it).
   */
  normalize (value: unknown): Normalized {
    if (isError(value)) return { error: value, type: errorTypeOf(value), message: errorMessageOf(value) }
    // its own rejection would crash the process: the panic is what gets reported
    if (types.isPromise(value)) markHandled(value)
    const description = this.describe(value)
    const error = new FST_RECOVERY_NON_ERROR(description) as Error & { valueType?: string }
    error.valueType = typeOf(value)
    // @fastify/error's own `name` ("FastifyError") would sit on the line beside `type`: the value's type says it
    Object.defineProperty(error, 'name', { enumerable: false })
    return { error, type: error.valueType, message: description }
  }

  /** A one-line description of any value, at most `DESCRIPTION_BYTES`, secrets redacted. Never throws. */
  describe (value: unknown): string {
    try {
      const copy = this.copy(value, this.budget(DESCRIPTION_BYTES))
      let text: string
      if (typeof value === 'string') text = JSON.stringify(copy)
      else if (copy !== null && typeof copy === 'object') text = `${constructorNameOf(value as object) ?? 'Object'} ${JSON.stringify(copy)}`
      else text = String(copy)
      return truncate(text, DESCRIPTION_BYTES)
    } catch {
      return '[undescribable value]' // a hostile environment: JSON.stringify itself patched to throw
    }
  }

  /**
   * The Error a line carries for a normalised throwable, within `bytes` of JSON: an Error, so that the
   * logger's own `err` serializer decides its shape (lib/logged-error.ts). `withStack: false` leaves
   * every stack out, and never reads one.
   */
  lineError (normalized: Normalized, withStack: boolean, bytes: number): Error {
    const { error, type } = normalized
    const budget = this.budget(bytes, error)
    budget.errors = { withStack }
    // a non-Error's description is the message of the error that describes it, read from there
    const message = inherits(error, FST_RECOVERY_NON_ERROR.prototype) ? undefined : normalized.message
    return this.#lineError(error, budget, 0, type, message)
  }

  /** A JSON-safe copy of `value` within `budget`. Never throws, never runs code of the value. */
  copy (value: unknown, budget: Budget, depth = 0): unknown {
    switch (typeof value) {
      case 'string':
        return this.#text(value, STRING_BYTES, budget)
      case 'number':
        return spend(budget, Number.isFinite(value) ? value : String(value))
      case 'boolean':
        return spend(budget, value)
      case 'undefined':
        return spend(budget, undefined)
      case 'bigint':
        return fit(bigintText(value, 'n'), STRING_BYTES, budget)
      case 'symbol':
        return this.#text(`Symbol(${truncate(value.description ?? '', STRING_BYTES)})`, STRING_BYTES, budget)
      case 'function':
        return fit(`[Function ${functionNameOf(value)}]`, STRING_BYTES, budget)
    }
    if (value === null) return spend(budget, null)
    return this.#copyObject(value as object, budget, depth)
  }

  /** `text` with its credentials redacted (looked for before the cut), cut to `maxBytes` and the budget. */
  #text (text: string, maxBytes: number, budget: Budget): string {
    return fit(this.secrets.redact(text, maxBytes), maxBytes, budget)
  }

  #copyObject (object: object, budget: Budget, depth: number): unknown {
    if (types.isProxy(object)) return fit('[Proxy]', STRING_BYTES, budget)
    if (hasSeen(budget, object)) return fit(object === budget.root || budget.open?.has(object) === true ? '[Circular]' : '[Repeated]', STRING_BYTES, budget)
    const tag = tagOf(object) ?? kindOf(object)
    if (tag !== undefined) return fit(tag, STRING_BYTES, budget)
    if (depth >= MAX_DEPTH) return fit(`[${constructorNameOf(object) ?? 'Object'}]`, STRING_BYTES, budget)
    if (budget.bytes <= 0 || !mayList(budget)) return fit('[…]', STRING_BYTES, budget)
    see(budget, object)
    const open = budget.open ??= new Set()
    open.add(object)
    try {
      if (isError(object)) {
        if (budget.errors !== undefined) return this.#lineError(object, budget, depth)
        return { type: fit(errorTypeOf(object), STRING_BYTES, budget), message: this.#text(errorMessageOf(object), STRING_BYTES, budget) }
      }
      return Array.isArray(object) ? this.#copyArray(object, budget, depth) : this.#copyProperties(object, budget, depth, Object.create(null))
    } finally {
      open.delete(object)
    }
  }

  #copyArray (array: unknown[], budget: Budget, depth: number): unknown[] {
    const length = array.length // an own data property of every array
    const out: unknown[] = []
    budget.bytes -= 2
    // lists of names and values (`rawHeaders`, `[...headers]`, `spawnargs`): the string after a
    // credential's name is its value
    let afterSecretName = false
    for (let i = 0; i < length && i < MAX_ENTRIES; i++) {
      if (budget.bytes <= 0) {
        out.push(fit(`…[${length - i} more items]`, STRING_BYTES, budget))
        return out
      }
      const descriptor = Reflect.getOwnPropertyDescriptor(array, i)
      const item: unknown = descriptor === undefined ? null : 'value' in descriptor ? descriptor.value : GETTER
      if (item === GETTER) out.push(fit('[Getter]', STRING_BYTES, budget))
      else if (afterSecretName && typeof item === 'string') out.push(fit(REDACTED, STRING_BYTES, budget))
      else out.push(this.copy(item, budget, depth + 1))
      afterSecretName = typeof item === 'string' && this.secrets.isSecretName(item)
    }
    if (length > MAX_ENTRIES) out.push(fit(`…[${length - MAX_ENTRIES} more items]`, STRING_BYTES, budget))
    return out
  }

  /** The own enumerable properties of `object` into `out`, but those in `skip`. */
  #copyProperties<T extends object> (object: object, budget: Budget, depth: number, out: T, skip?: ReadonlySet<string>): T {
    const into = out as Record<string, unknown>
    // listing keys is the one cost a copy cannot bound (V8 lists them all first): past the time for
    // it, no more, causes and aggregated errors included (#copyObject asks first for any other object)
    if (!mayList(budget)) {
      into['…'] = fit('keys not listed: the time for this line is spent', STRING_BYTES, budget)
      return out
    }
    // never a Proxy here: #copyObject and #lineError look for one first
    const keys = listKeys(budget, object)
    budget.bytes -= 2
    let copied = 0
    for (const key of keys) {
      if (skip?.has(key)) continue
      if (copied === MAX_ENTRIES || budget.bytes <= 0) {
        into['…'] = fit(`${keys.length - copied} more keys left out`, STRING_BYTES, budget)
        break
      }
      copied++
      const name = fit(key, KEY_BYTES, budget)
      budget.bytes -= 2
      let copy: unknown
      if (this.secrets.isSecretKey(key)) {
        copy = fit(REDACTED, STRING_BYTES, budget)
      } else {
        const value = dataOf(object, key)
        copy = value === GETTER ? fit('[Getter]', STRING_BYTES, budget) : this.copy(value, budget, depth + 1)
      }
      // `out` may be an Error copy: a key its prototypes hold (`__proto__`, `toJSON`, `name`) is defined over them
      if (name in into) Object.defineProperty(into, name, { value: copy, enumerable: true, writable: true, configurable: true })
      else into[name] = copy
    }
    return out
  }

  // The line's copy of an error: message and stack (each within the chain's budget), the `cause`
  // chain (pino folds it into message and stack), an AggregateError's `errors`, then the error's
  // own enumerable properties. Like a native Error, the copy's `cause` and `errors` are not enumerable.
  #lineError (error: Error, budget: Budget, depth: number, type = errorTypeOf(error), message?: string): Error {
    const chain: Chain = { message: MESSAGE_BYTES - 8 * MESSAGE_SEPARATOR, stack: STACK_BYTES - 8 * STACK_SEPARATOR }
    // the chain's errors not met elsewhere in the value
    const links: Error[] = []
    for (const link of causeChainOf(error)) {
      if (link !== error && hasSeen(budget, link)) break
      if (link !== error) see(budget, link)
      links.push(link)
    }
    const copies = links.map((link, i) => this.#errorText(link, budget, chain, i === 0 ? type : errorTypeOf(link), i === 0 ? message : undefined))
    for (let i = 0; i < links.length; i++) {
      const copy = copies[i]
      if (i + 1 < copies.length) Object.defineProperty(copy, 'cause', { value: copies[i + 1], enumerable: false, writable: true, configurable: true })
      this.#aggregated(links[i], copy, budget, depth)
      this.#copyProperties(links[i], budget, depth, copy, i + 1 < copies.length ? REWRITTEN_WITH_CAUSE : REWRITTEN)
    }
    return copies[0]
  }

  #errorText (error: Error, budget: Budget, chain: Chain, type: string, message?: string): Error {
    budget.bytes -= ERROR_FIELDS + type.length
    // plain assignments on an object of a class made for its type: a serializer reads a copy fast
    const copy = this.#loggedErrors.make(type)
    copy.message = fitChain(this.secrets.redact(message ?? errorMessageOf(error), MESSAGE_BYTES), chain, 'message', budget)
    if (budget.errors?.withStack === true) {
      const stack = this.#stackText(error)
      if (stack !== undefined) copy.stack = fitChain(stack, chain, 'stack', budget)
    }
    return copy
  }

  // AggregateError: pino lists these as `aggregateErrors`; not enumerable, or it would list them twice
  #aggregated (error: Error, copy: Error, budget: Budget, depth: number): void {
    const errors = dataOf(error, 'errors')
    if (!isArray(errors)) return
    const items: Error[] = []
    for (let i = 0; i < errors.length && i < MAX_AGGREGATED && budget.bytes > 0; i++) {
      const data = dataOf(errors, i)
      // an error met before (the aggregate itself, a repeated one) is a marker, as in any copy
      const item = data === GETTER ? '[Getter]' : data !== null && typeof data === 'object' && hasSeen(budget, data) ? '[Repeated]' : data
      if (isError(item)) {
        see(budget, item)
        items.push(this.#lineError(item, budget, depth + 1))
      } else {
        items.push(this.#lineError(this.normalize(item).error, budget, depth + 1, typeOf(item)))
      }
    }
    Object.defineProperty(copy, 'errors', { value: items, enumerable: false, writable: true, configurable: true })
  }

  // The whole stack is redacted, not its first header only: a message may embed other errors'
  // stacks (`'all retries failed:\n' + a.stack + '\n' + b.stack`), each with a header of its own.
  // A huge message makes a huge first line: its head is kept, and every frame.
  #stackText (error: Error): string | undefined {
    const stack = stackOf(error)
    if (stack === GETTER) return '[Getter]'
    if (typeof stack !== 'string' || stack === '') return undefined
    const frames = stack.indexOf(FRAMES)
    if (frames === -1 || frames <= MESSAGE_BYTES) return this.secrets.redact(stack, STACK_BYTES)
    const header = this.secrets.redact(stack.slice(0, frames), MESSAGE_BYTES)
    return `${truncate(header, MESSAGE_BYTES)}…[truncated, ${frames} chars]${this.secrets.redact(stack.slice(frames), STACK_BYTES)}`
  }
}

function fitChain (text: string, chain: Chain, part: 'message' | 'stack', budget: Budget): string {
  const before = budget.bytes
  const kept = fit(text, chain[part], budget)
  chain[part] -= Math.min(before - budget.bytes, chain[part])
  return kept
}

function functionNameOf (fn: object): string {
  const name = dataOf(fn, 'name')
  return typeof name === 'string' && name !== '' ? truncate(name, 128) : '(anonymous)'
}
