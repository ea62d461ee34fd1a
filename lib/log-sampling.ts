import type { PanicInfo } from '../types/index'

// Contract §15, log-storm sampling (opt-in): per fingerprint and window, the first `first` panics are
// logged as usual; after them, one line per `every` panics, carrying `panic.sampled.skipped` — the
// panics of that fingerprint not logged since its previous line. Nothing is lost: for each
// fingerprint, the lines plus the `skipped` they carry equal the panics; what a window leaves over is
// carried by the fingerprint's next line. Memory stays bounded whatever the messages: at most
// `capacity` fingerprints are tracked; to make room, the one whose window started first is dropped,
// and what it still carried is left in `leftOvers`, for the recorder to write as a `panics sampled`
// line (as it does for every fingerprint when the instance closes).

export const SAMPLING_CAPACITY = 10_000

export interface SamplingSettings { first: number, every: number, windowMs: number }

/** What a fingerprint's panics share (a fingerprint is made of them): what a line for what is left over carries. */
export type SampledPanic = Pick<PanicInfo, 'source' | 'method' | 'route' | 'fingerprint'>

interface Window { start: number, seen: number, skipped: number, panic: SampledPanic }

export class LogSampler {
  readonly #first: number
  readonly #every: number
  readonly #windowMs: number
  readonly #capacity: number
  readonly #windows = new Map<string, Window>()
  /** What dropped fingerprints still carried: the recorder writes and empties it. */
  readonly leftOvers: Array<{ panic: SampledPanic, skipped: number }> = []

  constructor ({ first, every, windowMs }: SamplingSettings, capacity = SAMPLING_CAPACITY) {
    this.#first = first
    this.#every = every
    this.#windowMs = windowMs
    this.#capacity = capacity
  }

  /**
   * Whether this panic of `panic.fingerprint` gets its line: `undefined` when it is skipped (counted
   * for the next line); `null` for a line as usual; else the line carries `sampled: { skipped }` (a
   * line past the first ones of its window, or one that carries what the last window left over).
   */
  take (panic: SampledPanic, now = Date.now()): number | null | undefined {
    let window = this.#windows.get(panic.fingerprint)
    if (window === undefined) {
      if (this.#windows.size >= this.#capacity) this.#drop(this.#windows.keys().next().value as string)
      // the panic's own fields, not the panic: nothing of the thrown value is kept
      window = { start: now, seen: 0, skipped: 0, panic: { source: panic.source, method: panic.method, route: panic.route, fingerprint: panic.fingerprint } }
      this.#windows.set(panic.fingerprint, window)
    } else if (now - window.start >= this.#windowMs) {
      // a new window, at the end of the map's order (the order windows started in); what the last one
      // skipped is carried over
      window.start = now
      window.seen = 0
      this.#windows.delete(panic.fingerprint)
      this.#windows.set(panic.fingerprint, window)
    }
    window.seen++
    if (window.seen > this.#first && (window.seen - this.#first) % this.#every !== 0) {
      window.skipped++
      return undefined
    }
    const skipped = window.skipped
    window.skipped = 0
    return window.seen > this.#first || skipped > 0 ? skipped : null
  }

  /** Leaves what every tracked fingerprint still carries in `leftOvers` (the instance closes). */
  flush (): void {
    for (const fingerprint of [...this.#windows.keys()]) this.#drop(fingerprint)
  }

  /** How many fingerprints are tracked (for tests). */
  get size (): number {
    return this.#windows.size
  }

  #drop (fingerprint: string): void {
    const window = this.#windows.get(fingerprint) as Window
    this.#windows.delete(fingerprint)
    if (window.skipped > 0) this.leftOvers.push({ panic: window.panic, skipped: window.skipped })
  }
}
