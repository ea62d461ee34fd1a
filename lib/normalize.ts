import { types } from 'node:util'
import { describe, type CopyRules } from './bounded-copy'
import { FST_RECOVERY_NON_ERROR } from './errors'
import { markHandled } from './foreign-promise'
import { errorMessageOf, errorTypeOf, isError, typeOf } from './safe-read'

// Contract §5: whatever was thrown becomes an Error, and normalising never throws, hangs or runs
// code of the value. A readable Error is kept as it is (handlers can still test `instanceof`); its
// message is read once, here, and its stack not at all (reading `stack` makes V8 format it).

export interface Normalized {
  /** The thrown value itself when it is an Error (not a Proxy), else an FST_RECOVERY_NON_ERROR describing it. */
  error: Error
  /** The error's type (constructor name), or the thrown value's `typeof` for non-Errors. */
  type: string
  /** The error's message, or the value's description; may be long (bounded where it is logged). */
  message: string
}

export function normalize (value: unknown, rules: CopyRules): Normalized {
  if (isError(value)) return { error: value, type: errorTypeOf(value), message: errorMessageOf(value) }
  // its own rejection would crash the process: the panic is what gets reported
  if (types.isPromise(value)) markHandled(value)
  const description = describe(value, rules)
  const error = new FST_RECOVERY_NON_ERROR(description) as Error & { valueType?: string }
  error.valueType = typeOf(value)
  return { error, type: error.valueType, message: description }
}
