import { test } from 'tap'
import { Script } from 'node:vm'
import { truncate } from '../lib/budget'
import { Copier, DESCRIPTION_BYTES } from '../lib/copier'
import { Secrets } from '../lib/secrets'
import { errorTypeOf, isError } from '../lib/safe-read'

const copier = new Copier(new Secrets())
const normalize = (value: unknown) => copier.normalize(value)
const describe = (value: unknown) => copier.describe(value)

test('a readable Error is kept as it is, and its stack is not read', async (t) => {
  class DatabaseError extends Error {}
  const error = new DatabaseError('connection lost')
  let formatted = 0
  const prepare = Error.prepareStackTrace
  Error.prepareStackTrace = (err, frames) => { formatted++; return prepare ? prepare(err, frames) : String(err) }
  t.teardown(() => { Error.prepareStackTrace = prepare })
  const fresh = new DatabaseError('fresh')
  const normalized = normalize(fresh)
  t.equal(normalized.error, fresh)
  t.equal(normalized.type, 'DatabaseError')
  t.equal(normalized.message, 'fresh')
  t.equal(formatted, 0, 'normalising does not format the stack')
  t.equal(normalize(error).error, error)
})

test('an Error from another realm is an Error', async (t) => {
  const foreign = new Script('new TypeError("elsewhere")').runInNewContext()
  t.notOk(foreign instanceof Error)
  t.ok(isError(foreign))
  const { error, type, message } = normalize(foreign)
  t.equal(error, foreign)
  t.equal(type, 'TypeError')
  t.equal(message, 'elsewhere')
})

test('a non-string message is turned into a string', async (t) => {
  const error = Object.assign(new Error('x'), { message: 42 })
  t.equal(normalize(error).message, '42')
})

test('non-Errors become FST_RECOVERY_NON_ERROR with their type and a description', async (t) => {
  const cases: Array<[unknown, string, string]> = [
    [undefined, 'undefined', 'undefined'],
    [null, 'null', 'null'],
    ['boom', 'string', '"boom"'],
    [42, 'number', '42'],
    [42n, 'bigint', '42n'],
    [Symbol('sym'), 'symbol', 'Symbol(sym)'],
    [Symbol(), 'symbol', 'Symbol()'], // eslint-disable-line symbol-description
    [function named () {}, 'function', '[Function named]'],
    [{ a: 1 }, 'object', 'Object {"a":1}'],
    [[1, 2], 'object', 'Array [1,2]']
  ]
  for (const [value, valueType, description] of cases) {
    const { error, type, message } = normalize(value)
    t.ok(error instanceof Error, `${valueType} becomes an Error`)
    t.equal((error as Error & { code: string }).code, 'FST_RECOVERY_NON_ERROR')
    t.equal((error as Error & { valueType: string }).valueType, valueType)
    t.equal(type, valueType)
    t.equal(message, description)
    t.equal(error.message, `A non-Error value was thrown: ${description}`)
    t.equal(error.stack, undefined, 'no stack of the plugin\'s own frames')
    t.notOk('statusCode' in error && (error as Error & { statusCode?: number }).statusCode !== undefined)
  }
})

test('an Error whose message is an accessor is kept; the accessor is never run', async (t) => {
  const error = new Error('x')
  let runs = 0
  Object.defineProperty(error, 'message', { get () { runs++; throw new Error('getter') } })
  const normalized = normalize(error)
  t.equal(normalized.error, error)
  t.equal(normalized.type, 'Error')
  t.equal(normalized.message, '[Getter]')
  t.equal(runs, 0)
})

test('a message that is not a string: primitives are written, objects named, nothing run', async (t) => {
  t.equal(normalize(Object.assign(new Error('x'), { message: 42n })).message, '42')
  t.equal(normalize(Object.assign(new Error('x'), { message: null })).message, 'null')
  t.equal(normalize(Object.assign(new Error('x'), { message: Symbol('s') })).message, 'Symbol(s)')
  const toStringThrows = { toString () { throw new Error('toString') } }
  t.equal(normalize(Object.assign(new Error('x'), { message: toStringThrows })).message, '[Object]')
  t.equal(normalize(Object.create(Error.prototype)).message, '', 'Error.prototype.message')
})

test('errorTypeOf falls back to name, then to Error', async (t) => {
  const noCtor = Object.assign(Object.create(Error.prototype, { constructor: { value: undefined } }), { name: 'Named' })
  t.equal(errorTypeOf(noCtor), 'Named')
  const nothing = Object.create(Error.prototype, { constructor: { value: undefined }, name: { value: '' } })
  t.equal(errorTypeOf(nothing), 'Error')
})

test('isError survives a Proxy whose getPrototypeOf trap throws', async (t) => {
  const proxy = new Proxy({}, { getPrototypeOf () { throw new Error('trap') } })
  t.equal(isError(proxy), false)
})

