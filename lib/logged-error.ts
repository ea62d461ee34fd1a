// The shape of the line's `err` (contract §6): an Error, so that the logger's own `err` serializer and
// formatters decide what is written (pino's `type`/`message`/`stack` with the `cause` chain folded in,
// a custom serializer, ECS's `error.*`). Its content is a copy made by lib/copier.ts, never the thrown
// value. Like a native Error, its `cause` and `errors` are not enumerable; the thrown value's own
// enumerable properties are.

// A logger without an `err` serializer writes the copy with JSON.stringify: `toJSON` gives it
// pino's standard shape (not enumerable, so a serializer copying the properties leaves it out).
const FOLDED = new Set(['message', 'stack', 'cause'])
const LoggedError: Error = Object.create(Error.prototype, {
  toJSON: {
    value: function toJSON (this: Error): Record<string, unknown> {
      const plain: Record<string, unknown> = { type: this.constructor.name, message: folded(this, 'message', ': ') }
      if (typeof this.stack === 'string') plain.stack = folded(this, 'stack', '\ncaused by: ')
      const errors = (this as { errors?: unknown }).errors
      if (Array.isArray(errors)) plain.aggregateErrors = errors
      for (const key of Object.keys(this)) if (!FOLDED.has(key)) plain[key] = (this as unknown as Record<string, unknown>)[key]
      return plain
    }
  }
})

function folded (error: Error, part: 'message' | 'stack', separator: string): string {
  const cause = error.cause as Error | undefined
  const own = error[part] ?? ''
  return cause === undefined ? own : `${own}${separator}${folded(cause, part, separator)}`
}

// pino and ECS name an error after `err.constructor.name`: a copy is made by a constructor that
// carries the type of the thrown value. One set of classes per copier: a few names are seen again
// and again, and are kept (at most 100).
const MAX_CLASSES = 100

export class LoggedErrors {
  readonly #classes = new Map<string, new () => Error>()

  /** An empty Error of a class named `type`, for the copier to fill. */
  make (type: string): Error {
    return new (this.#classOf(type))()
  }

  #classOf (type: string): new () => Error {
    let named = this.#classes.get(type)
    if (named === undefined) {
      const constructor = function () {} as unknown as new () => Error
      Object.defineProperty(constructor, 'name', { value: type })
      constructor.prototype = Object.create(LoggedError, {
        constructor: { value: constructor, writable: true, configurable: true },
        name: { value: type, writable: true, configurable: true }
      })
      named = constructor
      if (this.#classes.size < MAX_CLASSES) this.#classes.set(type, named)
    }
    return named
  }
}
