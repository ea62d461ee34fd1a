import { ClientRequest, IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http'
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Server, Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Stream } from 'node:stream'
import { types } from 'node:util'
import { constructorNameOf, dataOf, errorMessageOf, errorTypeOf, GETTER, isError } from './safe-read'
import { isSecretKey, redactText, REDACTED } from './secrets'

// A plain, JSON-safe copy of any value, for log lines and descriptions (contract §5, §6). One budget
// counts every key and leaf in the bytes JSON will write; each object is visited once (a shared
// reference or a cycle is a short marker); accessors are never invoked; objects that carry a request
// (its headers, cookies, body) are written as a short tag; credentials are redacted (lib/secrets.ts).

/** Contract §5: a thrown non-Error is described in at most 1 KiB. */
export const DESCRIPTION_BYTES = 1024

// a string inside a structure
const STRING_BYTES = 1024
const MAX_DEPTH = 5
const MAX_ENTRIES = 20
// V8 lists every key of an object before the first can be read (about 0.5 µs per key here): once
// this much time is spent, no further object is listed
const LISTING_MS = 20
const CLOSING_BYTES = 160

/**
 * What one copy may still spend: JSON bytes, objects already visited, a deadline for listing keys.
 * The sets and the deadline are made when the first object is met: most thrown errors have none.
 */
export interface Budget {
  bytes: number
  /** The value the copy started from (it is visited first). */
  root?: object
  /** Every other object visited so far, and those still being copied (a cycle leads back to one of these). */
  seen?: Set<object>
  open?: Set<object>
  deadline?: number
}

export function budgetOf (bytes: number, root?: object): Budget {
  // once spent, a copy still closes what it had opened: a short marker per level, and the leaf
  // that overran it; this is kept aside so the whole stays within `bytes`
  const closing = Math.min(CLOSING_BYTES, Math.floor(bytes / 8))
  return { bytes: bytes - closing, root }
}

/** Whether the copy has visited `object` already. */
export function hasSeen (budget: Budget, object: object): boolean {
  return object === budget.root || budget.seen?.has(object) === true
}

export function see (budget: Budget, object: object): void {
  (budget.seen ??= new Set()).add(object)
}

/** How a copy treats what it meets. */
export interface CopyRules {
  /** Key names whose values are redacted, as `secretKey` normalises them. */
  readonly secrets: ReadonlySet<string>
  /** How an Error met inside the value is copied; by default as `{ type, message }`. */
  readonly copyError?: (error: Error, budget: Budget, depth: number) => unknown
}

/** A JSON-safe copy of `value` within `budget`. Never throws, never runs code of the value. */
export function copyValue (value: unknown, budget: Budget, rules: CopyRules, depth = 0): unknown {
  switch (typeof value) {
    case 'string':
      return fit(redactText(value, rules.secrets, STRING_BYTES), STRING_BYTES, budget)
    case 'number':
      return spend(budget, Number.isFinite(value) ? value : String(value))
    case 'boolean':
      return spend(budget, value)
    case 'undefined':
      return spend(budget, undefined)
    case 'bigint':
      return fit(`${value}n`, STRING_BYTES, budget)
    case 'symbol':
      return fit(`Symbol(${value.description ?? ''})`, STRING_BYTES, budget)
    case 'function':
      return fit(`[Function ${functionNameOf(value)}]`, STRING_BYTES, budget)
  }
  if (value === null) return spend(budget, null)
  return copyObject(value as object, budget, rules, depth)
}

