import { test } from 'tap'
import pino from 'pino'
import { serializeError } from '../lib/serialize-error'

// the shape users know: what pino's standard `err` serializer (Fastify's) writes
const pinoErr = pino.stdSerializers.err

function plain (value: unknown): unknown {
  return JSON.parse(JSON.stringify(value))
}

test('the shape is pino\'s standard err shape', async (t) => {
  const error = Object.assign(new TypeError('bad thing'), { code: 'E_BAD', details: { id: 7 } })
  t.same(plain(serializeError(error, true)), plain(pinoErr(error)))
})

test('the cause chain is folded into message and stack, as pino does', async (t) => {
  const root = new Error('disk full')
  const middle = new Error('write failed', { cause: root })
  const top = new Error('save failed', { cause: middle })
  const out = serializeError(top, true)
  t.same(plain(out), plain(pinoErr(top)))
  t.equal(out.message, 'save failed: write failed: disk full')
  t.match(out.stack, /save failed[\s\S]*caused by: Error: write failed[\s\S]*caused by: Error: disk full/)
  t.notOk('cause' in out)
})

test('a circular cause chain ends', async (t) => {
  const a = new Error('a')
  const b = new Error('b', { cause: a })
  Object.defineProperty(a, 'cause', { value: b, enumerable: false })
  const out = serializeError(a, true)
  t.equal(out.message, 'a: b')
})

test('a non-Error cause is kept as a property', async (t) => {
  const error = new Error('outer', { cause: { code: 'INNER' } })
  Object.defineProperty(error, 'cause', { value: { code: 'INNER' }, enumerable: true })
  t.same(serializeError(error, true).cause, { code: 'INNER' })
})

test('AggregateError lists its errors', async (t) => {
  const error = new AggregateError([new Error('one'), new RangeError('two'), 'three'], 'many')
  const out = serializeError(error, true)
  t.equal(out.type, 'AggregateError')
  t.equal(out.aggregateErrors?.length, 3)
  t.equal(out.aggregateErrors?.[1].type, 'RangeError')
  t.equal(out.aggregateErrors?.[1].message, 'two')
  t.same(out.aggregateErrors?.[2], { type: 'string', message: '"three"' })
  const many = new AggregateError(Array.from({ length: 50 }, (_, i) => new Error(`e${i}`)), 'lots')
  t.equal(serializeError(many, true).aggregateErrors?.length, 10)
})

test('Error properties nest as errors, methods are dropped', async (t) => {
  const error = Object.assign(new Error('outer'), { inner: new SyntaxError('nested'), helper () { return 1 } })
  const out = serializeError(error, true)
  t.equal((out.inner as { type: string }).type, 'SyntaxError')
  t.notOk('helper' in out)
})

test('without the stack, the stack is neither written nor formatted', async (t) => {
  const prepare = Error.prepareStackTrace
  let formatted = 0
  Error.prepareStackTrace = () => { formatted++; return 'formatted' }
  t.teardown(() => { Error.prepareStackTrace = prepare })
  const cause = new Error('cause')
  const error = new Error('no stack please', { cause })
  const out = serializeError(error, false)
  t.equal(formatted, 0)
  t.notOk('stack' in out)
  t.equal(out.message, 'no stack please: cause')
  serializeError(error, true)
  t.equal(formatted, 2, 'with the stack: the error and its cause')
})

test('an error without a stack gets no stack field', async (t) => {
  const error = new Error('stackless')
  Object.defineProperty(error, 'stack', { value: undefined })
  t.notOk('stack' in serializeError(error, true))
})

test('hostile errors: throwing getters are read as markers, nothing throws', async (t) => {
  const error = new Error('ok message')
  Object.defineProperty(error, 'stack', { get () { throw new Error('stack getter') } })
  Object.defineProperty(error, 'toJSON', { get () { throw new Error('toJSON getter') }, enumerable: true })
  Object.defineProperty(error, 'code', { get () { throw new Error('code getter') }, enumerable: true })
  const out = serializeError(error, true)
  t.equal(out.message, 'ok message')
  t.equal(out.stack, '[unreadable]')
  t.equal(out.code, '[unreadable]')
  t.equal(out.toJSON, '[unreadable]')
  t.doesNotThrow(() => JSON.stringify(out))

  const unreadableMessage = new Error('x', { cause: new Error('y') })
  Object.defineProperty(unreadableMessage.cause, 'message', { get () { throw new Error('m') } })
  t.equal(serializeError(unreadableMessage, false).message, 'x: [unreadable message]')

  const keysTrap = new Proxy(new Error('proxied'), { ownKeys () { throw new Error('ownKeys') } })
  t.equal(serializeError(keysTrap, false).properties, '[unreadable]')
})

test('a huge message is truncated in message and stack, frames kept', async (t) => {
  const error = new Error('m'.repeat(2 * 1024 * 1024))
  const out = serializeError(error, true)
  t.ok(Buffer.byteLength(out.message) <= 4096)
  t.ok(Buffer.byteLength(out.stack as string) <= 16 * 1024)
  t.match(out.stack, /truncated[\s\S]*\n {4}at /)
  t.ok(JSON.stringify(out).length < 48 * 1024)
})

test('the whole err is bounded, whatever its properties', async (t) => {
  const error = Object.assign(new Error('wide'), Object.fromEntries(
    Array.from({ length: 100 }, (_, i) => [`p${i}`, { nested: 'z'.repeat(100_000), more: Array(1000).fill('a'.repeat(1000)) }])
  ))
  const size = JSON.stringify(serializeError(error, true)).length
  t.ok(size < 64 * 1024, `${size} bytes`)
})
