import { test } from 'tap'
import { buildApp, genericBody } from './helper'

// Contract §5: whatever is thrown — from a sync or an async handler — gets the generic 500,
// exactly one bounded log line, exactly one count, no hang, and the server keeps serving.

const trapAll: ProxyHandler<object> = {}
for (const trap of ['get', 'set', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'getPrototypeOf', 'setPrototypeOf',
  'defineProperty', 'deleteProperty', 'isExtensible', 'preventExtensions', 'apply', 'construct'] as const) {
  trapAll[trap] = () => { throw new Error(`trap ${trap}`) }
}

function throwingGetters (): object {
  return Object.defineProperties({}, {
    statusCode: { get () { throw new Error('statusCode getter') }, enumerable: true },
    message: { get () { throw new Error('message getter') }, enumerable: true },
    toString: { get () { throw new Error('toString getter') }, enumerable: true }
  })
}

function errorWith (property: 'message' | 'stack' | 'toJSON' | 'name'): Error {
  const error = new Error('hostile')
  Object.defineProperty(error, property, { get () { throw new Error(`${property} getter`) }, enumerable: property === 'toJSON' })
  return error
}

function circular (): object {
  const value: Record<string, unknown> = { name: 'loop' }
  value.self = value
  value.list = [value, { back: value }]
  return value
}

function causeChain (): Error {
  let error = new Error('root cause')
  for (let i = 1; i <= 20; i++) error = new Error(`level ${i}`, { cause: error })
  return error
}

const values: Array<[string, () => unknown]> = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['a string', () => 'a string'],
  ['an empty string', () => ''],
  ['a number', () => 42],
  ['NaN', () => Number.NaN],
  ['a BigInt', () => 12345678901234567890n],
  ['a Symbol', () => Symbol('sym')],
  ['a function', () => function namedFunction () {}],
  ['a class', () => class Thing {}],
  ['a plain object', () => ({ code: 'E_PLAIN', detail: { nested: true } })],
  ['a null-prototype object', () => Object.assign(Object.create(null), { bare: true })],
  ['an object whose getters throw, statusCode included', throwingGetters],
  ['a Proxy that throws on every trap', () => new Proxy({}, trapAll)],
  ['a Proxy of an Error that throws on every trap', () => new Proxy(new Error('inner'), trapAll)],
  ['a circular object', circular],
  ['a frozen object', () => Object.freeze({ frozen: true, inner: Object.freeze({ deep: 1 }) })],
  ['a frozen Error', () => Object.freeze(new Error('frozen'))],
  ['an Error whose message getter throws', () => errorWith('message')],
  ['an Error whose stack getter throws', () => errorWith('stack')],
  ['an Error whose toJSON getter throws', () => errorWith('toJSON')],
  ['an Error whose name getter throws', () => errorWith('name')],
  ['an AggregateError', () => new AggregateError([new Error('first'), 'second', new TypeError('third')], 'many failed')],
  ['a cause chain', causeChain],
  ['a circular cause', () => { const a = new Error('a'); const b = new Error('b', { cause: a }); (a as { cause?: unknown }).cause = b; return a }],
  ['a 2 MB message', () => new Error('m'.repeat(2 * 1024 * 1024))],
  ['a 2 MB string', () => 's'.repeat(2 * 1024 * 1024)],
  ['a pending Promise', () => new Promise(() => {})],
  ['a rejected Promise', () => Promise.reject(new Error('inner rejection'))],
  ['an array of a million items', () => new Array(1_000_000).fill('x')],
  ['an Error with a huge property', () => Object.assign(new Error('big'), { payload: 'p'.repeat(5_000_000) })],
  ['an Error with a getter property that throws', () => Object.defineProperty(new Error('getter prop'), 'extra', { get () { throw new Error('extra') }, enumerable: true })]
]

for (const style of ['sync', 'async'] as const) {
  test(`hostile throwables from a ${style} handler`, async (t) => {
    const { app, panics, total, lines } = await buildApp()
    t.teardown(() => app.close())
    let current: () => unknown = () => undefined
    if (style === 'sync') {
      app.get('/throw', () => { throw current() })
    } else {
      app.get('/throw', async () => { await Promise.resolve(); throw current() })
    }
    app.get('/ok', async () => 'ok')

    let expected = 0
    for (const [name, make] of values) {
      current = make
      const res = await app.inject('/throw')
      expected++
      const id = res.headers['x-request-id'] as string
      t.equal(res.statusCode, 500, name)
      t.equal(res.body, genericBody(id), `${name}: the generic body`)
      const mine = panics().filter((line) => line.reqId === id)
      t.equal(mine.length, 1, `${name}: exactly one line`)
      t.ok(JSON.stringify(mine[0]).length < 64 * 1024, `${name}: the line is bounded`)
      t.equal(await total(), expected, `${name}: exactly one count`)
      t.equal((await app.inject('/ok')).statusCode, 200, `${name}: still serving`)
    }

    const byMessage = (text: string) => panics().find((line) => String(line.err?.message).includes(text))
    t.match(byMessage('"a string"')?.err, { code: 'FST_RECOVERY_NON_ERROR', valueType: 'string' })
    t.match(byMessage('12345678901234567890n')?.err, { valueType: 'bigint' })
    t.match(byMessage('Symbol(sym)')?.err, { valueType: 'symbol' })
    t.match(byMessage('[unreadable]')?.err, { valueType: 'object' }, 'a Proxy that throws everywhere is still described')
    t.match(byMessage('level 20')?.err?.message, /^level 20: level 19: .*: level 12/, 'a cause chain is followed, bounded')
    t.match(byMessage('many failed')?.err, { type: 'AggregateError', aggregateErrors: [{ message: 'first' }, { type: 'string', message: '"second"' }, { type: 'TypeError' }] })
    t.match(byMessage('mmmm')?.err?.message, /truncated, 2097152 chars/, 'a huge message is truncated')
    t.match(byMessage('"ssss')?.err?.message, /truncated/)
    t.match(byMessage('[Promise]')?.err, { valueType: 'object' })
    t.equal(lines.filter((line) => line.level >= 50 && line.msg !== 'panic recovered').length, 0, 'no other error lines')
  })
}
