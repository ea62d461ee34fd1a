import { test, type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Counter, Registry } from 'prom-client'
import { buildApp, builtPlugin, recovery, runNode } from './helper'

// Contract §10: app.recovery.report records a failure the application caught itself — one line,
// one count with source="reported", the diagnostics channel — answers nothing, is synchronous,
// never throws, and works for any value.

test('without a request: one line and one count with method="" and route=""; the PanicInfo is returned', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  const error = new Error('queue message malformed')
  const info = app.recovery.report(error, { name: 'orders-consumer' })
  t.match(info, { error, value: error, source: 'reported', method: '', route: '', task: 'orders-consumer', fingerprint: /^[0-9a-f]{12}$/ })
  t.equal(panics().length, 1, 'written before report returned: it is synchronous')
  t.match(panics()[0], { level: 50, err: { message: 'queue message malformed' }, panic: { source: 'reported', method: '', route: '', task: 'orders-consumer' } })
  t.notOk('reqId' in panics()[0])
  t.equal(await count({ source: 'reported', method: '', route: '' }), 1)
})

test('with a request: its reqId, method and route; the request is not answered', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  app.get('/orders/:id', async (request) => {
    try {
      JSON.parse('{broken')
    } catch (error) {
      const info = app.recovery.report(error, { request })
      return { degraded: true, requestId: info.requestId }
    }
  })
  const res = await app.inject('/orders/7')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { degraded: true, requestId: 'req-1' })
  t.match(panics()[0], { reqId: 'req-1', err: { type: 'SyntaxError' }, panic: { source: 'reported', method: 'GET', route: '/orders/:id' } })
  t.notOk('statusCode' in (panics()[0].panic ?? {}), 'no status: nothing was answered')
  t.equal(await count({ source: 'reported', method: 'GET', route: '/orders/:id' }), 1)
})

test('with the process net on, the request of the current async context is the default', async (t) => {
  const { app, panics } = await buildApp({ process: true })
  t.teardown(() => app.close())
  app.get('/implicit', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1))
    app.recovery.report(new Error('caught deep down'))
    return 'ok'
  })
  await app.ready()
  await app.inject('/implicit')
  t.match(panics()[0], { reqId: 'req-1', panic: { source: 'reported', route: '/implicit' } })
})

test('any value, any options: never throws, one line and one count each', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  const values = [undefined, null, 'text', 42n, Symbol('s'), new Proxy({}, { get () { throw new Error('trap') } }),
    Object.defineProperty(new Error('x'), 'message', { get () { throw new Error('getter') } }), Promise.reject(new Error('p'))]
  const hostileOptions = Object.defineProperty({}, 'request', { get () { throw new Error('options getter') } })
  for (const value of values) {
    t.doesNotThrow(() => app.recovery.report(value))
    t.doesNotThrow(() => app.recovery.report(value, hostileOptions as never))
  }
  // one failure, one record: an object reported twice is recorded once; primitives cannot be told apart
  const objects = values.filter((value) => value !== null && (typeof value === 'object' || typeof value === 'function')).length
  t.equal(panics().length, (values.length - objects) * 2 + objects)
  t.equal(await count({ source: 'reported' }), (values.length - objects) * 2 + objects)
})

test('a request that is not a Fastify request (request.raw, a plain object, a Proxy) is left out, never a failure', async (t) => {
  const { app, panics, count, lines } = await buildApp()
  t.teardown(() => app.close())
  const hostileProto = Object.create(new Proxy({}, { getPrototypeOf () { throw new Error('trap') }, get () { throw new Error('trap') } }))
  app.get('/', async (request) => {
    const others = [request.raw, { id: 'forged', method: 'GET', log: null }, 'req-1', new Proxy(request, {}), hostileProto, Object.create(null)]
    for (const other of others) {
      t.doesNotThrow(() => app.recovery.report(new Error('caught'), { request: other as never }))
    }
    t.equal(await app.recovery.run(() => { throw new Error('task') }, { request: request.raw as never }), undefined)
    return 'still answered by the route'
  })
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'still answered by the route')
  t.equal(panics().length, 7)
  for (const line of panics()) {
    t.notOk('reqId' in line, 'without the request')
    t.match(line.panic, { method: '', route: '' })
  }
  t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0)
  t.equal(await count({ source: 'reported', method: '', route: '' }), 6)
  t.equal(await count({ source: 'background', method: '', route: '' }), 1)
})

test('a BullMQ-style worker loop reports each failed job and goes on', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  const jobs = [{ id: 1, data: 'ok' }, { id: 2, data: null }, { id: 3, data: 'ok' }, { id: 4, data: null }]
  const done: number[] = []
  const process = async (job: { id: number, data: string | null }): Promise<void> => {
    if (job.data === null) throw new TypeError(`job ${job.id} has no data`)
    done.push(job.id)
  }
  // the worker loop of the README recipe
  for (const job of jobs) {
    try {
      await process(job)
    } catch (error) {
      app.recovery.report(error, { name: 'send-receipts' })
    }
  }
  t.same(done, [1, 3])
  t.equal(panics().length, 2)
  t.equal(new Set(panics().map((line) => line.panic?.fingerprint)).size, 1, 'one failure, one fingerprint')
  t.equal(await count({ source: 'reported' }), 2)
})

