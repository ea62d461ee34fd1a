import { types } from 'node:util'
import { FST_RECOVERY_UNAWAITABLE } from './errors'

// What becomes of a promise the plugin is handed and did not make: a thrown one, a custom handler's
// answer, a background task's result, a context function's answer. Adding a handler to it (`then`,
// `await`, `Promise.resolve`) looks up its `constructor` and its species, which a hostile promise makes
// throw; while `then` runs here, its own `constructor` is the real Promise. A thrown promise is not
// awaited, but its rejection is marked handled: left alone, it would crash the process as an unhandled
// rejection on top of the panic. When not even a handler can be added (a non-configurable accessor, a
// frozen promise), its rejection is ignored when Node reports it, by a listener of this module's.

export function markHandled (promise: Promise<unknown>): void {
  if (!whenSettled(promise, undefined, ignore)) ignoreRejectionOf(promise)
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

function ignore (): void {}

// Rejections the plugin ignores: those of a promise that was thrown (its panic was recorded then)
// and that no handler could be added to. The listener lives until Node has reported them (by the
// next turn), and leaves every other rejection to Node's default or to the other listeners (the
// process net's skips these: `isIgnored`).
const ignored = new WeakSet<object>()
let ignoring = false

function ignoreRejectionOf (promise: Promise<unknown>): void {
  ignored.add(promise)
  if (ignoring) return
  ignoring = true
  process.on('unhandledRejection', onIgnoredRejection)
  // Node reports the rejections of a turn once its microtasks ran: by the next turn, this one was
  setImmediate(stopIgnoring)
}

/** A rejection ignored: the process net must not record it again. */
export function isIgnored (promise: unknown): boolean {
  return typeof promise === 'object' && promise !== null && ignored.has(promise)
}

function onIgnoredRejection (reason: unknown, promise: Promise<unknown>): void {
  // entries go with their promises (a WeakSet): every listener can still tell
  if (ignored.has(promise)) return
  // alone, this listener would keep Node from crashing on a rejection nobody handles: it crashes as Node would
  if (process.listenerCount('unhandledRejection') === 1) {
    process.nextTick(() => { throw types.isNativeError(reason) ? reason : new Error(`Unhandled rejection: ${String(reason)}`) })
  }
}

function stopIgnoring (): void {
  process.removeListener('unhandledRejection', onIgnoredRejection)
  ignoring = false
}
