import { test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, genericBody } from './helper'

// Contract §3 and §5: whatever is thrown — from a handler (sync or async) or a hook — gets the
// generic 500, exactly one bounded log line, exactly one count, no hang, nothing of the value in the
// reply, and the server keeps serving. Every value carries a canary; no reply may contain it.

const CANARY = 'CANARY-7f3a'

const trapAll: ProxyHandler<object> = {}
for (const trap of ['get', 'set', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'getPrototypeOf', 'setPrototypeOf',
  'defineProperty', 'deleteProperty', 'isExtensible', 'preventExtensions', 'apply', 'construct'] as const) {
  trapAll[trap] = () => { throw new Error(`trap ${trap} ${CANARY}`) }
}
const canaryGetter = { get () { throw new Error(`getter ${CANARY}`) }, enumerable: true }

function throwingGetters (): object {
  return Object.defineProperties({}, { statusCode: canaryGetter, message: canaryGetter, toString: canaryGetter })
}

function errorWith (property: 'message' | 'stack' | 'toJSON' | 'name' | 'errors' | 'cause' | 'constructor'): Error {
  return Object.defineProperty(new Error(`hostile ${CANARY}`), property, canaryGetter)
}

function circular (): object {
  const value: Record<string, unknown> = { name: 'loop', CANARY }
  value.self = value
  value.list = [value, { back: value }]
  return value
}

function causeChain (): Error {
  let error = new Error(`root cause ${CANARY}`)
  for (let i = 1; i <= 20; i++) error = new Error(`level ${i}`, { cause: error })
  return error
}

function revoked (): object {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  return proxy
}

// the promise's own rejection must not crash the process either
function hostilePromise (how: 'configurable' | 'non-configurable' | 'species'): Promise<never> {
  if (how === 'species') {
    class Hostile extends Promise<never> { static override get [Symbol.species] (): never { throw new Error(`species ${CANARY}`) } }
    return Hostile.reject(new Error(`species rejection ${CANARY}`))
  }
  const promise = Promise.reject(new Error(`${how} rejection ${CANARY}`))
  Object.defineProperty(promise, 'constructor', { ...canaryGetter, configurable: how === 'configurable' })
  return promise
}

let messageReads = 0
const values: Array<[string, () => unknown]> = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['a string', () => `a string ${CANARY}`],
  ['an empty string', () => ''],
  ['a number', () => 42],
  ['NaN', () => Number.NaN],
  ['a BigInt', () => 12345678901234567890n],
  ['a Symbol', () => Symbol(CANARY)],
  ['a function', () => function namedFunction () { return CANARY }],
  ['a class', () => class Thing {}],
  ['a plain object', () => ({ code: 'E_PLAIN', detail: { nested: CANARY } })],
  ['a null-prototype object', () => Object.assign(Object.create(null), { bare: CANARY })],
  ['an object whose getters throw, statusCode included', throwingGetters],
  ['a Proxy that throws on every trap', () => new Proxy({}, trapAll)],
  ['a Proxy of an Error that throws on every trap', () => new Proxy(new Error(CANARY), trapAll)],
  ['a revoked Proxy', revoked],
  ['a circular object', circular],
  ['a frozen object', () => Object.freeze({ frozen: CANARY, inner: Object.freeze({ deep: 1 }) })],
  ['a frozen Error', () => Object.freeze(new Error(CANARY))],
  ['an Error whose message getter throws', () => errorWith('message')],
  ['an Error whose message getter counts its reads', () => Object.defineProperty(new Error('x'), 'message', { get () { messageReads++; return CANARY } })],
  ['an Error whose stack getter throws', () => errorWith('stack')],
  ['an Error whose toJSON getter throws', () => errorWith('toJSON')],
  ['an Error whose name getter throws', () => errorWith('name')],
  ['an Error whose constructor getter throws', () => errorWith('constructor')],
  ['an Error whose errors getter throws', () => errorWith('errors')],
  ['an Error whose cause getter throws', () => errorWith('cause')],
  ['an Error whose errors is a revoked Proxy', () => Object.assign(new Error(CANARY), { errors: revoked() })],
  ['an Error whose errors hold a throwing getter', () => Object.assign(new AggregateError([], CANARY), { errors: [Object.defineProperty({}, 'x', canaryGetter)] })],
  ['an Error whose prototype chain is a Proxy', () => Object.setPrototypeOf(new Error(CANARY), new Proxy(Error.prototype, trapAll))],
  ['an AggregateError', () => new AggregateError([new Error('first'), 'second', new TypeError('third')], 'many failed')],
  ['a cause chain', causeChain],
  ['a circular cause', () => { const a = new Error('a'); const b = new Error('b', { cause: a }); (a as { cause?: unknown }).cause = b; return a }],
  ['a 2 MB message', () => new Error(CANARY + 'm'.repeat(2 * 1024 * 1024))],
  ['a 2 MB string', () => CANARY + 's'.repeat(2 * 1024 * 1024)],
  ['a pending Promise', () => new Promise(() => {})],
  ['a rejected Promise', () => Promise.reject(new Error(`inner rejection ${CANARY}`))],
  ['a rejected Promise with a hostile constructor', () => hostilePromise('configurable')],
  ['a rejected Promise with a non-configurable hostile constructor', () => hostilePromise('non-configurable')],
  ['a rejected Promise with a hostile species', () => hostilePromise('species')],
  ['an array of a million items', () => new Array(1_000_000).fill(CANARY)],
  ['an object with a million keys', () => Object.fromEntries(Array.from({ length: 1_000_000 }, (_, i) => [`k${i}`, i]))],
  ['an Error with a huge property', () => Object.assign(new Error('big'), { payload: CANARY + 'p'.repeat(5_000_000) })],
  ['an Error carrying a 954 KB body', () => Object.assign(new Error('body'), { body: { data: CANARY + 'b'.repeat(954_000) } })],
  ['an Error carrying a small numeric structure', () => Object.assign(new Error('numbers'), { cube: Array.from({ length: 60 }, () => Array.from({ length: 60 }, () => Array.from({ length: 60 }, () => 123456789))) })],
  ['an Error with shared references everywhere', () => { const shared = { blob: CANARY + 'x'.repeat(1000) }; return Object.assign(new Error('shared'), { list: Array(20).fill(Array(20).fill(shared)) }) }],
  ['an Error with a getter property that throws', () => Object.defineProperty(new Error('getter prop'), 'extra', canaryGetter)],
  ['an Error with a 4xx status whose getter throws', () => Object.defineProperty(new Error(CANARY), 'statusCode', canaryGetter)]
]