test('truncate bounds UTF-8 bytes and keeps surrogate pairs whole', async (t) => {
  t.equal(truncate('short', 100), 'short')
  const long = 'x'.repeat(5000)
  const cut = truncate(long, 1024)
  t.ok(Buffer.byteLength(cut) <= 1024)
  t.match(cut, /…\[truncated, 5000 chars\]$/)
  const emoji = '😀'.repeat(1000)
  const cutEmoji = truncate(emoji, 1024)
  t.ok(Buffer.byteLength(cutEmoji) <= 1024)
  t.notOk(/[\ud800-\udbff](?![\udc00-\udfff])/.test(cutEmoji), 'no lone high surrogate')
  for (let pad = 0; pad < 8; pad++) {
    const cutMixed = truncate('a'.repeat(pad) + '😀'.repeat(100), 64)
    t.notOk(/[\ud800-\udbff](?![\udc00-\udfff])/.test(cutMixed), `no lone high surrogate after ${pad} ascii chars`)
    t.ok(Buffer.byteLength(cutMixed) <= 64)
  }
  const euro = '€'.repeat(400) // 3 bytes each: 1200 bytes in 400 chars
  t.ok(Buffer.byteLength(truncate(euro, 1024)) <= 1024)
  const threeByte = '€'.repeat(300) // 900 bytes, fits
  t.equal(truncate(threeByte, 1024), threeByte)
})

test('describe is bounded to 1 KiB and never throws', async (t) => {
  const huge = 'y'.repeat(2 * 1024 * 1024)
  t.ok(Buffer.byteLength(describe(huge)) <= DESCRIPTION_BYTES)
  const wide = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`key${i}`, 'v'.repeat(100)]))
  t.ok(Buffer.byteLength(describe(wide)) <= DESCRIPTION_BYTES)
  const circular: Record<string, unknown> = { name: 'loop' }
  circular.self = circular
  t.equal(describe(circular), 'Object {"name":"loop","self":"[Circular]"}')
  const shared = { a: 1 }
  t.equal(describe({ x: shared, y: shared }), 'Object {"x":{"a":1},"y":"[Repeated]"}', 'a shared object is copied once, and is not circular')
  let runs = 0
  const getter = { get bad (): never { runs++; throw new Error('getter') }, good: 1 }
  t.equal(describe(getter), 'Object {"bad":"[Getter]","good":1}')
  t.equal(runs, 0, 'an accessor is never invoked')
  const trap = new Proxy({}, {
    get () { throw new Error('trap') },
    ownKeys () { throw new Error('trap') },
    getPrototypeOf () { throw new Error('trap') },
    getOwnPropertyDescriptor () { throw new Error('trap') },
    has () { throw new Error('trap') }
  })
  t.equal(describe(trap), '[Proxy]', 'no trap runs')
  t.equal(describe(Object.freeze({ frozen: true })), 'Object {"frozen":true}')
  t.equal(describe(Object.assign(Object.create(null), { bare: 1 })), 'Object {"bare":1}')
  t.equal(describe(Promise.resolve(1)), '[Promise]')
  t.equal(describe({ when: new Date(0), bad: new Date(Number.NaN) }), 'Object {"when":"1970-01-01T00:00:00.000Z","bad":"Invalid Date"}')
  t.equal(describe({ buf: Buffer.from('abc'), map: new Map([[1, 2]]), set: new Set(), weak: new WeakMap() }),
    'Object {"buf":"[Buffer byteLength=3]","map":"[Map size=1]","set":"[Set size=0]","weak":"[WeakMap]"}')
  t.equal(describe({ n: Number.NaN, i: Infinity, u: undefined, b: true, s: Symbol('q'), f: () => {} }),
    'Object {"n":"NaN","i":"Infinity","b":true,"s":"Symbol(q)","f":"[Function f]"}')
  t.equal(describe(Array.from({ length: 25 }, (_, i) => i)), `Array [${Array.from({ length: 20 }, (_, i) => i).join(',')},"…[5 more items]"]`)
  t.match(describe({ a: { b: { c: { d: { e: { f: 1 } } } } } }), /"\[Object\]"/, 'depth is bounded')
  t.match(describe(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]))), /"…":"10 more keys left out"/)
  class Odd { constructor () { Object.defineProperty(this, 'constructor', { get () { throw new Error('ctor') } }) } }
  t.equal(describe(new Odd()), 'Object {}', 'a constructor accessor is not run: no name')
  const anonymous = (() => () => {})()
  t.equal(describe(anonymous), '[Function (anonymous)]')
  const badName = Object.defineProperty(() => {}, 'name', { get () { throw new Error('name') } })
  t.equal(describe(badName), '[Function (anonymous)]')
  const toStringThrows = { toJSON () { throw new Error('toJSON') }, a: 1 }
  t.equal(describe(toStringThrows), 'Object {"toJSON":"[Function toJSON]","a":1}', 'toJSON is never called')
})

test('describe survives a hostile environment (a throwing Array.prototype.toJSON)', async (t) => {
  const proto = Array.prototype as unknown as { toJSON?: () => never }
  proto.toJSON = () => { throw new Error('hostile') }
  try {
    t.equal(describe([1, 2]), '[undescribable value]')
  } finally {
    delete proto.toJSON
  }
})

test('an Error with no message anywhere on its chain has an empty one', async (t) => {
  const bare = Object.setPrototypeOf(new Error('gone'), null)
  delete (bare as { message?: string }).message
  t.equal(normalize(bare).message, '')
  t.equal(normalize(bare).type, 'Error')
})

test('nameless classes and messages that are nameless objects', async (t) => {
  const Anonymous = (() => class extends Error {})()
  t.equal(normalize(new Anonymous('x')).type, 'Error', 'an anonymous class: the name on the chain')
  t.equal(normalize(Object.assign(new Error('x'), { message: Object.create(null) })).message, '[Object]')
})
