import { dataOf } from './safe-read'

// Contract §2: a throwable is classified by the HTTP status it carries.
// 400–499: client error; 501–599: deliberate service error; anything else is a panic (500).
// Only the throwable counts: a status set with reply.code() before the throw is ignored, so a bug
// after `reply.code(400)` can never leak its message in a 4xx body. `statusCode` and `status` are
// read as data (own or inherited); an accessor is never run, so a value whose status is a getter
// is a panic.

export const PANIC_STATUS = 500

/** The status a thrown value resolves to; `PANIC_STATUS` means it is a panic. Never throws. */
export function statusOf (value: unknown): number {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return PANIC_STATUS
  const statusCode = dataOf(value, 'statusCode')
  if (isErrorStatus(statusCode)) return statusCode
  const status = dataOf(value, 'status')
  return isErrorStatus(status) ? status : PANIC_STATUS
}

function isErrorStatus (code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599
}
