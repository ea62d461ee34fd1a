import { test } from 'tap'
import pino from 'pino'
import { Secrets } from '../lib/secrets'
import { Copier, MESSAGE_BYTES, STACK_BYTES } from '../lib/copier'

// The line's `err` is an Error built as a bounded, redacting copy of what was thrown: the
// logger's own serializer (pino's standard one, in Fastify) gives it the shape users know.

const copier = new Copier(new Secrets())
// what `err` may take of a line whose bindings and fields are small
const ERR_BYTES = 48 * 1024
const pinoErr = (error: unknown): Record<string, any> => pino.stdSerializers.err(error as Error) as unknown as Record<string, any>

function loggedError (value: unknown, withStack = true): Error {
  return copier.lineError(copier.normalize(value), withStack, ERR_BYTES)
}

function plain (value: unknown): Record<string, any> {
  return JSON.parse(JSON.stringify(value))
}

test('an Error, whose type, message and stack pino reads as from the original', async (t) => {
  const error = Object.assign(new TypeError('bad thing'), { code: 'E_BAD', details: { id: 7 } })
  const copy = loggedError(error)
  t.ok(copy instanceof Error)
  t.not(copy, error, 'a copy, never the thrown value')
  t.same(plain(pinoErr(copy)), plain(pinoErr(error)))
  t.same(plain(copy), plain(pinoErr(error)), 'and JSON.stringify gives the same shape (loggers without a serializer)')
  // plain own properties (a serializer reads them fast); pino and JSON give the shape above all the same
  t.same(Object.keys(copy), ['message', 'stack', 'code', 'details'])
})

test('the cause chain is folded into message and stack by pino, as for the original', async (t) => {
  const root = new Error('disk full')
  const middle = new Error('write failed', { cause: root })
  const top = new Error('save failed', { cause: middle })
  const out = pinoErr(loggedError(top))
  t.same(plain(out), plain(pinoErr(top)))
  t.equal(out.message, 'save failed: write failed: disk full')
  t.match(out.stack, /save failed[\s\S]*caused by: Error: write failed[\s\S]*caused by: Error: disk full/)
  t.notOk('cause' in plain(out))
})

test('a circular cause chain ends', async (t) => {
  const a = new Error('a')
  const b = new Error('b', { cause: a })
  Object.defineProperty(a, 'cause', { value: b, enumerable: false })
  t.equal(pinoErr(loggedError(a)).message, 'a: b')
})

test('a cause chain is followed 8 causes deep', async (t) => {
  let error = new Error('root cause')
  for (let i = 1; i <= 20; i++) error = new Error(`level ${i}`, { cause: error })
  t.equal(pinoErr(loggedError(error)).message, 'level 20: level 19: level 18: level 17: level 16: level 15: level 14: level 13: level 12')
})

test('a non-Error cause is kept as a property when it is enumerable', async (t) => {
  const error = new Error('outer')
  Object.defineProperty(error, 'cause', { value: { code: 'INNER' }, enumerable: true })
  t.same(plain(pinoErr(loggedError(error))).cause, { code: 'INNER' })
})

test('AggregateError lists its errors, non-Errors described', async (t) => {
  const error = new AggregateError([new Error('one'), new RangeError('two'), 'three'], 'many')
  const out = pinoErr(loggedError(error))
  t.equal(out.type, 'AggregateError')
  t.equal(out.aggregateErrors?.length, 3)
  t.equal(out.aggregateErrors?.[1].type, 'RangeError')
  t.equal(out.aggregateErrors?.[1].message, 'two')
  t.match(out.aggregateErrors?.[2], { type: 'string', message: 'A non-Error value was thrown: "three"' })
  t.notOk('errors' in plain(out), 'errors is not enumerable, as on a native AggregateError')
  const many = new AggregateError(Array.from({ length: 50 }, (_, i) => new Error(`e${i}`)), 'lots')
  t.equal(pinoErr(loggedError(many)).aggregateErrors?.length, 10)
})

test('Error properties nest as errors, methods are written as such', async (t) => {
  const error = Object.assign(new Error('outer'), { inner: new SyntaxError('nested'), helper () { return 1 } })
  const out = plain(pinoErr(loggedError(error))) as Record<string, any>
  t.equal(out.inner.type, 'SyntaxError')
  t.equal(out.inner.message, 'nested')
  t.equal(out.helper, '[Function helper]')
})

