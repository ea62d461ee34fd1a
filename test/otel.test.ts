import { test } from 'tap'
import Fastify from 'fastify'
import FastifyOtelInstrumentation from '@fastify/otel'
import { SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { Registry } from 'prom-client'
import { recovery } from './helper'

// @fastify/otel traces every hook: the plugin must add nothing to a successful request's trace,
// and a panic's request span must say it failed.

const exporter = new InMemorySpanExporter()
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
provider.register()

async function tracedApp (): Promise<ReturnType<typeof Fastify>> {
  const instrumentation = new FastifyOtelInstrumentation()
  instrumentation.setTracerProvider(provider)
  const app = Fastify()
  await app.register(instrumentation.plugin())
  await app.register(recovery, { metrics: { registry: new Registry() } })
  app.get('/ok', async () => ({ ok: true }))
  app.get('/stream', async (_request, reply) => reply.type('text/plain').send(require('node:stream').Readable.from(['a', 'b'])))
  app.get('/boom', async () => { throw new Error('the failure') })
  return app
}

test('a successful request: no span of the plugin', async (t) => {
  const app = await tracedApp()
  t.teardown(() => app.close())
  for (const url of ['/ok', '/stream']) {
    exporter.reset()
    t.equal((await app.inject(url)).statusCode, 200)
    const spans = exporter.getFinishedSpans()
    t.ok(spans.length > 0, `${url}: the request is traced`)
    // the request and its handler, nothing else: no hook of the plugin's runs on a successful reply
    // (the handler span is named after the plugins registered in the route's scope, this one included)
    t.same(spans.map((span) => span.attributes['fastify.type'] ?? span.name).sort(), ['request', 'request-handler'], url)
  }
})

test('a panic: the request span has status ERROR and the 500', async (t) => {
  const app = await tracedApp()
  t.teardown(() => app.close())
  exporter.reset()
  t.equal((await app.inject('/boom')).statusCode, 500)
  const root = exporter.getFinishedSpans().find((span) => span.attributes['http.response.status_code'] !== undefined)
  t.equal(root?.attributes['http.response.status_code'], 500)
  t.equal(root?.status.code, SpanStatusCode.ERROR)
})
