import { Generations } from './generations'

// Contract §6, stack de-duplication: a fingerprint's lines carry the stack `max` times per window,
// then leave it out until the window ends. Memory stays bounded whatever the messages: at most
// `capacity` fingerprints are tracked, the windows that started longest ago are forgotten first
// (lib/generations.ts), in constant time.

export const STACK_BUDGET_CAPACITY = 1000

interface Window { start: number, used: number }

export class StackBudget {
  readonly #max: number
  readonly #windowMs: number
  readonly #windows: Generations<Window>

  constructor (max: number, windowMs: number, capacity = STACK_BUDGET_CAPACITY) {
    this.#max = max
    this.#windowMs = windowMs
    this.#windows = new Generations(capacity)
  }

  /** Whether a line for `fingerprint` may carry its stack now; counts it when it may. */
  take (fingerprint: string, now = Date.now()): boolean {
    let window = this.#windows.get(fingerprint)
    if (window === undefined) {
      window = { start: now, used: 0 }
      this.#windows.add(fingerprint, window)
    } else if (now - window.start >= this.#windowMs) {
      window.start = now
      window.used = 0
      this.#windows.renew(fingerprint, window)
    }
    if (window.used >= this.#max) return false
    window.used++
    return true
  }

  /** How many fingerprints are tracked (for tests and the memory benchmark). */
  get size (): number {
    return this.#windows.size
  }
}
