import { test } from 'tap'
import { PANIC_STATUS, statusOf } from '../lib/classify'

test('a numeric statusCode in 400-599 other than 500 is kept', async (t) => {
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 404 })), 404)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 400 })), 400)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 499 })), 499)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 503 })), 503)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 599 })), 599)
  t.equal(statusOf({ statusCode: 422, message: 'plain object' }), 422)
})

test('status is used when there is no statusCode; a statusCode that is present decides', async (t) => {
  t.equal(statusOf(Object.assign(new Error('x'), { status: 409 })), 409)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 403, status: 409 })), 403)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: undefined, status: 409 })), 409, 'undefined is absent')
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 200, status: 409 })), PANIC_STATUS, 'a statusCode that is no error status: a panic')
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: '409', status: 409 })), PANIC_STATUS)
})

test('a 4xx set on the reply before the error: a client error for an Error with no status of its own, never for a bug', async (t) => {
  t.equal(statusOf(new Error('not authenticated'), 401), 401)
  t.equal(statusOf(Object.assign(new Error('mine'), { code: 'E_AUTH' }), 403), 403)
  t.equal(statusOf(new Error('x'), 503), PANIC_STATUS, 'a 5xx set on the reply is no decision')
  t.equal(statusOf(new Error('x'), 200), PANIC_STATUS)
  t.equal(statusOf(new Error('x')), PANIC_STATUS, 'no reply status told: an application handler\'s own failure')
  class NotFound extends Error {}
  t.equal(statusOf(new NotFound('x'), 404), 404, 'a domain error of the application')
  // the engine's own types are bugs, subclasses and other realms included
  class Bug extends TypeError {}
  const { runInNewContext } = require('node:vm') as typeof import('node:vm')
  for (const error of [new TypeError('x'), new ReferenceError('x'), new RangeError('x'), new SyntaxError('x'), new EvalError('x'), new URIError('x'),
    new Bug('x'), runInNewContext('new TypeError("other realm")'), runInNewContext('new RangeError("other realm")')]) {
    t.equal(statusOf(error, 404), PANIC_STATUS, `${(error as Error).constructor.name}: a panic after reply.code(404)`)
  }
  // a status present but unusable is a panic whatever the reply says
  for (const statusCode of ['500', 404.5, -1, 200, null, Number.NaN]) {
    t.equal(statusOf(Object.assign(new Error('x'), { statusCode }), 404), PANIC_STATUS, `statusCode ${String(statusCode)}`)
  }
  t.equal(statusOf(Object.assign(new Error('x'), { status: 200 }), 404), PANIC_STATUS, 'status 200')
  t.equal(statusOf(Object.defineProperty(new Error('x'), 'statusCode', { get () { return 404 } }), 404), PANIC_STATUS, 'a getter: present, never run')
  // a class of another realm named like an engine type, but not the engine's
  const lookalike = runInNewContext('class TypeError extends Error {}; new TypeError("mine")')
  t.equal(statusOf(lookalike, 404), 404, 'an application class named TypeError is not the engine\'s')
  // its chain is read as data: a Proxy ends the walk, a prototype without a constructor is passed
  const behindProxy = Object.setPrototypeOf(new Error('x'), new Proxy(runInNewContext('TypeError.prototype'), {}))
  t.equal(statusOf(behindProxy, 404), 404)
  const anonymous = Object.setPrototypeOf(new Error('x'), Object.create(runInNewContext('TypeError.prototype'), { constructor: { value: undefined } }))
  t.equal(statusOf(anonymous, 404), PANIC_STATUS, 'found further up the chain')
})

test('everything else is a panic', async (t) => {
  const panics: unknown[] = [
    new Error('no status'),
    Object.assign(new Error('x'), { statusCode: 500 }),
    Object.assign(new Error('x'), { statusCode: 200 }),
    Object.assign(new Error('x'), { statusCode: 600 }),
    Object.assign(new Error('x'), { statusCode: 399 }),
    Object.assign(new Error('x'), { statusCode: '404' }),
    Object.assign(new Error('x'), { statusCode: 404.5 }),
    Object.assign(new Error('x'), { statusCode: Number.NaN }),
    undefined, null, 'string', 404, 404n, Symbol('s'), () => {}, {}, []
  ]
  for (const value of panics) t.equal(statusOf(value), PANIC_STATUS, String(typeof value))
})

test('a statusCode getter that throws makes a panic, it does not throw', async (t) => {
  const value = { get statusCode (): number { throw new Error('getter') } }
  t.equal(statusOf(value), PANIC_STATUS)
  const proxy = new Proxy({}, { get () { throw new Error('trap') } })
  t.equal(statusOf(proxy), PANIC_STATUS)
})

test('a function carrying a status is classified like an object', async (t) => {
  t.equal(statusOf(Object.assign(() => {}, { statusCode: 418 })), 418)
})
