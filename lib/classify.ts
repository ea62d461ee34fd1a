import { dataOf, isError } from './safe-read'

// Contract §2: a throwable is classified by the HTTP status it resolves to.
// - its own `statusCode` (or else `status`) in 400–499: a client error; in 501–599: a deliberate
//   service error;
// - an Error with no status of its own, after a 4xx was set on the reply (`reply.code(401)` before the
//   error reached the handler, as @fastify/auth does): a client error with that status, exactly as
//   Fastify sends it (its message included: a bug after `reply.code(400)` shows its message, as it
//   does without the plugin);
// - anything else (no status, 500, out of range, not a number, not an Error at all): a panic (500).
// `statusCode` and `status` are read as data (own or inherited); an accessor is never run, so a value
// whose status is a getter is a panic.

export const PANIC_STATUS = 500

/** The status a thrown value resolves to; `PANIC_STATUS` means it is a panic. Never throws. */
export function statusOf (value: unknown, reply?: { readonly statusCode: number }): number {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return PANIC_STATUS
  const statusCode = dataOf(value, 'statusCode')
  if (isErrorStatus(statusCode)) return statusCode
  const status = dataOf(value, 'status')
  if (isErrorStatus(status)) return status
  if (reply !== undefined && isError(value)) {
    const set = reply.statusCode
    if (isErrorStatus(set) && set < 500) return set
  }
  return PANIC_STATUS
}

function isErrorStatus (code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599
}
