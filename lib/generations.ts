// A map of at most `capacity` entries that forgets its oldest in constant time, whatever the keys:
// entries live in two generations; when the young one is full (half the capacity), the old one is
// forgotten whole and the young one becomes old. Deleting entries one by one from the front of a
// single Map would leave holes its iterator skips (an attacker choosing distinct keys would make
// each eviction cost more the more keys it had sent). An entry is kept young by `renew`.

export class Generations<V> {
  readonly #half: number
  readonly #onForget: ((key: string, value: V) => void) | undefined
  #young = new Map<string, V>()
  #old = new Map<string, V>()

  /** `onForget`: called for each entry forgotten to make room. */
  constructor (capacity: number, onForget?: (key: string, value: V) => void) {
    this.#half = Math.max(1, Math.floor(capacity / 2))
    this.#onForget = onForget
  }

  get (key: string): V | undefined {
    return this.#young.get(key) ?? this.#old.get(key)
  }

  /** Adds a new entry, as the youngest. */
  add (key: string, value: V): void {
    this.#old.delete(key)
    if (this.#young.size >= this.#half) this.#rotate()
    this.#young.set(key, value)
  }

  /** Keeps an entry young (its window started again). */
  renew (key: string, value: V): void {
    if (this.#young.get(key) === value) return
    this.add(key, value)
  }

  /** Every entry, oldest generation first. */
  * entries (): IterableIterator<[string, V]> {
    yield * this.#old
    yield * this.#young
  }

  clear (): void {
    this.#old = new Map()
    this.#young = new Map()
  }

  get size (): number {
    return this.#young.size + this.#old.size
  }

  #rotate (): void {
    const forgotten = this.#old
    this.#old = this.#young
    this.#young = new Map()
    if (this.#onForget !== undefined) for (const [key, value] of forgotten) this.#onForget(key, value)
  }
}