test('without the stack, no stack is read or formatted', async (t) => {
  const prepare = Error.prepareStackTrace
  let formatted = 0
  Error.prepareStackTrace = () => { formatted++; return 'formatted' }
  t.teardown(() => { Error.prepareStackTrace = prepare })
  const cause = new Error('cause')
  const error = new Error('no stack please', { cause })
  const copy = loggedError(error, false)
  t.equal(formatted, 0)
  t.notOk('stack' in copy)
  t.notOk('stack' in plain(copy), 'JSON without a serializer leaves it out')
  t.notMatch(pinoErr(copy).stack, /Error:|\n {4}at /, 'pino\'s serializer writes an empty stack (and its "caused by" links)')
  t.equal(pinoErr(copy).message, 'no stack please: cause')
  loggedError(error, true)
  t.equal(formatted, 2, 'with the stack: the error and its cause')
})

test('an error without a stack gets no stack', async (t) => {
  const error = new Error('stackless')
  Object.defineProperty(error, 'stack', { value: undefined })
  t.notOk('stack' in loggedError(error))
})

test('accessors are never invoked: written as [Getter]', async (t) => {
  let runs = 0
  const getter = () => { runs++; throw new Error('getter') }
  const error = new Error('ok message')
  Object.defineProperty(error, 'stack', { get: getter })
  Object.defineProperty(error, 'toJSON', { get: getter, enumerable: true })
  Object.defineProperty(error, 'code', { get: getter, enumerable: true })
  const out = pinoErr(loggedError(error))
  t.equal(out.message, 'ok message')
  t.equal(out.stack, '[Getter]')
  t.equal(out.code, '[Getter]')
  t.equal(out.toJSON, '[Getter]')
  t.equal(runs, 0)

  const causeWithGetter = new Error('x', { cause: new Error('y') })
  Object.defineProperty(causeWithGetter.cause, 'message', { get: getter })
  t.equal(pinoErr(loggedError(causeWithGetter, false)).message, 'x: [Getter]')

  const keysTrap = new Proxy(new Error('proxied'), { ownKeys () { runs++; return [] } })
  t.match(pinoErr(loggedError(keysTrap)), { type: 'object', message: /\[Proxy\]/ }, 'a Proxy is never looked into')
  t.equal(runs, 0)
})

test('prototype accessors are not run either (without the stack: formatting one reads `name`)', async (t) => {
  let reads = 0
  class Counted extends Error {
    constructor () {
      super('placeholder')
      Object.defineProperty(this, 'message', { value: 'counted', enumerable: false })
    }
  }
  const error = new Counted()
  const proto = Object.getPrototypeOf(error)
  Object.defineProperty(proto, 'name', { get () { reads++; return 'Counted' } })
  t.equal(pinoErr(loggedError(error, false)).message, 'counted')
  t.equal(reads, 0)
})

test('a huge message is cut in message and stack, frames kept', async (t) => {
  const error = new Error('m'.repeat(2 * 1024 * 1024))
  const out = pinoErr(loggedError(error))
  t.ok(Buffer.byteLength(out.message) <= MESSAGE_BYTES)
  t.ok(Buffer.byteLength(out.stack) <= STACK_BYTES)
  t.match(out.stack, /truncated[\s\S]*\n {4}at /)
})

test('message and stack bounds hold for a whole cause chain, as pino folds it', async (t) => {
  let error = new Error('c'.repeat(10_000))
  for (let i = 0; i < 8; i++) error = new Error('m'.repeat(10_000), { cause: error })
  const out = pinoErr(loggedError(error))
  t.ok(Buffer.byteLength(out.message) <= MESSAGE_BYTES, `message ${Buffer.byteLength(out.message)} bytes`)
  t.ok(Buffer.byteLength(out.stack) <= STACK_BYTES, `stack ${Buffer.byteLength(out.stack)} bytes`)
})

test('escapes count: a message of control characters stays within the bounds as JSON', async (t) => {
  const error = new Error('\u0001'.repeat(100_000))
  const json = JSON.stringify(pinoErr(loggedError(error)))
  t.ok(Buffer.byteLength(json) <= ERR_BYTES, `${Buffer.byteLength(json)} bytes`)
})

