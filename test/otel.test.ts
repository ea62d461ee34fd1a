import { test } from 'tap'
import Fastify from 'fastify'
import FastifyOtelInstrumentation from '@fastify/otel'
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
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
  app.get('/typed', async () => { throw new TypeError('total of undefined') })
  app.get('/string', async () => { throw 'a string' }) // eslint-disable-line no-throw-literal
  app.get('/client', async () => { throw Object.assign(new Error('not found'), { statusCode: 404 }) })
  app.get('/reported', async (request) => { app.recovery.report(new RangeError('caught'), { request }); return 'fine' })
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

// Contract §17: OpenTelemetry's conventions for failed operations: status Error and `error.type`,
// the error's type, never its message; `_OTHER` for a value that is not an Error.
test('a panic sets error.type on the request\'s server span; a client error, a report and a success do not', async (t) => {
  const app = await tracedApp()
  t.teardown(() => app.close())
  const requestSpan = async (url: string): Promise<ReturnType<typeof exporter.getFinishedSpans>[number] | undefined> => {
    exporter.reset()
    await app.inject(url)
    return exporter.getFinishedSpans().find((span) => span.name === 'request')
  }
  for (const [url, type] of [['/boom', 'Error'], ['/typed', 'TypeError'], ['/string', '_OTHER']]) {
    const span = await requestSpan(url)
    t.equal(span?.kind, SpanKind.SERVER, `${url}: @fastify/otel's request span is the server span`)
    t.equal(span?.attributes['error.type'], type, `${url}: error.type ${type}`)
    t.equal(span?.status.code, SpanStatusCode.ERROR)
    t.notMatch(JSON.stringify(span?.attributes), /the failure|total of undefined|a string/, 'no message in the attributes')
  }
  for (const url of ['/ok', '/client', '/reported']) {
    t.notOk('error.type' in ((await requestSpan(url))?.attributes ?? {}), `${url}: no error.type`)
  }
})

test('the active server span is marked when there is no request span of @fastify/otel', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: false })
  const tracer = provider.getTracer('test')
  app.get('/boom', async () => { throw new Error('x') })
  await app.ready()
  exporter.reset()
  // the span an HTTP server instrumentation would start for the request, active while it runs
  const span = tracer.startSpan('GET /boom', { kind: SpanKind.SERVER })
  // (light-my-request starts the request when it is awaited: inside the span's context)
  await context.with(trace.setSpan(context.active(), span), async () => { await app.inject('/boom') })
  span.end()
  const [finished] = exporter.getFinishedSpans()
  t.equal(finished.attributes['error.type'], 'Error')
  t.equal(finished.status.code, SpanStatusCode.ERROR)
  // an INTERNAL span active instead: left alone
  const internal = tracer.startSpan('work', { kind: SpanKind.INTERNAL })
  await context.with(trace.setSpan(context.active(), internal), async () => { await app.inject('/boom') })
  internal.end()
  t.notOk('error.type' in exporter.getFinishedSpans()[1].attributes)
})

test('without @opentelemetry/api installed: nothing is loaded, the panic is answered as ever', async (t) => {
  const { spawn } = await import('node:child_process')
  const { once } = await import('node:events') as unknown as { once: (emitter: unknown, name: string) => Promise<unknown[]> }
  const child = spawn(process.execPath, [...process.execArgv, '-e', `
    const Module = require('node:module')
    const resolve = Module._resolveFilename
    let asked = 0
    // the optional peer is not installed, as far as the plugin can tell (prom-client 15 depends on
    // it, so it is there whenever prom-client is: what matters is when the plugin asks for it)
    Module._resolveFilename = function (request, parent, ...rest) {
      if (request === '@opentelemetry/api' && /span\\.ts$/.test(parent?.filename ?? '')) { asked++; const error = new Error('Cannot find module'); error.code = 'MODULE_NOT_FOUND'; throw error }
      return resolve.call(this, request, parent, ...rest)
    }
    const app = require('fastify')()
    app.register(require(${JSON.stringify(require.resolve('../index.ts'))}), { metrics: false })
    app.get('/ok', async () => 'ok')
    app.get('/boom', async () => { throw new Error('x') })
    ;(async () => {
      await app.inject('/ok')
      const afterSuccess = asked
      const first = await app.inject('/boom')
      const second = await app.inject('/boom')
      console.log(JSON.stringify({ afterSuccess, asked, statuses: [first.statusCode, second.statusCode] }))
    })()
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  await once(child, 'exit')
  t.same(JSON.parse(stdout), { afterSuccess: 0, asked: 1, statuses: [500, 500] }, 'not looked for on a success; looked for once, at the first panic')
})

test('a server span whose isRecording, setAttribute or setStatus throws stops neither the custom handler, the channel, the line nor the count', async (t) => {
  const { channel } = await import('node:diagnostics_channel')
  const { capturePanics } = await import('../testing')
  for (const method of ['isRecording', 'setAttribute', 'setStatus'] as const) {
    const lines: Array<Record<string, any>> = []
    const registry = new Registry()
    const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
    t.teardown(() => app.close())
    let asked = 0
    await app.register(recovery, { metrics: { registry }, handler: () => { asked++; return { statusCode: 503, body: { chosen: true } } } })
    app.get('/boom', async () => { throw new Error('boom') })
    await app.ready()
    const published: unknown[] = []
    const onPanic = (message: unknown): void => { published.push(message) }
    channel('fastify-recovery.panic').subscribe(onPanic)
    const captured = capturePanics(app)
    // a tracer's span, broken in one method, active as the request's server span
    const broken = (): never => { throw new Error(`broken ${method}`) }
    const span: Record<string, unknown> = { kind: SpanKind.SERVER, isRecording: () => true, setAttribute: () => undefined, setStatus: () => undefined, [method]: broken }
    // (light-my-request starts the request when it is awaited: inside the span's context)
    const res = await context.with(trace.setSpan(context.active(), span as any), async () => await app.inject('/boom'))
    channel('fastify-recovery.panic').unsubscribe(onPanic)
    captured.stop()
    t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 503, body: '{"chosen":true}' }, `${method}: the custom handler chose the reply`)
    t.equal(asked, 1)
    t.equal(lines.filter((line) => line.msg === 'panic recovered').length, 1, `${method}: one line`)
    t.match(lines.filter((line) => line.msg === 'recovery failed'), [{ err: { message: `broken ${method}` } }], `${method}: the tracer's failure is on record`)
    t.equal((await registry.getSingleMetric('fastify_panics_total')?.get())?.values.reduce((sum, { value }) => sum + value, 0), 1, `${method}: one count`)
    t.equal(published.length, 1, `${method}: one channel message`)
    t.equal(captured.panics.length, 1, `${method}: the test kit saw it`)
  }
})
