import { types } from 'node:util'
import { describe, readProperty, tagOf, truncate, typeOf } from './bound'
import { FST_RECOVERY_NON_ERROR } from './errors'

// Contract §5: whatever was thrown becomes an Error, and normalising never throws or hangs.
// A readable Error is kept as it is (handlers can still test `instanceof`); its stack is never
// read here, because reading `stack` makes V8 format it.

export interface Normalized {
  /** The thrown value itself when it is a readable Error, else an FST_RECOVERY_NON_ERROR describing it. */
  error: Error
  /** The error's type (constructor name), or the thrown value's `typeof` for non-Errors. */
  type: string
  /** The error's message, or the value's description; may be long (bounded where it is logged). */
  message: string
}

export function normalize (value: unknown): Normalized {
  // the common case first, without a call into C++: an Error of this realm with a string message
  try {
    if (value instanceof Error) {
      const { message } = value
      if (typeof message === 'string') return { error: value, type: errorTypeOf(value), message }
    }
  } catch {
    // a Proxy or a getter that throws: the careful path below
  }
  if (types.isPromise(value)) {
    // a thrown rejected promise would also crash the process as an unhandled rejection:
    // the panic is what gets reported, so its own rejection is marked handled
    Promise.prototype.then.call(value, undefined, ignore)
  }
  if (isError(value)) {
    const message = messageOf(value)
    if (message !== undefined) return { error: value, type: errorTypeOf(value), message }
  }
  const description = describe(value)
  const error = new FST_RECOVERY_NON_ERROR(description) as Error & { valueType?: string }
  error.valueType = typeOf(value)
  return { error, type: error.valueType, message: description }
}

/** `value` is an Error, of this realm or another. Never throws. */
export function isError (value: unknown): value is Error {
  if (types.isNativeError(value)) return true
  try {
    return value instanceof Error
  } catch {
    return false // a Proxy whose getPrototypeOf trap throws
  }
}

/** pino's `type`: the constructor's name, else `name`, else `Error`. Never throws. */
export function errorTypeOf (error: Error): string {
  const tag = tagOf(error)
  if (tag !== 'Object') return tag
  const name = readProperty(error, 'name')
  return typeof name === 'string' && name !== '' ? truncate(name, 128) : 'Error'
}

/** The message as a string, or `undefined` when it cannot be read. */
export function messageOf (error: Error): string | undefined {
  try {
    const message: unknown = error.message
    return typeof message === 'string' ? message : String(message)
  } catch {
    return undefined
  }
}

function ignore (): void {}
