import { types } from 'node:util'
import { FST_RECOVERY_UNAWAITABLE } from './errors'

// What becomes of a promise the plugin is handed and did not make: a thrown one, a custom handler's
// answer, a background task's result, a context function's answer. Adding a handler to it (`then`,
// `await`, `Promise.resolve`) looks up its `constructor` and its species, which a hostile promise makes
// throw; while `then` runs here, its own `constructor` is the real Promise. A thrown promise is not
// awaited, but its rejection is marked handled: left alone, it would crash the process as an unhandled
// rejection on top of the panic. When not even a handler can be added (a non-configurable accessor, a
// frozen promise), the rejection is swallowed when Node reports it, by a listener that lives until then
// and leaves every other rejection to Node's default (or to the other listeners).

const unmarked = new WeakSet<object>()
let listening = false

export function markHandled (promise: Promise<unknown>): void {
  if (!whenSettled(promise, undefined, ignore)) swallowRejectionOf(promise)
}

/**
 * Adds handlers to a native promise as `then` would, even when its `constructor` or species is
 * hostile; `false` when it cannot be done (the promise is then left to `markHandled`).
 */
function whenSettled (promise: Promise<unknown>, onFulfilled: ((value: unknown) => void) | undefined, onRejected: (reason: unknown) => void): boolean {
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

/**
 * What to await for `value`: for a native promise, one that settles as it does without looking up
 * its `constructor` or species (as `await` and `Promise.resolve` would), or that rejects with
 * FST_RECOVERY_UNAWAITABLE, its own rejection marked handled, when even that cannot be done; any
 * other value as it is.
 */
export function awaitable (value: unknown): unknown {
  if (!types.isPromise(value)) return value
  return new Promise((resolve, reject) => {
    if (whenSettled(value, resolve, reject)) return
    markHandled(value)
    reject(new FST_RECOVERY_UNAWAITABLE())
  })
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
