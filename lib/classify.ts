import { types } from 'node:util'
import { dataOf, inherits, isError } from './safe-read'

// Contract §2: a throwable is classified by the HTTP status it resolves to.
// - its own `statusCode` (or else `status`) in 400–499: a client error; in 501–599: a deliberate
//   service error. A `statusCode` (or `status`) that is present decides: one that is not an integer
//   in 400–599 (`"500"`, `404.5`, `-1`, `200`, a getter) makes a panic, whatever else is set;
// - an Error with no status of its own, after a 4xx was set on the reply before it reached the error
//   handler (`reply.code(401)`, as @fastify/auth does): a client error with that status, exactly as
//   Fastify sends it — unless it is one of the engine's own error types (a TypeError, a
//   ReferenceError, ...: a bug, not a decision);
// - anything else (no status, 500, not an Error at all): a panic (500).
// `statusCode` and `status` are read as data (own or inherited); an accessor is never run.

export const PANIC_STATUS = 500

/**
 * The status a thrown value resolves to; `PANIC_STATUS` means it is a panic. `setBefore`: the status
 * set on the reply before the value reached the error handler, `undefined` where no reply's status
 * speaks for the value (what an application's error handler fails with). Never throws.
 */
export function statusOf (value: unknown, setBefore?: number): number {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return PANIC_STATUS
  const statusCode = dataOf(value, 'statusCode')
  if (statusCode !== undefined) return isErrorStatus(statusCode) ? statusCode : PANIC_STATUS
  const status = dataOf(value, 'status')
  if (status !== undefined) return isErrorStatus(status) ? status : PANIC_STATUS
  if (setBefore !== undefined && isErrorStatus(setBefore) && setBefore < 500 && isError(value) && !isEngineError(value)) return setBefore
  return PANIC_STATUS
}

function isErrorStatus (code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599
}

const ENGINE_ERRORS: ReadonlySet<string> = new Set(['TypeError', 'ReferenceError', 'RangeError', 'SyntaxError', 'EvalError', 'URIError'])
const OWN_REALM: readonly object[] = [TypeError, ReferenceError, RangeError, SyntaxError, EvalError, URIError].map((type) => type.prototype)
const NATIVE = /\{\s*\[native code\]\s*\}$/

/**
 * One of the engine's own error types, of this realm or another (a `vm` context, Jest's): a prototype
 * on the error's chain whose constructor is the engine's function of that name. Runs no code of the value.
 */
export function isEngineError (error: Error): boolean {
  if (OWN_REALM.some((prototype) => inherits(error, prototype))) return true
  for (let current = Reflect.getPrototypeOf(error), depth = 0; current !== null && depth < 32; current = Reflect.getPrototypeOf(current), depth++) {
    if (types.isProxy(current)) return false
    const constructor = dataOf(current, 'constructor')
    if (typeof constructor !== 'function' || types.isProxy(constructor)) continue
    if (ENGINE_ERRORS.has(dataOf(constructor, 'name') as string) && NATIVE.test(Function.prototype.toString.call(constructor))) return true
  }
  return false
}
