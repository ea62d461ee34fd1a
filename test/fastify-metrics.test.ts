import { test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import metricsPlugin from 'fastify-metrics'
import { Counter, Gauge, Registry, register } from 'prom-client'
import { counterValue, recovery } from './helper'

// fastify-metrics shares prom-client's global registry, and `clearRegisterOnInit: true` empties it
// when it registers. The panic counter must survive that, in either order.

async function scrape (app: FastifyInstance): Promise<string> {
  return (await app.inject('/metrics')).body
}

for (const order of ['the plugin first', 'fastify-metrics first'] as const) {
  for (const clearRegisterOnInit of [true, false]) {
    test(`fastify-metrics (clearRegisterOnInit: ${clearRegisterOnInit}), ${order}: the counter is served and counts`, async (t) => {
      register.clear()
      const app = Fastify()
      t.teardown(async () => { await app.close(); register.clear() })
      const options = { endpoint: '/metrics', clearRegisterOnInit, defaultMetrics: { enabled: false } }
      if (order === 'the plugin first') {
        await app.register(recovery)
        await app.register(metricsPlugin, options)
      } else {
        await app.register(metricsPlugin, options)
        await app.register(recovery)
      }
      app.get('/boom', async () => { throw new Error('x') })
      await app.ready()
      t.match(await scrape(app), /fastify_panics_total\{method="GET",route="\/boom",source="request"\} 0/, 'the zero series is served')
      t.equal((await app.inject('/boom')).statusCode, 500)
      const text = await scrape(app)
      t.match(text, /fastify_panics_total\{method="GET",route="\/boom",source="request"\} 1/)
      t.match(text, /http_request_duration_seconds_count\{method="GET",route="\/boom",status_code="500"\} 1/, 'fastify-metrics saw the 500')
    })
  }
}

test('a registry cleared after the plugin registered: the counter is put back at ready, its counts kept', async (t) => {
  const registry = new Registry()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: { registry } })
  registry.clear()
  app.get('/boom', async () => { throw new Error('x') })
  await app.ready()
  await app.inject('/boom')
  t.equal(await counterValue(registry, { route: '/boom' }), 1)
})

test('cleared, then a compatible counter registered in its place: the plugin counts into that one', async (t) => {
  const registry = new Registry()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: { registry } })
  registry.clear()
  const replacement = new Counter({ name: 'fastify_panics_total', help: 'someone else\'s', labelNames: ['source', 'route', 'method'], registers: [registry] })
  app.get('/boom', async () => { throw new Error('x') })
  await app.ready()
  await app.inject('/boom')
  t.equal((await replacement.get()).values.find((value) => value.labels.route === '/boom' && value.value === 1)?.value, 1)
})

test('cleared, then an incompatible metric of that name: ready fails with a clear error', async (t) => {
  const registry = new Registry()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: { registry } })
  registry.clear()
  new Gauge({ name: 'fastify_panics_total', help: 'not a counter', registers: [registry] }) // eslint-disable-line no-new
  await t.rejects(async () => { await app.ready() }, { code: 'FST_RECOVERY_METRIC_CONFLICT', message: /not a counter with labels method, route, source \(gauge with labels none\)/ })
})
