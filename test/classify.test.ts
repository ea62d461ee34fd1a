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

test('status is used when statusCode is not an error status', async (t) => {
  t.equal(statusOf(Object.assign(new Error('x'), { status: 409 })), 409)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 200, status: 409 })), 409)
  t.equal(statusOf(Object.assign(new Error('x'), { statusCode: 403, status: 409 })), 403)
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
