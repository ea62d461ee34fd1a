import { test } from 'tap'
import Fastify from 'fastify'
import { Counter, Gauge, Registry, register as globalRegistry } from 'prom-client'
import { buildApp, counterValue, recovery } from './helper'
import { LABEL_NAMES, PanicCounter } from '../lib/metrics'

test('labels: method, route template, source', async (t) => {
  const { app, count } = await buildApp()
  t.teardown(() => app.close())
  app.get('/users/:id/orders/:order', async () => { throw new Error('x') })
  app.post('/users', async () => { throw new Error('x') })
  await app.inject('/users/1/orders/2')
  await app.inject('/users/3/orders/4')
  await app.inject({ method: 'POST', url: '/users' })
  t.equal(await count({ method: 'GET', route: '/users/:id/orders/:order', source: 'request' }), 2)
  t.equal(await count({ method: 'POST', route: '/users', source: 'request' }), 1)
})

test('panics in the not-found handler are labelled __not_found__', async (t) => {
  const { app, count } = await buildApp()
  t.teardown(() => app.close())
  app.setNotFoundHandler(async () => { throw new Error('x') })
  await app.inject('/a/b/c?secret=1')
  await app.inject({ method: 'DELETE', url: '/zzz' })
  t.equal(await count({ method: 'GET', route: '__not_found__', source: 'request' }), 1)
  t.equal(await count({ method: 'DELETE', route: '__not_found__', source: 'request' }), 1)
})

test('after ready(), every route has its series at 0; not the HEAD routes Fastify adds, nor the metrics endpoint', async (t) => {
  const { app, registry } = await buildApp({ metrics: { endpoint: '/metrics' } })
  t.teardown(() => app.close())
  app.get('/a', async () => 'a')
  app.route({ method: ['POST', 'PUT'], url: '/b', handler: async () => 'b' })
  app.head('/only-head', async () => '')
  app.register(async (child) => { child.get('/c', async () => 'c') }, { prefix: '/child' })
  app.get('/boom', async () => { throw new Error('boom') })
  await app.ready()
  const text = await registry.metrics()
  for (const [method, route] of [['GET', '/a'], ['POST', '/b'], ['PUT', '/b'], ['HEAD', '/only-head'], ['GET', '/child/c']]) {
    t.match(text, `fastify_panics_total{method="${method}",route="${route}",source="request"} 0`, `${method} ${route}`)
  }
  t.notMatch(text, 'method="HEAD",route="/a"', 'the HEAD route of a GET route has no zero series')
  t.notMatch(text, 'route="/metrics"', 'the endpoint counts nothing of its own')
  // a panic in the HEAD route Fastify made is counted all the same
  t.equal((await app.inject({ method: 'HEAD', url: '/boom' })).statusCode, 500)
  t.match(await registry.metrics(), 'fastify_panics_total{method="HEAD",route="/boom",source="request"} 1')
})

test('exactly one increment per panic when the error reply fails too', async (t) => {
  // Without the plugin's guard, Fastify would run onError a second time on its fallback path.
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  let onError = 0
  app.addHook('onError', async () => { onError++ })
  app.addHook('onSend', async () => { throw new Error('every reply fails') })
  app.get('/p', async () => 'ok')
  const res = await app.inject('/p')
  t.equal(res.statusCode, 500)
  t.equal(onError, 1, 'the fallback path that runs onError again is never reached')
  t.equal(await total(), 1)
})

test('several instances share one registry and one counter', async (t) => {
  const registry = new Registry()
  const one = Fastify()
  const two = Fastify()
  await one.register(recovery, { metrics: { registry } })
  await two.register(recovery, { metrics: { registry } })
  t.teardown(() => Promise.all([one.close(), two.close()]))
  one.get('/p', async () => { throw new Error('x') })
  two.get('/p', async () => { throw new Error('x') })
  await one.inject('/p')
  await two.inject('/p')
  t.equal(await counterValue(registry, { route: '/p', method: 'GET' }), 2)
  t.equal(registry.getMetricsAsArray().length, 1)
})

test('the default registry is prom-client\'s global one', async (t) => {
  globalRegistry.removeSingleMetric('fastify_panics_total')
  t.teardown(() => globalRegistry.removeSingleMetric('fastify_panics_total'))
  const app = Fastify()
  await app.register(recovery)
  t.teardown(() => app.close())
  app.get('/p', async () => { throw new Error('x') })
  await app.inject('/p')
  t.equal(await counterValue(globalRegistry, { route: '/p' }), 1)
})