test('the whole err is bounded, whatever its properties', async (t) => {
  const error = Object.assign(new Error('wide'), Object.fromEntries(
    Array.from({ length: 100 }, (_, i) => [`p${i}`, { nested: 'z'.repeat(100_000), more: Array(1000).fill('a'.repeat(1000)) }])
  ))
  const size = Buffer.byteLength(JSON.stringify(pinoErr(loggedError(error))))
  t.ok(size <= ERR_BYTES, `${size} bytes`)
})

test('numbers and booleans count too: a small numeric structure stays bounded', async (t) => {
  const cube = Array.from({ length: 50 }, () => Array.from({ length: 50 }, () => Array.from({ length: 50 }, () => 123456789.123)))
  const error = Object.assign(new Error('numbers'), { cube, flags: Array(100_000).fill(true) })
  const size = Buffer.byteLength(JSON.stringify(pinoErr(loggedError(error))))
  t.ok(size <= ERR_BYTES, `${size} bytes`)
})

test('a shared object is copied once, on every path', async (t) => {
  const big = { blob: 'b'.repeat(900) }
  const error = Object.assign(new Error('shared'), { a: big, b: big, list: Array(20).fill(big) })
  const out = plain(pinoErr(loggedError(error))) as Record<string, any>
  t.same(out.a, { blob: 'b'.repeat(900) })
  t.equal(out.b, '[Repeated]')
  t.same(out.list, Array(20).fill('[Repeated]'))
})

test('a non-Error is an Error describing it, with no stack of the plugin\'s', async (t) => {
  const out = pinoErr(loggedError({ code: 'E_PLAIN', password: 'hunter2' }))
  t.match(out, { type: 'object', code: 'FST_RECOVERY_NON_ERROR', valueType: 'object' })
  t.equal(out.message, 'A non-Error value was thrown: Object {"code":"E_PLAIN","password":"[redacted]"}')
  t.equal(out.stack, '')
})

test('an AggregateError whose errors hold accessors and nulls; written by JSON too', async (t) => {
  const errors: unknown[] = [null, new Error('real')]
  Object.defineProperty(errors, 2, { get () { throw new Error('item getter') }, enumerable: true })
  const copy = loggedError(Object.assign(new AggregateError([], 'mixed'), { errors }))
  t.match(pinoErr(copy).aggregateErrors, [{ type: 'null', message: /null/ }, { type: 'Error', message: 'real' }, { type: 'string', message: /\[Getter\]/ }])
  t.match(plain(copy), { type: 'AggregateError', aggregateErrors: [{ type: 'null' }, { message: 'real' }, { type: 'string' }] })
})

test('JSON folds a cause without a stack as pino does', async (t) => {
  const cause = Object.create(Error.prototype, { message: { value: 'stackless cause' } })
  const copy = loggedError(new Error('outer', { cause }))
  t.equal(plain(copy).message, 'outer: stackless cause')
  t.match(plain(copy).stack, /^Error: outer\n[\s\S]*\ncaused by: $/)
})

test('an AggregateError holding itself or one error twice copies each error once', async (t) => {
  const once = new Error('once')
  const aggregate = new AggregateError([once, once], 'twice')
  ;(aggregate as unknown as { errors: unknown[] }).errors.push(aggregate)
  const out = pinoErr(loggedError(aggregate))
  t.match(out.aggregateErrors, [{ message: 'once' }, { message: /"\[Repeated\]"/ }, { message: /"\[Repeated\]"/ }])
})

test('a cause met before in the same value is not copied twice: the chain stops there', async (t) => {
  const shared = new Error('shared root')
  const aggregate = new AggregateError([shared, new Error('second', { cause: shared })], 'both')
  const out = pinoErr(loggedError(aggregate))
  t.equal(out.aggregateErrors?.[0].message, 'shared root')
  t.equal(out.aggregateErrors?.[1].message, 'second', 'its cause, copied already, is left out')
})

test('BigInts: small ones in full, large ones (of either sign) by their size', async (t) => {
  const error = Object.assign(new Error('numbers'), { small: -42n, large: -(1n << 5000n), positive: 1n << 5000n })
  const out = pinoErr(loggedError(error))
  t.equal(out.small, '-42n')
  t.equal(out.large, '-0x1000000000000000… [BigInt of 5001 bits]')
  t.equal(out.positive, '0x1000000000000000… [BigInt of 5001 bits]')
})
