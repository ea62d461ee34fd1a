import { test } from 'tap'
import { runInNewContext } from 'node:vm'
import { ENGINE_STACK_GETTERS, GETTER, stackOf, UNFORMATTABLE_STACK } from '../lib/safe-read'
import { buildApp } from './helper'

// Contract §6: the stack is read once, through the engine only. Since V8 12 (Node 22) `stack` is an
// own accessor of every Error (a data property on Node 20): V8's own getter is read, any other
// accessor is the value's and never runs. The outcome is the same on every Node.

const kind = Object.getOwnPropertyDescriptor(new Error('x'), 'stack')?.get === undefined ? 'a data property' : 'an accessor'

test(`the engine's stack is read (${process.version}: \`stack\` is ${kind})`, async (t) => {
  const error = new TypeError('the stack of this test')
  const stack = stackOf(error)
  t.type(stack, 'string')
  t.match(stack, /^TypeError: the stack of this test\n {4}at .*stack\.test\.ts:\d+:\d+/)
  t.equal(stackOf(error), stack, 'the same text on a second read')

  // errors made by Node's own modules, and objects given a stack by Error.captureStackTrace
  let internal: unknown
  try {
    Buffer.alloc(-1)
  } catch (failure) {
    internal = failure
  }
  t.match(stackOf(internal as object), /^RangeError \[ERR_OUT_OF_RANGE\]: /)
  const captured = {}
  Error.captureStackTrace(captured)
  t.match(stackOf(captured), /^Error\n {4}at /)
  // inherited from an error on the prototype chain, as a plain read would see it
  t.match(stackOf(Object.create(new Error('inherited'))), /^Error: inherited\n/)
  // a stack assigned by hand (a deserialized remote error)
  t.equal(stackOf(Object.assign(new Error('remote'), { stack: 'RemoteError: remote\n    at far (/srv/app.js:1:1)' })), 'RemoteError: remote\n    at far (/srv/app.js:1:1)')
})

test('a getter known as the engine\'s is read once, with the error as its receiver', async (t) => {
  // on Node 20 no getter is the engine's (a data property): a stand-in takes the same path there
  const calls: unknown[] = []
  const standIn = function (this: unknown): string { calls.push(this); return 'Error: engine-formatted' }
  ;(ENGINE_STACK_GETTERS as Set<unknown>).add(standIn)
  t.teardown(() => { (ENGINE_STACK_GETTERS as Set<unknown>).delete(standIn) })
  const error = Object.defineProperty(new Error('x'), 'stack', { get: standIn })
  t.equal(stackOf(error), 'Error: engine-formatted')
  t.same(calls, [error])
})

test('any other accessor is never run; a Proxy is never looked into; no stack at all', async (t) => {
  let runs = 0
  const own = Object.defineProperty(new Error('x'), 'stack', { get () { runs++; return 'forged' } })
  t.equal(stackOf(own), GETTER)
  // a getter that looks like the engine's (a native function of no name) is not the engine's
  const forge = (): string => { runs++; return 'forged' }
  const bound = forge.bind(null)
  Object.defineProperty(bound, 'name', { value: '' })
  t.equal(stackOf(Object.defineProperty(new Error('y'), 'stack', { get: bound })), GETTER)
  class Inherited extends Error {}
  Object.defineProperty(Inherited.prototype, 'stack', { get () { runs++; return 'forged' } })
  const plain = Object.create(Inherited.prototype) as Error
  t.equal(stackOf(plain), GETTER, 'an accessor on the prototype')
  t.equal(runs, 0)

  t.equal(stackOf(new Proxy(new Error('z'), {})), undefined)
  t.equal(stackOf(Object.create(new Proxy({}, { get () { runs++; return 'trap' } }))), undefined, 'a Proxy on the chain')
  t.equal(stackOf(Object.create(Error.prototype)), undefined, 'an object with no stack anywhere')
  let deep: object = {}
  for (let i = 0; i < 40; i++) deep = Object.create(deep)
  t.equal(stackOf(deep), undefined, 'a chain too long to walk')
  t.equal(runs, 0)
})

test('a stack that cannot be formatted is a marker, never an exception', async (t) => {
  const prepare = Error.prepareStackTrace
  t.teardown(() => { Error.prepareStackTrace = prepare })
  const error = new Error('unformatted')
  Error.prepareStackTrace = () => { throw new Error('prepareStackTrace fails') }
  t.equal(stackOf(error), UNFORMATTABLE_STACK)
  Error.prepareStackTrace = prepare
  // formatting reads the error's `name`: when that throws, so does the engine
  const named = Object.defineProperty(new Error('named'), 'name', { get () { throw new Error('name getter') } })
  t.equal(stackOf(named), UNFORMATTABLE_STACK)
})

test('an error of another realm (vm): its stack is another realm\'s getter on Node 22+, never run', async (t) => {
  const foreign = runInNewContext('new Error("from a vm context")') as Error
  const stack = stackOf(foreign)
  if (Object.getOwnPropertyDescriptor(foreign, 'stack')?.get === undefined) t.match(stack, /^Error: from a vm context/, 'Node 20: a data property')
  else t.equal(stack, GETTER, 'Node 22+: not this realm\'s getter')
})

test('the panic line carries the stack on every Node, and so does the developer field', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async function routeThatThrows () { throw new Error('where is my stack') })
  await app.inject('/boom')
  t.match(panics()[0].err?.stack, /^Error: where is my stack\n {4}at (Object\.)?routeThatThrows \(.*stack\.test\.ts:\d+:\d+\)/)

  const environment = process.env.NODE_ENV
  process.env.NODE_ENV = 'development'
  t.teardown(() => { process.env.NODE_ENV = environment })
  const developing = await buildApp({ development: true })
  t.teardown(() => developing.app.close())
  developing.app.get('/boom', async function routeThatThrows () { throw new Error('where is my stack') })
  const res = await developing.app.inject('/boom')
  t.match(res.json().development.stack, /^Error: where is my stack\n {4}at (Object\.)?routeThatThrows \(/)
})
