import { ClientRequest, IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http'
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Server, Socket } from 'node:net'
import { Stream } from 'node:stream'
import { types } from 'node:util'
import { constructorNameOf, dataOf } from './safe-read'

// What an object inside a thrown value is written as when its keys must not be, or say nothing
// useful, listed (contract §6): a short tag, found without running any of its code.

// Objects that hold a request, a response or a connection: their headers, cookies, body and query
// never reach a line. Found on the prototype chain, most specific first.
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

/**
 * Objects whose keys say nothing useful, described by what they are through the engine's own
 * methods (never the object's, which it may have replaced).
 */
export function kindOf (object: object): string | undefined {
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
