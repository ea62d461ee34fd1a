import { performance } from 'node:perf_hooks'
import { LastTexts } from './last-texts'

// What one copy of a thrown value may still spend (contract §6): the JSON bytes it writes, the
// objects it has visited, and the time it may spend listing keys. One budget counts every key and
// leaf of a copy, nested errors, causes and aggregated errors included.

// V8 lists every key of an object before the first can be read (about 0.5 µs per key here): once
// this much time is spent listing, no further object is listed. Only the listing is timed: the rest
// of a copy is bounded by its bytes, and a copy that merely waited (a busy machine, a first panic
// compiling the redaction's patterns) lists an error's own few keys all the same.
const LISTING_MS = 20
const CLOSING_BYTES = 160

/**
 * The sets are made when the first object is met: most thrown errors have none.
 */
export interface Budget {
  bytes: number
  /** How texts are measured (the copier's own sizes of the long texts it measured last). */
  sizes: JsonSizes
  /** The value the copy started from (it is visited first). */
  root?: object
  /** Every other object visited so far, and those still being copied (a cycle leads back to one of these). */
  seen?: Set<object>
  open?: Set<object>
  /** The milliseconds spent listing keys so far. */
  listingMs?: number
  /** Errors met are copied as the line's errors (lib/copier.ts), with their stacks or not; else as `{ type, message }`. */
  errors?: { withStack: boolean }
}

export function budgetOf (bytes: number, sizes: JsonSizes, root?: object): Budget {
  // once spent, a copy still closes what it had opened: a short marker per level, and the leaf
  // that overran it; this is kept aside so the whole stays within `bytes`
  const closing = Math.min(CLOSING_BYTES, Math.floor(bytes / 8))
  return { bytes: bytes - closing, sizes, root }
}

/** Whether the copy has visited `object` already. */
export function hasSeen (budget: Budget, object: object): boolean {
  return object === budget.root || budget.seen?.has(object) === true
}

export function see (budget: Budget, object: object): void {
  (budget.seen ??= new Set()).add(object)
}

/** Whether another object's keys may still be listed: the time spent listing is within its bound. */
export function mayList (budget: Budget): boolean {
  return (budget.listingMs ?? 0) <= LISTING_MS
}

/** The own enumerable keys of `object` (never a Proxy), the time V8 took to list them spent. */
export function listKeys (budget: Budget, object: object): string[] {
  const started = performance.now()
  const keys = Object.keys(object)
  budget.listingMs = (budget.listingMs ?? 0) + (performance.now() - started)
  return keys
}

/** `text` cut to at most `maxBytes` UTF-8 bytes, marker included, never splitting a surrogate pair. */
export function truncate (text: string, maxBytes: number): string {
  if (text.length <= maxBytes && (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes)) {
    return text
  }
  const marker = `…[truncated, ${text.length} chars]`
  if (maxBytes < marker.length + 2) return maxBytes >= 3 ? '…' : ''
  const room = maxBytes - marker.length - 2 // the ellipsis is 3 bytes, 1 char
  let head = text.slice(0, room)
  let over = Buffer.byteLength(head) - room
  while (over > 0) {
    head = head.slice(0, head.length - Math.ceil(over / 3))
    over = Buffer.byteLength(head) - room
  }
  const last = head.charCodeAt(head.length - 1)
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1)
  return head + marker
}

// printable ASCII but `"` and `\`: JSON writes these characters as they are
const NEEDS_ESCAPE_OR_WIDE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/

/** The bytes JSON takes to write `text`, quotes included. */
export function jsonBytes (text: string): number {
  return NEEDS_ESCAPE_OR_WIDE.test(text) ? Buffer.byteLength(JSON.stringify(text)) : text.length + 2
}

// the long texts a copier measured last (stacks, mostly): a storm's stack comes back as the same
// text (the redaction hands back the string it made last time), found here before it is measured again
const MEASURED_FROM = 256
const MEASURED = 4

/** The JSON bytes of texts, remembering the last few long ones. One per copier. */
export class JsonSizes {
  readonly #last = new LastTexts<number>(MEASURED)

  of (text: string): number {
    if (text.length < MEASURED_FROM) return jsonBytes(text)
    let bytes = this.#last.get(text)
    if (bytes === undefined) {
      bytes = jsonBytes(text)
      this.#last.set(text, bytes)
    }
    return bytes
  }
}

/** `text` cut to `maxBytes` and to what the budget has left (in JSON bytes, with its separator), then spent. */
export function fit (text: string, maxBytes: number, budget: Budget): string {
  const room = Math.max(0, Math.min(maxBytes, budget.bytes - 3))
  let kept = truncate(text, room)
  let cost = budget.sizes.of(kept)
  // escapes take up to 6 bytes a character: cut again to what surely fits
  if (cost > room + 2) {
    kept = truncate(text, Math.floor(room / 6))
    cost = jsonBytes(kept)
  }
  budget.bytes -= cost + 1
  return kept
}

/** A leaf written as it is (a number, a boolean, null): its bytes spent. */
export function spend<T> (budget: Budget, leaf: T): T {
  budget.bytes -= leaf === undefined ? 0 : String(leaf).length + 1
  return leaf
}