/** A one-line description of any value, at most `DESCRIPTION_BYTES`, secrets redacted. Never throws. */
export function describe (value: unknown, rules: CopyRules): string {
  try {
    const copy = copyValue(value, budgetOf(DESCRIPTION_BYTES), rules)
    let text: string
    if (typeof value === 'string') text = JSON.stringify(copy)
    else if (copy !== null && typeof copy === 'object') text = `${constructorNameOf(value as object) ?? 'Object'} ${JSON.stringify(copy)}`
    else text = String(copy)
    return truncate(text, DESCRIPTION_BYTES)
  } catch {
    return '[undescribable value]' // a hostile environment: JSON.stringify itself patched to throw
  }
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

/** `text` cut to `maxBytes` and to what the budget has left (in JSON bytes, with its separator), then spent. */
export function fit (text: string, maxBytes: number, budget: Budget): string {
  const room = Math.max(0, Math.min(maxBytes, budget.bytes - 3))
  let kept = truncate(text, room)
  let cost = jsonBytes(kept)
  // escapes take up to 6 bytes a character: cut again to what surely fits
  if (cost > room + 2) {
    kept = truncate(text, Math.floor(room / 6))
    cost = jsonBytes(kept)
  }
  budget.bytes -= cost + 1
  return kept
}

function spend<T> (budget: Budget, leaf: T): T {
  budget.bytes -= leaf === undefined ? 0 : String(leaf).length + 1
  return leaf
}

function functionNameOf (fn: object): string {
  const name = dataOf(fn, 'name')
  return typeof name === 'string' && name !== '' ? truncate(name, 128) : '(anonymous)'
}

function copyObject (object: object, budget: Budget, rules: CopyRules, depth: number): unknown {
  if (types.isProxy(object)) return fit('[Proxy]', STRING_BYTES, budget)
  if (hasSeen(budget, object)) return fit(object === budget.root || budget.open?.has(object) === true ? '[Circular]' : '[Repeated]', STRING_BYTES, budget)
  const tag = tagOf(object) ?? specialOf(object)
  if (tag !== undefined) return fit(tag, STRING_BYTES, budget)
  if (depth >= MAX_DEPTH) return fit(`[${constructorNameOf(object) ?? 'Object'}]`, STRING_BYTES, budget)
  if (budget.bytes <= 0) return fit('[…]', STRING_BYTES, budget)
  if (performance.now() > (budget.deadline ??= performance.now() + LISTING_MS)) return fit('[…]', STRING_BYTES, budget)
  see(budget, object)
  const open = budget.open ??= new Set()
  open.add(object)
  try {
    if (isError(object)) return (rules.copyError ?? plainError)(object, budget, depth)
    return Array.isArray(object) ? copyArray(object, budget, rules, depth) : copyProperties(object, budget, rules, depth)
  } finally {
    open.delete(object)
  }
}

function plainError (error: Error, budget: Budget): unknown {
  return { type: fit(errorTypeOf(error), STRING_BYTES, budget), message: fit(errorMessageOf(error), STRING_BYTES, budget) }
}

function copyArray (array: unknown[], budget: Budget, rules: CopyRules, depth: number): unknown[] {
  const length = array.length // an own data property of every array
  const out: unknown[] = []
  budget.bytes -= 2
  for (let i = 0; i < length && i < MAX_ENTRIES; i++) {
    if (budget.bytes <= 0) {
      out.push(fit(`…[${length - i} more items]`, STRING_BYTES, budget))
      return out
    }
    const descriptor = Reflect.getOwnPropertyDescriptor(array, i)
    if (descriptor === undefined) out.push(spend(budget, null))
    else if ('value' in descriptor) out.push(copyValue(descriptor.value, budget, rules, depth + 1))
    else out.push(fit('[Getter]', STRING_BYTES, budget))
  }
  if (length > MAX_ENTRIES) out.push(fit(`…[${length - MAX_ENTRIES} more items]`, STRING_BYTES, budget))
  return out
}

/** The own enumerable properties of `object` into `out` (a fresh null-prototype object by default). */
export function copyProperties (
  object: object,
  budget: Budget,
  rules: CopyRules,
  depth: number,
  out: Record<string, unknown> = Object.create(null),
  skip?: ReadonlySet<string>
): Record<string, unknown> {
  // never a Proxy here: copyObject and the Error copy look for one first
  const keys = Object.keys(object)
  budget.bytes -= 2
  let copied = 0
  for (const key of keys) {
    if (skip?.has(key)) continue
    if (copied === MAX_ENTRIES || budget.bytes <= 0) {
      out['…'] = fit(`${keys.length - copied} more keys left out`, STRING_BYTES, budget)
      break
    }
    copied++
    const name = fit(key, 128, budget)
    budget.bytes -= 2
    let copy: unknown
    if (isSecretKey(key, rules.secrets)) {
      copy = fit(REDACTED, STRING_BYTES, budget)
    } else {
      const value = dataOf(object, key)
      copy = value === GETTER ? fit('[Getter]', STRING_BYTES, budget) : copyValue(value, budget, rules, depth + 1)
    }
    // `out` may be an Error copy: a key its prototypes hold (`__proto__`, `toJSON`, `name`) is defined over them
    if (name in out) Object.defineProperty(out, name, { value: copy, enumerable: true, writable: true, configurable: true })
    else out[name] = copy
  }
  return out
}

// Objects that hold a request, a response or a connection: their headers, cookies, body and query
// never reach a line (contract §6). Found on the prototype chain, most specific first.
const TAGS = new Map<object, string>([
  [IncomingMessage.prototype, '[IncomingMessage]'],
  [Http2ServerRequest.prototype, '[Http2ServerRequest]'],
  [ServerResponse.prototype, '[ServerResponse]'],
  [ClientRequest.prototype, '[ClientRequest]'],
  [OutgoingMessage.prototype, '[OutgoingMessage]'],
  [Http2ServerResponse.prototype, '[Http2ServerResponse]'],
  [Socket.prototype, '[Socket]'],
  [Server.prototype, '[Server]'],
  [Stream.prototype, '[Stream]']
])
const kRegisteredPlugins = Symbol.for('registered-plugin')

/** A short tag for objects that must not be copied: requests, replies, sockets, streams, Fastify instances. */
export function tagOf (object: object): string | undefined {
  let current: object | null = object
  for (let depth = 0; current !== null && depth < 32; depth++) {
    if (types.isProxy(current)) return undefined
    const tag = TAGS.get(current)
    if (tag !== undefined) return tag
    current = Reflect.getPrototypeOf(current)
  }
  // Fastify's request and reply are plain objects holding the raw ones (a stream of some kind under
  // inject); a reply also holds its request. An instance holds its plugins.
  const raw = dataOf(object, 'raw')
  if (raw !== null && typeof raw === 'object' && tagOf(raw) !== undefined) {
    return dataOf(object, 'request') === undefined ? '[FastifyRequest]' : '[FastifyReply]'
  }
  if (dataOf(object, kRegisteredPlugins) !== undefined) return '[FastifyInstance]'
  return undefined
}

const typedArrayByteLength = Reflect.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'byteLength')?.get as (this: unknown) => number
const dataViewByteLength = Reflect.getOwnPropertyDescriptor(DataView.prototype, 'byteLength')?.get as (this: unknown) => number
const mapSize = Reflect.getOwnPropertyDescriptor(Map.prototype, 'size')?.get as (this: unknown) => number
const setSize = Reflect.getOwnPropertyDescriptor(Set.prototype, 'size')?.get as (this: unknown) => number

// Objects whose keys say nothing useful: described by what they are, through the engine's own
// methods (never the object's, which it may have replaced).
function specialOf (object: object): string | undefined {
  if (types.isDate(object)) {
    const time = Date.prototype.getTime.call(object)
    return Number.isNaN(time) ? 'Invalid Date' : Date.prototype.toISOString.call(object)
  }
  const name = (): string => constructorNameOf(object) ?? 'Object'
  if (types.isDataView(object)) return `[${name()} byteLength=${dataViewByteLength.call(object)}]`
  if (types.isTypedArray(object)) return `[${name()} byteLength=${typedArrayByteLength.call(object)}]`
  if (types.isAnyArrayBuffer(object)) return `[${name()}]`
  if (types.isMap(object)) return `[${name()} size=${mapSize.call(object)}]`
  if (types.isSet(object)) return `[${name()} size=${setSize.call(object)}]`
  if (types.isPromise(object)) return '[Promise]'
  if (types.isWeakMap(object) || types.isWeakSet(object) || types.isRegExp(object) || types.isBoxedPrimitive(object)) return `[${name()}]`
  return undefined
}
