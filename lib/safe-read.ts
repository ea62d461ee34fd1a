import { types } from 'node:util'

// What can be learnt of a thrown value without running any of its code. A thrown value is hostile
// input: a getter, a Proxy trap or a toString may throw, hang, or hand back something else on every
// call. Property descriptors and prototypes of ordinary objects are read by the engine alone; a
// Proxy is never looked into (each of those reads would run one of its traps). Should an exotic
// host object still throw here, the plugin's last resort (lib/last-resort.ts) answers.
//
// One exception, named here where the rule lives: V8's own `stack` accessor (`stackOf`).

/** What `dataOf` answers for an accessor property: it is never invoked. */
export const GETTER: unique symbol = Symbol('fastify-recovery.getter')

// prototype chains are short; a longer one is not walked to its end
const MAX_CHAIN = 32
// a type name longer than this is cut (a class may be given any name)
const MAX_NAME = 128

/**
 * How a library's private `Symbol('…')` is found on its objects: the symbol with this description,
 * among the object's own symbols (`inherited`: or those of its prototypes, as a Fastify scope holds
 * its parent's state), looked for once, then kept and looked up (one symbol per copy of the
 * library: another copy's is found and kept in turn). The one way the plugin reads another
 * library's state: pino's bindings, @fastify/otel's request span, Fastify's chain of error handlers,
 * its LogController and a reply's `hijacked` flag.
 */
export function privateSymbol (description: string, { inherited = false } = {}): (object: object) => symbol | undefined {
  let known: symbol | undefined
  return (object) => {
    if (known !== undefined && (inherited ? known in object : hasOwn(object, known))) return known
    for (let current: object | null = object; current !== null; current = inherited ? Reflect.getPrototypeOf(current) : null) {
      for (const symbol of Object.getOwnPropertySymbols(current)) {
        if (symbol.description === description) {
          known = symbol
          return symbol
        }
      }
    }
    return undefined
  }
}

/**
 * What `object[key]` would give, read without running code: the value of a data property (own or
 * inherited), `GETTER` for an accessor, `undefined` when there is none or a Proxy stands in the way.
 */
export function dataOf (object: object, key: PropertyKey): unknown {
  let current: object | null = object
  for (let depth = 0; current !== null && depth < MAX_CHAIN; depth++) {
    // the prototypes every error passes through are ordinary objects of the engine's: never a Proxy
    if (current !== Error.prototype && current !== Object.prototype && types.isProxy(current)) return undefined
    // most keys looked up are absent: no descriptor is made for those
    if (hasOwn(current, key)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(current, key) as PropertyDescriptor
      return 'value' in descriptor ? descriptor.value : GETTER
    }
    current = Reflect.getPrototypeOf(current)
  }
  return undefined
}

const hasOwn = Object.hasOwn as (object: object, key: PropertyKey) => boolean

/** The own enumerable string keys (listing them runs no code of an ordinary object); `undefined` for a Proxy. */
export function ownKeysOf (object: object): string[] | undefined {
  return types.isProxy(object) ? undefined : Object.keys(object)
}

/** `value` is an Error (of this realm or another) that can be read: not a Proxy. Never runs its code. */
export function isError (value: unknown): value is Error {
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false
  return types.isNativeError(value) || inherits(value, Error.prototype)
}

/** An array, not a Proxy of one (`Array.isArray` looks through a Proxy, and throws on a revoked one). */
export function isArray (value: unknown): value is unknown[] {
  return !types.isProxy(value) && Array.isArray(value)
}

/** `prototype` is on the chain of `object`, found without running code. */
export function inherits (object: object, prototype: object): boolean {
  let current: object | null = object
  for (let depth = 0; current !== null && depth < MAX_CHAIN; depth++) {
    if (types.isProxy(current)) return false
    current = Reflect.getPrototypeOf(current)
    if (current === prototype) return true
  }
  return false
}

/** The name of the object's constructor (cut to 128 characters), when both are plain data. */
export function constructorNameOf (object: object): string | undefined {
  const constructor = dataOf(object, 'constructor')
  if (typeof constructor !== 'function') return undefined
  const name = dataOf(constructor, 'name')
  return typeof name === 'string' && name !== '' ? name.slice(0, MAX_NAME) : undefined
}

/** pino's `type` of an error: its constructor's name, else its `name`, else `Error`. */
export function errorTypeOf (error: object): string {
  const constructorName = constructorNameOf(error)
  if (constructorName !== undefined && constructorName !== 'Object') return constructorName.slice(0, MAX_NAME)
  const name = dataOf(error, 'name')
  return typeof name === 'string' && name !== '' ? name.slice(0, MAX_NAME) : 'Error'
}

