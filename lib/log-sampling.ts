import { Generations } from './generations'
import type { LineSampler, SampledPanic } from './record'

// Contract §15, log-storm sampling (opt-in): per fingerprint and window, the first `first` panics are
// logged as usual; after them, one line per `every` panics, carrying `panic.sampled.skipped` — the
// panics of that fingerprint not logged since its previous line. Nothing is lost: for each
// fingerprint, the lines plus the `skipped` they carry equal the panics; what a window leaves over is
// carried by the fingerprint's next line. Memory stays bounded whatever the messages: at most
// `capacity` fingerprints are tracked; to make room, the windows that started longest ago are dropped
// (lib/generations.ts, in constant time), and what they still carried is left in `leftOvers`, for the
// recorder to write as `panics sampled` lines (as it does for every fingerprint when the instance closes).

export const SAMPLING_CAPACITY = 10_000

export interface SamplingSettings { first: number, every: number, windowMs: number }

interface Window { start: number, seen: number, skipped: number, panic: SampledPanic }

export class LogSampler implements LineSampler {
  readonly #first: number
  readonly #every: number
  readonly #windowMs: number
  readonly #windows: Generations<Window>
  /** What dropped fingerprints still carried: the recorder writes and empties it. */
  readonly leftOvers: Array<{ panic: SampledPanic, skipped: number }> = []

  constructor ({ first, every, windowMs }: SamplingSettings, capacity = SAMPLING_CAPACITY) {
    this.#first = first
    this.#every = every
    this.#windowMs = windowMs
    this.#windows = new Generations(capacity, (_fingerprint, window) => this.#leaveOver(window))
  }

  /**
   * Whether this panic of `panic.fingerprint` gets its line: `undefined` when it is skipped (counted
   * for the next line); `null` for a line as usual; else the line carries `sampled: { skipped }` (a
   * line past the first ones of its window, or one that carries what the last window left over).
   */
  take (panic: SampledPanic, now = Date.now()): number | null | undefined {
    let window = this.#windows.get(panic.fingerprint)
    if (window === undefined) {
      // the panic's own fields, not the panic: nothing of the thrown value is kept
      window = { start: now, seen: 0, skipped: 0, panic: { source: panic.source, method: panic.method, route: panic.route, fingerprint: panic.fingerprint } }
      this.#windows.add(panic.fingerprint, window)
    } else if (now - window.start >= this.#windowMs) {
      // a new window, kept young; what the last one skipped is carried over
      window.start = now
      window.seen = 0
      this.#windows.renew(panic.fingerprint, window)
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
    for (const [, window] of this.#windows.entries()) this.#leaveOver(window)
    this.#windows.clear()
  }

  /** How many fingerprints are tracked (for tests). */
  get size (): number {
    return this.#windows.size
  }

  #leaveOver (window: Window): void {
    if (window.skipped > 0) this.leftOvers.push({ panic: window.panic, skipped: window.skipped })
  }
}
