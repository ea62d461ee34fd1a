// Contract §6, stack de-duplication: a fingerprint's lines carry the stack `max` times per window,
// then leave it out until the window ends. Memory stays bounded whatever the messages: at most
// `capacity` fingerprints are tracked, the one whose window started first is dropped to make room.

export const STACK_BUDGET_CAPACITY = 1000

interface Window { start: number, used: number }

export class StackBudget {
  readonly #max: number
  readonly #windowMs: number
  readonly #capacity: number
  readonly #windows = new Map<string, Window>()

  constructor (max: number, windowMs: number, capacity = STACK_BUDGET_CAPACITY) {
    this.#max = max
    this.#windowMs = windowMs
    this.#capacity = capacity
  }

  /** Whether a line for `fingerprint` may carry its stack now; counts it when it may. */
  take (fingerprint: string, now = Date.now()): boolean {
    let window = this.#windows.get(fingerprint)
    if (window === undefined || now - window.start >= this.#windowMs) {
      // delete then set: the map's order stays the order in which windows started
      this.#windows.delete(fingerprint)
      if (this.#windows.size >= this.#capacity) {
        this.#windows.delete(this.#windows.keys().next().value as string)
      }
      window = { start: now, used: 0 }
      this.#windows.set(fingerprint, window)
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