type Place = 'sync handler' | 'async handler' | 'onRequest hook' | 'preHandler hook' | 'onSend hook'

function mount (app: FastifyInstance, place: Place, current: () => unknown): void {
  switch (place) {
    case 'sync handler':
      app.get('/throw', () => { throw current() })
      break
    case 'async handler':
      app.get('/throw', async () => { await Promise.resolve(); throw current() })
      break
    case 'onRequest hook':
      app.get('/throw', { onRequest: async () => { throw current() } }, async () => 'unreached')
      break
    case 'preHandler hook':
      // a callback hook: Fastify takes `done(undefined)` for success, so a falsy value is passed wrapped
      app.get('/throw', {
        preHandler: (_request, _reply, done) => {
          const value = current()
          done((value || Object.assign(new Error('falsy'), { thrown: value })) as Error)
        }
      }, async () => 'unreached')
      break
    case 'onSend hook':
      // fails the route's own reply, not the error reply (a hook failing twice is the double-fault test)
      app.get('/throw', { onSend: async (_request, reply) => { if (reply.statusCode === 200) throw current() } }, async () => 'fine')
      break
  }
}

for (const place of ['sync handler', 'async handler', 'onRequest hook', 'preHandler hook', 'onSend hook'] as const) {
  test(`hostile throwables from a ${place}`, async (t) => {
    const { app, panics, total, lines } = await buildApp()
    t.teardown(() => app.close())
    let current: () => unknown = () => undefined
    mount(app, place, () => current())
    app.get('/ok', async () => 'ok')
    messageReads = 0

    let expected = 0
    for (const [name, make] of values) {
      current = make
      const started = performance.now()
      const res = await app.inject('/throw')
      const elapsed = performance.now() - started
      expected++
      const id = res.headers['x-request-id'] as string
      t.equal(res.statusCode, 500, name)
      t.equal(res.body, genericBody(id), `${name}: the generic body`)
      t.notMatch(JSON.stringify(res.headers), CANARY, `${name}: no canary in the headers`)
      const mine = panics().filter((line) => line.reqId === id)
      t.equal(mine.length, 1, `${name}: exactly one line`)
      const size = Buffer.byteLength(JSON.stringify(mine[0]))
      t.ok(size <= 64 * 1024, `${name}: the line is bounded (${size} bytes)`)
      t.equal(await total(), expected, `${name}: exactly one count`)
      t.equal((await app.inject('/ok')).statusCode, 200, `${name}: still serving`)
      if (elapsed > 20) t.comment(`${place}, ${name}: ${elapsed.toFixed(1)} ms for the request`)
    }

    // the plugin never runs it; V8 does, once, when it formats the stack the line carries
    t.ok(messageReads <= 1, `a message accessor is run at most once (${messageReads})`)
    const byMessage = (text: string) => panics().find((line) => String(line.err?.message).includes(text))
    t.match(byMessage('"a string')?.err, { code: 'FST_RECOVERY_NON_ERROR', valueType: 'string' })
    t.match(byMessage('12345678901234567890n')?.err, { valueType: 'bigint' })
    t.match(byMessage(`Symbol(${CANARY})`)?.err, { valueType: 'symbol' })
    t.match(byMessage('[Proxy]')?.err, { valueType: 'object' }, 'a Proxy is described without running any of its traps')
    t.match(byMessage('level 20')?.err?.message, /^level 20: level 19: .*: level 12/, 'a cause chain is followed, bounded')
    t.match(byMessage('many failed')?.err, { type: 'AggregateError', aggregateErrors: [{ message: 'first' }, { type: 'string', message: /"second"/ }, { type: 'TypeError' }] })
    t.match(byMessage('mmmm')?.err?.message, /truncated, 2097163 chars/, 'a huge message is truncated')
    t.match(byMessage('"CANARY-7f3assss')?.err?.message, /truncated/)
    t.match(byMessage('[Promise]')?.err, { valueType: 'object' })
    t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0, 'the plugin itself never failed')
    t.equal(lines.filter((line) => line.level >= 50 && line.msg !== 'panic recovered').length, 0, 'no other error lines')
  })
}