/** An error's `message` as a string: `[Getter]` for an accessor, `''` when there is none. */
export function errorMessageOf (error: object): string {
  const message = dataOf(error, 'message')
  switch (typeof message) {
    case 'string':
      return message
    case 'undefined':
      return ''
    case 'symbol':
      return message === GETTER ? '[Getter]' : String(message)
    case 'object':
    case 'function':
      return message === null ? 'null' : `[${constructorNameOf(message) ?? 'Object'}]`
    case 'bigint':
      return bigintText(message)
    default:
      return String(message) // number, boolean: no code runs
  }
}

// 4096 bits: at most 1,234 decimal digits, formatted in microseconds. Decimal formatting grows
// faster than the number (a thrown `1n << 10000000n` took 1.1 s): a larger one is described by its
// size, read from its hexadecimal form, which V8 writes in linear time (3 ms for 10 million bits).
const DECIMAL_BITS = 4096

/** A BigInt as text in bounded time: its digits (and `suffix`) when it is small, else its sign, first hex digits and bit length. */
export function bigintText (value: bigint, suffix = ''): string {
  const magnitude = value < 0n ? -value : value
  if (BigInt.asUintN(DECIMAL_BITS, magnitude) === magnitude) return `${value}${suffix}`
  const hex = magnitude.toString(16)
  const bits = (hex.length - 1) * 4 + Number.parseInt(hex[0], 16).toString(2).length
  return `${value < 0n ? '-' : ''}0x${hex.slice(0, 16)}… [BigInt of ${bits} bits]`
}

/** How many `cause`s of an error are followed, wherever a chain is walked. */
export const MAX_CAUSES = 8

/** The error, then its `cause`, the cause's cause, ...: while each is a readable Error not met before, at most `MAX_CAUSES` causes. */
export function causeChainOf (error: Error): Error[] {
  const chain = [error]
  for (let current = error; chain.length <= MAX_CAUSES;) {
    const cause = dataOf(current, 'cause')
    if (!isError(cause) || chain.includes(cause)) break
    chain.push(cause)
    current = cause
  }
  return chain
}

/** `typeof`, with `null` told apart. */
export function typeOf (value: unknown): string {
  return value === null ? 'null' : typeof value
}

// Since V8 12 (Node 22) `stack` is an own accessor of every Error (a data property before). Its getter
// is the engine's code, not the value's: one function for every Error of a realm. It is read, as the
// data property was on Node 20; any other accessor named `stack` is the value's and is never run.
// Reading it is when V8 formats the stack: Error.prepareStackTrace (the application's, or
// source-map-support's) runs then, and so does an accessor `name` or `message` of the error, as it
// did on Node 20. Errors made by Node's own modules come from the main realm, whose getter differs
// from this module's under a vm context (Jest): both are known.
export const ENGINE_STACK_GETTERS: ReadonlySet<unknown> = (() => {
  const getters = new Set<unknown>()
  const add = (error: unknown): void => { getters.add(Reflect.getOwnPropertyDescriptor(error as object, 'stack')?.get) }
  add(new Error('own realm'))
  try {
    Buffer.alloc(-1) // RangeError [ERR_OUT_OF_RANGE], made by Node's internals
  } catch (error) {
    add(error)
  }
  getters.delete(undefined) // Node 20: a data property
  return getters
})()

/** What `stackOf` gives when formatting the stack threw (a `prepareStackTrace`, or the error's own `name`/`message`). */
export const UNFORMATTABLE_STACK = '[unformattable stack]'

/**
 * The error's `stack`, read once and only through the engine: a data property's value, what V8's own
 * accessor gives, `GETTER` for any other accessor, `undefined` when there is none or a Proxy stands in
 * the way. Never throws.
 */
export function stackOf (error: object): unknown {
  let current: object | null = error
  for (let depth = 0; current !== null && depth < MAX_CHAIN; depth++) {
    if (types.isProxy(current)) return undefined
    if (hasOwn(current, 'stack')) {
      try {
        // on Node 20, reading the descriptor is what formats the stack
        const descriptor = Reflect.getOwnPropertyDescriptor(current, 'stack') as PropertyDescriptor
        if ('value' in descriptor) return descriptor.value
        return ENGINE_STACK_GETTERS.has(descriptor.get) ? Reflect.apply(descriptor.get as () => unknown, error, []) : GETTER
      } catch {
        return UNFORMATTABLE_STACK
      }
    }
    current = Reflect.getPrototypeOf(current)
  }
  return undefined
}