test('metrics: false counts nothing, registers nothing', async (t) => {
  globalRegistry.removeSingleMetric('fastify_panics_total')
  const app = Fastify()
  await app.register(recovery, { metrics: false })
  t.teardown(() => app.close())
  app.get('/p', async () => { throw new Error('x') })
  t.equal((await app.inject('/p')).statusCode, 500)
  await app.ready()
  t.equal(globalRegistry.getSingleMetric('fastify_panics_total'), undefined)
})

test('metrics.name renames the counter', async (t) => {
  const { app, registry } = await buildApp({ metrics: { name: 'api_panics_total' } })
  t.teardown(() => app.close())
  app.get('/p', async () => { throw new Error('x') })
  await app.inject('/p')
  t.equal(await counterValue(registry, { route: '/p' }, 'api_panics_total'), 1)
  t.equal(registry.getSingleMetric('fastify_panics_total'), undefined)
})

test('metrics.endpoint serves the registry in Prometheus text format', async (t) => {
  const { app, registry } = await buildApp({ metrics: { endpoint: '/metrics' } })
  t.teardown(() => app.close())
  const other = new Counter({ name: 'other_total', help: 'another metric', registers: [registry] })
  other.inc(3)
  app.get('/p', async () => { throw new Error('x') })
  await app.inject('/p')
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], registry.contentType)
  t.match(res.body, '# TYPE fastify_panics_total counter')
  t.match(res.body, 'fastify_panics_total{method="GET",route="/p",source="request"} 1')
  t.match(res.body, 'other_total 3')
})

test('a metric of that name that is not the panic counter is a clear error', async (t) => {
  const gauge = new Registry()
  new Gauge({ name: 'fastify_panics_total', help: 'x', registers: [gauge] }) // eslint-disable-line no-new
  const app = Fastify()
  await t.rejects(async () => { await app.register(recovery, { metrics: { registry: gauge } }) }, { code: 'FST_RECOVERY_METRIC_CONFLICT', name: 'FastifyError' })
  t.ok(await app.register(recovery, { metrics: { registry: gauge } }).then(() => false, (error) => error instanceof TypeError))

  const labels = new Registry()
  new Counter({ name: 'fastify_panics_total', help: 'x', labelNames: ['route'], registers: [labels] }) // eslint-disable-line no-new
  const app2 = Fastify()
  await t.rejects(async () => { await app2.register(recovery, { metrics: { registry: labels } }) }, /counter with labels route/)

  const unlabelled = new Registry()
  new Counter({ name: 'fastify_panics_total', help: 'x', registers: [unlabelled] }) // eslint-disable-line no-new
  await t.rejects(async () => { await Fastify().register(recovery, { metrics: { registry: unlabelled } }) }, /labels none/)
})

test('a compatible counter created beforehand is used, and counted into directly', async (t) => {
  const registry = new Registry()
  const own = new Counter({ name: 'fastify_panics_total', help: 'mine', labelNames: ['source', 'route', 'method'], registers: [registry] })
  const app = Fastify()
  await app.register(recovery, { metrics: { registry } })
  t.teardown(() => app.close())
  app.get('/p', async () => { throw new Error('x') })
  await app.inject('/p')
  const { values } = await own.get()
  t.same(values.filter((value) => value.value > 0).map((value) => [value.labels, value.value]), [[{ method: 'GET', route: '/p', source: 'request' }, 1]])
})

test('counts are exact in the text exposition, and survive the instance closing', async (t) => {
  const registry = new Registry()
  const app = Fastify()
  await app.register(recovery, { metrics: { registry } })
  app.get('/p', async () => { throw new Error('x') })
  for (let i = 0; i < 7; i++) await app.inject('/p')
  t.match(await registry.metrics(), 'fastify_panics_total{method="GET",route="/p",source="request"} 7')
  await app.inject('/p')
  await app.close()
  t.match(await registry.metrics(), 'fastify_panics_total{method="GET",route="/p",source="request"} 8')
})

test('the counter takes the PanicInfo fields LABEL_NAMES names; one not known is ""', async (t) => {
  const registry = new Registry()
  const counter = new PanicCounter(registry, 'fastify_panics_total')
  counter.inc({ source: 'reported' })
  counter.inc({ source: 'request', method: 'GET', route: '/a', ...{ fingerprint: 'not a label' } as object })
  t.equal(await counterValue(registry, { source: 'reported', method: '', route: '' }), 1)
  t.equal(await counterValue(registry, { source: 'request', method: 'GET', route: '/a' }), 1)
  const { values } = await (registry.getSingleMetric('fastify_panics_total') as Counter).get()
  t.same(values.map((value) => Object.keys(value.labels).sort()), [['method', 'route', 'source'], ['method', 'route', 'source']], 'only the label names')
  t.same([...LABEL_NAMES], ['method', 'route', 'source'])
})