// Client and service errors whose parts are hostile: never the default handler, never the canary
// from a part that is not the message; a failure while sending one is a panic.
const passThroughValues: Array<[string, () => unknown]> = [
  ['a 404 whose code is a Symbol', () => Object.assign(new Error('not found'), { statusCode: 404, code: Symbol(CANARY) })],
  ['a 400 whose code cannot be turned into a string', () => Object.assign(new Error('bad'), { statusCode: 400, code: { toString () { throw new Error(CANARY) } } })],
  ['a 503 whose code is an object', () => Object.assign(new Error(CANARY), { statusCode: 503, code: { [Symbol.toPrimitive] () { throw new Error(CANARY) } } })],
  ['a 503 whose message is a getter', () => Object.defineProperty(Object.assign(new Error('x'), { statusCode: 503 }), 'message', canaryGetter)],
  ['a 429 whose headers getter throws', () => Object.defineProperty(Object.assign(new Error('slow'), { statusCode: 429 }), 'headers', canaryGetter)],
  ['a 429 whose headers are a revoked Proxy', () => Object.assign(new Error('slow'), { statusCode: 429, headers: revoked() })],
  ['a 429 whose header values are objects', () => Object.assign(new Error('slow'), { statusCode: 429, headers: { 'x-a': { toString () { throw new Error(CANARY) } }, 'x-b': [{}] } })],
  ['a 404 Error whose expose getter throws', () => Object.defineProperty(Object.assign(new Error('gone'), { statusCode: 404 }), 'expose', canaryGetter)],
  ['a plain 422 object whose getter throws while serializing', () => Object.defineProperty({ statusCode: 422 }, 'detail', canaryGetter)],
  ['a plain 409 object with a BigInt', () => ({ statusCode: 409, big: 10n, note: CANARY })],
  ['a plain 400 object that is circular', () => { const value: Record<string, unknown> = { statusCode: 400, note: CANARY }; value.self = value; return value }],
  ['a plain 400 object whose toJSON throws', () => ({ statusCode: 400, toJSON () { throw new Error(CANARY) } })]
]

test('hostile client and service errors: their status, or a counted generic 500; never the default handler', async (t) => {
  const { app, panics, total, lines } = await buildApp()
  t.teardown(() => app.close())
  let current: () => unknown = () => undefined
  app.get('/throw', async () => { throw current() })
  app.get('/ok', async () => 'ok')
  let expected = 0
  for (const [name, make] of passThroughValues) {
    current = make
    const res = await app.inject('/throw')
    t.notMatch(res.body, CANARY, `${name}: no canary in the body`)
    t.notMatch(JSON.stringify(res.headers), CANARY, `${name}: no canary in the headers`)
    if (res.statusCode === 500) {
      expected++
      t.equal(res.body, genericBody(res.headers['x-request-id'] as string), `${name}: failed while sending, the generic 500`)
    } else {
      t.ok(res.statusCode >= 400 && res.statusCode < 600, `${name}: its status ${res.statusCode}`)
      t.notOk('x-request-id' in res.headers, `${name}: not a panic reply`)
    }
    t.equal(await total(), expected, `${name}: counted only when it became a panic`)
    t.equal(panics().length, expected)
    t.equal((await app.inject('/ok')).statusCode, 200, `${name}: still serving`)
  }
  t.ok(expected >= 4, `${expected} of them could not be sent and became panics`)
  t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0)
})

test('request ids genReqId cannot make a string of: the generic 500, one line, one count', async (t) => {
  const ids: unknown[] = [
    { toString () { throw new Error(CANARY) } },
    Object.create(null),
    { [Symbol.toPrimitive] () { throw new Error(CANARY) } },
    Symbol('id')
  ]
  let next = 0
  const { app, panics, total, lines } = await buildApp({}, { genReqId: () => ids[next++] as string })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error(`route ${CANARY}`) })
  for (let i = 0; i < ids.length; i++) {
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500)
    t.notMatch(res.body, CANARY)
    t.equal(res.json().message, 'Internal Server Error')
    t.type(res.json().requestId, 'string')
    t.equal(panics().length, i + 1)
    t.equal(await total(), i + 1)
  }
  t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0)
})
