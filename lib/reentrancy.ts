import { AsyncLocalStorage } from 'node:async_hooks'

// Contract §10, re-entrancy: is this record started while another is being recorded? The code the
// plugin hands a panic to — the `context` function, the logger (its serializers and hooks), the
// custom handler, the diagnostics channel's subscribers — may record again (`app.recovery.report`,
// `run`, a throw the process net catches). Such a record writes its line and its count, and neither
// publishes nor calls `context`: nothing recurses, whatever the application does. Every way into
// the recorder asks this module, and only this one.
//
// A record's rank says how deep it is: 0, a failure of its own; 1, started while a record of rank 0
// was being made, or by code a subscriber started (its promise, its timer: Node raises a subscriber's
// throw again on the next tick, and the process net sees it there); 2 and more, deeper still — the
// logger recording while it writes a nested line — counted only, as writing its line is what recurses.

/** Marks what runs inside a subscriber of the panic channel, and everything it starts. */
const subscribers = new AsyncLocalStorage<true>()

// the rank of the record being made, -1 when none is
let inProgress = -1

/** The rank a record started now has. */
export function rankNow (): number {
  if (inProgress >= 0) return inProgress + 1
  return inSubscribers() ? 1 : 0
}

/** Runs a record's work (its context, line, count, handler) as the record of `rank`. */
export function recording<T> (rank: number, work: () => T): T {
  const outer = enterRecord(rank)
  try {
    return work()
  } finally {
    leaveRecord(outer)
  }
}

/** What runs from now on is the record of `rank`; returns the rank to go back to (`leaveRecord`), with no closure made. */
export function enterRecord (rank: number): number {
  const outer = inProgress
  inProgress = rank
  return outer
}

export function leaveRecord (outer: number): void {
  inProgress = outer
}

/** Runs `publish` so that whatever the subscribers do, now or later, is known to come from them. */
export function asSubscribers (publish: () => void): void {
  subscribers.run(true, publish)
}

/** Whether this runs in a subscriber of the panic channel, or in what one started. */
export function inSubscribers (): boolean {
  return subscribers.getStore() === true
}

/**
 * Runs `work` as no subscriber's: a reply a subscriber sends is the request's, and so is all that
 * follows from it (its hooks, the rest of the request, the code awaiting it).
 */
export function asTheRequest<T> (work: () => T): T {
  return subscribers.exit(work)
}
