import { types } from 'node:util'

// What becomes of a Promise's own rejection when the plugin is handed one (thrown, or a custom
// handler's answer). The panic is what gets reported; left alone,
// the promise's rejection would also crash the process as an unhandled rejection, so it is marked
// handled. `then` (and every other way to add a handler) looks up the promise's `constructor` and
// its species, which a hostile promise makes throw: while `then` runs, the promise's own
// `constructor` is the real Promise. When even that cannot be done (a non-configurable accessor,
// a frozen promise), the rejection is swallowed when Node reports it, by a listener that lives
// until then and leaves every other rejection to Node's default (or to the other listeners).

const unmarked = new WeakSet<object>()
let listening = false

export function markHandled (promise: Promise<unknown>): void {
  if (!whenSettled(promise, undefined, ignore)) swallowRejectionOf(promise)
}

/**
 * Adds handlers to a native promise as `then` would, even when its `constructor` or species is
 * hostile; `false` when it cannot be done (the promise is then left to `markHandled`).
 */
export function whenSettled (promise: Promise<unknown>, onFulfilled: ((value: unknown) => void) | undefined, onRejected: (reason: unknown) => void): boolean {
  const own = Reflect.getOwnPropertyDescriptor(promise, 'constructor')
  const shadowed = Reflect.defineProperty(promise, 'constructor', { value: Promise, configurable: true })
  let added = true
  try {
    Promise.prototype.then.call(promise, onFulfilled, onRejected)
  } catch {
    added = false
  }
  if (shadowed) {
    if (own === undefined) Reflect.deleteProperty(promise, 'constructor')
    else Reflect.defineProperty(promise, 'constructor', own)
  }
  return added
}

/** A rejection this module swallows: the process net must not record it again. */
export function isSwallowed (promise: unknown): boolean {
  return typeof promise === 'object' && promise !== null && unmarked.has(promise)
}

function swallowRejectionOf (promise: Promise<unknown>): void {
  unmarked.add(promise)
  if (listening) return
  listening = true
  process.on('unhandledRejection', onUnhandledRejection)
  // Node reports the rejections of a turn once its microtasks ran: by the next turn, this one was
  setImmediate(stopListening)
}

function onUnhandledRejection (reason: unknown, promise: Promise<unknown>): void {
  if (unmarked.has(promise)) {
    unmarked.delete(promise)
    return
  }
  // alone, this listener would keep Node from crashing on a rejection nobody handles: it crashes as Node would
  if (process.listenerCount('unhandledRejection') === 1) {
    process.nextTick(() => { throw types.isNativeError(reason) ? reason : new Error(`Unhandled rejection: ${String(reason)}`) })
  }
}

function stopListening (): void {
  process.removeListener('unhandledRejection', onUnhandledRejection)
  listening = false
}

function ignore (): void {}
