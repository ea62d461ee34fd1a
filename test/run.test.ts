import { test } from 'tap'
import { buildApp, HostileSpecies, hostileRejection, watchUnhandledRejections } from './helper'

test('run resolves to the task\'s result, sync or async', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  t.equal(await app.recovery.run(() => 42), 42)
  t.equal(await app.recovery.run(async () => 'async'), 'async')
  t.same(await app.recovery.run(() => Promise.resolve({ ok: true })), { ok: true })
  t.equal(panics().length, 0)
})

test('a failing task resolves to undefined, never rejects; it is logged and counted', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  t.equal(await app.recovery.run(() => { throw new Error('sync task failed') }, { name: 'cleanup' }), undefined)
  t.equal(await app.recovery.run(async () => { throw new Error('async task failed') }), undefined)
  t.equal(await app.recovery.run(() => Promise.reject('a string')), undefined) // eslint-disable-line prefer-promise-reject-errors
  t.equal(await app.recovery.run('not a function' as never), undefined)
  const lines = panics()
  t.equal(lines.length, 4)
  t.match(lines[0], { msg: 'panic recovered', err: { message: 'sync task failed' }, panic: { source: 'background', method: '', route: '', task: 'cleanup' } })
  t.notOk('reqId' in lines[0])
  t.notOk('statusCode' in (lines[0].panic ?? {}))
  t.equal(lines[2].err?.message, 'A non-Error value was thrown: "a string"')
  t.equal(await count({ source: 'background', method: '', route: '' }), 4)
})

test('a task whose promise has a hostile constructor: its own rejection is recorded, never left unhandled', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  const noUnhandledRejections = watchUnhandledRejections(t)
  t.equal(await app.recovery.run(() => hostileRejection('task failed')), undefined)
  t.equal(await app.recovery.run(() => HostileSpecies.reject(new Error('species task failed'))), undefined)
  t.equal(await app.recovery.run(() => hostileRejection('task failed', false)), undefined)
  await noUnhandledRejections()
  t.same(panics().map((line) => line.err?.message), [
    'task failed',
    'species task failed',
    'A promise was returned that cannot be awaited (its constructor cannot be read); its rejection is ignored'
  ])
  t.equal(panics()[2].err?.code, 'FST_RECOVERY_UNAWAITABLE')
  t.equal(await count({ source: 'background', method: '', route: '' }), 3)
})

test('a task started by a request is logged with its reqId and counted with its route', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  let done: Promise<unknown> = Promise.resolve()
  app.post('/orders/:id', async (request) => {
    done = app.recovery.run(async () => { throw new Error('email failed') }, { request, name: 'send-email' })
    return { accepted: true }
  })
  const res = await app.inject({ method: 'POST', url: '/orders/7' })
  t.equal(res.statusCode, 200, 'the request is not affected')
  t.equal(await done, undefined)
  const [line] = panics()
  t.equal(line.reqId, 'req-1')
  t.match(line.panic, { source: 'background', method: 'POST', route: '/orders/:id', task: 'send-email' })
  t.equal(await count({ source: 'background', method: 'POST', route: '/orders/:id' }), 1)
})

test('options whose getters throw do not make run reject', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  const options = { get request (): never { throw new Error('getter') } }
  t.equal(await app.recovery.run(() => { throw new Error('x') }, options as never), undefined)
  t.equal(panics().length, 1)
  t.equal(await app.recovery.run(() => { throw new Error('y') }, { name: 42 as never }), undefined)
  t.notOk('task' in (panics()[1].panic ?? {}))
})

// Contract §8: `run(sendReceipt())` — a promise started already, not a function — is awaited and its
// failure recorded (it used to record "task is not a function" and leave the real rejection
// unhandled: a crash under Node's default). Anything else that is not a function is recorded as it was.
test('a promise or thenable given instead of a function is awaited: its result, or its failure recorded', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  const noUnhandledRejections = watchUnhandledRejections(t)
  const sendReceipt = async (fail: boolean): Promise<string> => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    if (fail) throw new Error('smtp down')
    return 'sent'
  }
  t.equal(await app.recovery.run(sendReceipt(false)), 'sent')
  t.equal(await app.recovery.run(sendReceipt(true), { name: 'receipt' }), undefined)
  t.equal(await app.recovery.run(hostileRejection('hostile task promise')), undefined)
  // thenables: their `then` is called once, as `await` would
  let calls = 0
  const thenable = (settle: (resolve: (value: unknown) => void, reject: (reason: unknown) => void) => void): PromiseLike<unknown> =>
    ({ then: (resolve, reject) => { calls++; settle(resolve as (value: unknown) => void, reject as (reason: unknown) => void); return undefined as never } })
  t.equal(await app.recovery.run(thenable((resolve) => resolve('from a thenable'))), 'from a thenable')
  t.equal(await app.recovery.run(thenable((_resolve, reject) => reject(new Error('thenable rejected')))), undefined)
  t.equal(await app.recovery.run(thenable(() => { throw new Error('then threw') })), undefined)
  t.equal(calls, 3)
  // a `then` accessor is not run: the value is no thenable, and not a function either
  let getterRuns = 0
  const accessor = Object.defineProperty({}, 'then', { get () { getterRuns++; return () => {} } })
  t.equal(await app.recovery.run(accessor as never), undefined)
  t.equal(getterRuns, 0)
  await noUnhandledRejections()
  t.same(panics().map((line) => line.err?.message), ['smtp down', 'hostile task promise', 'thenable rejected', 'then threw', 'task is not a function'])
  t.match(panics()[0].panic, { source: 'background', task: 'receipt' })
  t.equal(await count({ source: 'background' }), 5)
})
