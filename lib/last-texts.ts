// What was made of the last few texts seen: a storm's message and stack come back as the same texts
// (often the very strings made last time), found by their length and one comparison before anything
// hashes, scans or measures them again. A ring: the oldest is forgotten first.

export class LastTexts<V> {
  readonly #texts: string[]
  readonly #values: Array<V | undefined>
  #next = 0

  constructor (size: number) {
    this.#texts = new Array<string>(size).fill('')
    this.#values = new Array<V | undefined>(size).fill(undefined)
  }

  /** What was made of `text`, when it is among the last ones. */
  get (text: string): V | undefined {
    const texts = this.#texts
    for (let i = 0; i < texts.length; i++) if (text.length === texts[i].length && text === texts[i]) return this.#values[i]
    return undefined
  }

  /** Keeps what was made of `text`, in place of the oldest. */
  set (text: string, value: V): void {
    this.#texts[this.#next] = text
    this.#values[this.#next] = value
    this.#next = (this.#next + 1) % this.#texts.length
  }
}
