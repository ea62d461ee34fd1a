// Bounded, never-throwing views of arbitrary values, for log lines and error messages.
// Every read of a foreign value is guarded: getters and Proxy traps may throw, objects may be
// circular, huge or frozen. Loops are bounded by MAX_ENTRIES and MAX_DEPTH, so nothing here hangs.

/** Contract §5: a thrown non-Error is described in at most 1 KiB. */
export const DESCRIPTION_BYTES = 1024

const MAX_DEPTH = 4
const MAX_ENTRIES = 20
const MIN_BYTES = 32

/** Bytes left for the strings of one bounded value. */
export interface Budget { bytes: number }

/** `text` cut to at most `maxBytes` UTF-8 bytes, marker included, never splitting a surrogate pair. */
export function truncate (text: string, maxBytes: number): string {
  if (text.length <= maxBytes && (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes)) {
    return text
  }
  const marker = `…[truncated, ${text.length} chars]`
  const room = Math.max(0, maxBytes - marker.length - 2) // the ellipsis is 3 bytes, 1 char
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

/** `typeof`, with `null` told apart. */
export function typeOf (value: unknown): string {
  return value === null ? 'null' : typeof value
}

/** A plain, JSON-safe copy of `value` whose strings fit in `budget`. Never throws. */
export function boundedCopy (value: unknown, budget: Budget, depth = 0, ancestors: object[] = []): unknown {
  switch (typeof value) {
    case 'string':
      return spend(budget, truncate(value, Math.max(MIN_BYTES, Math.min(budget.bytes, DESCRIPTION_BYTES))))
    case 'number':
      return Number.isFinite(value) ? value : String(value)
    case 'boolean':
    case 'undefined':
      return value
    case 'bigint':
      return `${value}n`
    case 'symbol':
      return spend(budget, truncate(symbolName(value), DESCRIPTION_BYTES))
    case 'function':
      return `[Function ${functionName(value)}]`
  }
  if (value === null) return null
  const object = value as object
  if (ancestors.includes(object)) return '[Circular]'
  if (budget.bytes <= 0) return '[…]'
  try {
    const special = specialObject(object)
    if (special !== undefined) return spend(budget, special)
    if (depth >= MAX_DEPTH) return `[${tagOf(object)}]`
    ancestors.push(object)
    try {
      return Array.isArray(object)
        ? copyArray(object, budget, depth, ancestors)
        : copyObject(object, budget, depth, ancestors)
    } finally {
      ancestors.pop()
    }
  } catch {
    return '[unreadable]'
  }
}

/** A one-line description of any thrown value, at most `DESCRIPTION_BYTES`. Never throws. */
export function describe (value: unknown): string {
  try {
    const copy = boundedCopy(value, { bytes: DESCRIPTION_BYTES })
    let text: string
    if (typeof value === 'string') text = JSON.stringify(copy)
    else if (copy !== null && typeof copy === 'object') text = `${tagOf(value as object)} ${JSON.stringify(copy)}`
    else text = String(copy)
    return truncate(text, DESCRIPTION_BYTES)
  } catch {
    return '[undescribable value]'
  }
}

/** The constructor name of an object, or `Object`. Never throws. */
export function tagOf (object: object): string {
  try {
    const ctor = (object as { constructor?: unknown }).constructor
    const name = typeof ctor === 'function' ? ctor.name : undefined
    return typeof name === 'string' && name !== '' ? truncate(name, 128) : 'Object'
  } catch {
    return 'Object'
  }
}

function spend<T extends string> (budget: Budget, text: T): T {
  budget.bytes -= text.length
  return text
}

function symbolName (symbol: symbol): string {
  return `Symbol(${symbol.description ?? ''})`
}

function functionName (fn: unknown): string {
  try {
    const name = (fn as { name?: unknown }).name
    return typeof name === 'string' && name !== '' ? truncate(name, 128) : '(anonymous)'
  } catch {
    return '(anonymous)'
  }
}

// Objects whose keys say nothing useful: described by what they are.
function specialObject (object: object): string | undefined {
  if (object instanceof Date) {
    return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString()
  }
  if (ArrayBuffer.isView(object)) return `[${tagOf(object)} byteLength=${object.byteLength}]`
  if (object instanceof Map || object instanceof Set) return `[${tagOf(object)} size=${object.size}]`
  if (object instanceof Promise) return '[Promise]'
  if (object instanceof WeakMap || object instanceof WeakSet || object instanceof WeakRef) return `[${tagOf(object)}]`
  return undefined
}

function copyArray (array: unknown[], budget: Budget, depth: number, ancestors: object[]): unknown[] {
  const length = array.length
  const out: unknown[] = []
  for (let i = 0; i < length && i < MAX_ENTRIES; i++) {
    out.push(boundedCopy(readProperty(array, i), budget, depth + 1, ancestors))
  }
  if (length > MAX_ENTRIES) out.push(`…[${length - MAX_ENTRIES} more items]`)
  return out
}

function copyObject (object: object, budget: Budget, depth: number, ancestors: object[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null)
  let count = 0
  for (const key in object) {
    if (count === MAX_ENTRIES) {
      out['…'] = 'more keys left out'
      break
    }
    count++
    out[spend(budget, truncate(key, 128))] = boundedCopy(readProperty(object, key), budget, depth + 1, ancestors)
  }
  return out
}

/** `object[key]`, or a marker when reading it throws. */
export function readProperty (object: object, key: string | number): unknown {
  try {
    return (object as Record<string | number, unknown>)[key]
  } catch {
    return '[unreadable]'
  }
}