// an app whose counter is the test's own, to be broken when the test says
async function withCounter (t: Test): Promise<{ app: FastifyInstance, lines: Array<Record<string, any>>, breakCounter: () => void }> {
  const lines: Array<Record<string, any>> = []
  const registry = new Registry()
  const counter = new Counter({ name: 'fastify_panics_total', help: 'h', labelNames: ['method', 'route', 'source'], registers: [registry] })
  const app = Fastify({ logger: { stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  await app.register(recovery, { metrics: { registry } })
  t.teardown(() => app.close())
  return { app, lines, breakCounter: () => { counter.inc = () => { throw new Error('the registry is broken') } } }
}

test('a registry that throws stops nothing else: the line is written, a `recovery failed` line says why it was not counted', async (t) => {
  const { app, lines, breakCounter } = await withCounter(t)
  await app.ready()
  breakCounter()
  const value = new Error('caught')
  const info = app.recovery.report(value)
  t.match(info, { value, source: 'reported', error: value })
  t.match(lines.find((line) => line.msg === 'panic recovered'), { err: { message: 'caught' }, panic: { source: 'reported' } })
  t.match(lines.find((line) => line.msg === 'recovery failed'), { err: { message: 'the registry is broken' } })
})

test('when recording itself fails, report still returns an answer and never throws', async (t) => {
  const { app, lines, count } = await buildApp()
  t.teardown(() => app.close())
  let info: unknown
  app.get('/broken', async (request) => {
    // a request the plugin cannot read: its route cannot be told
    Object.defineProperty(request, 'routeOptions', { get () { throw new Error('routeOptions getter') } })
    info = app.recovery.report(new Error('caught'), { request })
    return 'ok'
  })
  t.equal((await app.inject('/broken')).body, 'ok')
  t.match(info, { source: 'reported', error: { code: 'FST_RECOVERY_NOT_RECORDED' } })
  t.match(lines.filter((line) => line.msg === 'recovery failed'), [{ err: { message: 'routeOptions getter' }, panic: { source: 'reported' } }])
  t.equal(await count({ source: 'reported' }), 1, 'still counted once')
})

test('a request that cannot be read and a registry that throws: report still answers, and the line says why', async (t) => {
  const { app, lines, breakCounter } = await withCounter(t)
  let info: unknown
  app.get('/broken', async (request) => {
    Object.defineProperty(request, 'routeOptions', { get () { throw new Error('routeOptions getter') } })
    breakCounter()
    info = app.recovery.report(new Error('caught'), { request })
    return 'ok'
  })
  t.equal((await app.inject('/broken')).body, 'ok')
  t.match(info, { error: { code: 'FST_RECOVERY_NOT_RECORDED' } })
  t.match(lines.filter((line) => line.msg === 'recovery failed'), [{ err: { message: 'routeOptions getter' }, panic: { source: 'reported', route: '' } }])
})

test('one failure, one record per instance: the same Error reported to two apps is recorded by each, once', async (t) => {
  const one = await buildApp()
  const two = await buildApp()
  t.teardown(() => Promise.all([one.app.close(), two.app.close()]))
  const failure = Object.freeze(new Error('shared'))
  for (const { app } of [one, two, one, two]) app.recovery.report(failure)
  t.equal(one.panics().length, 1)
  t.equal(two.panics().length, 1)
  t.same(Object.getOwnPropertySymbols(failure), [], 'the value is untouched: no key added, frozen or not')
  t.same(Reflect.ownKeys(failure).sort(), ['message', 'stack'])
})

// The TC39 proposal "non-extensible applies to private": V8 has it behind a flag (Node 26), where
// adding a private field to a frozen object throws. One record per failure must not depend on it.
const NONEXTENSIBLE_PRIVATE = '--js-nonextensible-applies-to-private'

test('one failure, one record for frozen and sealed values where non-extensibility applies to private fields', async (t) => {
  if ((await runNode([NONEXTENSIBLE_PRIVATE, '-e', '0'])).code !== 0) {
    t.comment(`this Node's V8 (${process.versions.v8}) has no ${NONEXTENSIBLE_PRIVATE}: run on Node 26 or later (.ci/run does)`)
    return
  }
  const { code, stdout, stderr } = await runNode([NONEXTENSIBLE_PRIVATE, '-e', `
    const Fastify = require('fastify')
    const lines = []
    const app = Fastify({ logger: { level: 'info', stream: { write: (line) => { lines.push(JSON.parse(line)) } } } })
    let asked = 0
    app.register(require(${JSON.stringify(builtPlugin())}), { metrics: false, handler: () => { asked++ } })
    app.register(async (scope) => {
      // an application handler that reports what it was given, then hands it on
      scope.setErrorHandler((error, request) => { scope.recovery.report(error, { request }); throw error })
      scope.get('/frozen', async () => { throw Object.freeze(new Error('frozen failure')) })
      scope.get('/sealed', async () => { throw Object.seal({ sealed: true }) })
    })
    ;(async () => {
      const statuses = []
      for (const url of ['/frozen', '/sealed']) statuses.push((await app.inject(url)).statusCode)
      const failure = Object.preventExtensions(new Error('reported twice'))
      app.recovery.report(failure)
      app.recovery.report(failure)
      await new Promise((resolve) => setTimeout(resolve, 20))
      console.log(JSON.stringify({ statuses, asked, lines: lines.filter((line) => line.level >= 50).map((line) => [line.msg, line.panic?.source, line.err?.message]) }))
      await app.close()
    })()
  `], process.cwd())
  t.equal(code, 0, stderr)
  const outcome = JSON.parse(stdout)
  t.same(outcome.statuses, [500, 500])
  t.equal(outcome.asked, 2, 'the custom handler chose each reply: the plugin did not fail on the way')
  t.match(outcome.lines, [
    ['panic recovered', 'reported', 'frozen failure'],
    ['panic recovered', 'reported', /sealed/],
    ['panic recovered', 'reported', 'reported twice']
  ], 'one line each, no recovery failed line')
  t.equal(outcome.lines.length, 3)
})
