import { test } from 'tap'
import Fastify, { type FastifyServerOptions } from 'fastify'
import pino from 'pino'
import ecsFormat from '@elastic/ecs-pino-format'
import { Registry } from 'prom-client'
import { buildApp, genericBody, recovery } from './helper'

// Contract §6: the line's `err` is handed to the logger as an Error, so the logger's own `err`
// serializer and formatters decide its shape.

async function appWith (logger: FastifyServerOptions['logger']): Promise<{ lines: Array<Record<string, any>>, request: (url: string) => Promise<void> }> {
  const app = Fastify({ logger })
  await app.register(recovery, { metrics: { registry: new Registry() } })
  app.get('/boom', async () => {
    throw Object.assign(new TypeError('cannot read total', { cause: new Error('db down') }), { code: 'E_TOTAL', password: 'hunter2', orderId: 7 })
  })
  await app.ready()
  return { lines: [], request: async (url) => { await app.inject(url); await app.close() } }
}

function collect (): { lines: Array<Record<string, any>>, stream: { write: (line: string) => void } } {
  const lines: Array<Record<string, any>> = []
  return { lines, stream: { write: (line) => { lines.push(JSON.parse(line)) } } }
}

test('pino as Fastify configures it: the standard err shape, cause folded, secrets redacted', async (t) => {
  const { lines, stream } = collect()
  const { request } = await appWith({ level: 'info', stream })
  await request('/boom')
  const line = lines.find((entry) => entry.msg === 'panic recovered')
  t.match(line?.err, {
    type: 'TypeError',
    message: 'cannot read total: db down',
    stack: /^TypeError: cannot read total\n {4}at [\s\S]*caused by: Error: db down/,
    code: 'E_TOTAL',
    orderId: 7,
    password: '[redacted]'
  })
})

test('a custom err serializer receives an Error and keeps it', async (t) => {
  const { lines, stream } = collect()
  const received: unknown[] = []
  const { request } = await appWith({
    level: 'info',
    stream,
    serializers: { err: (error: Error) => { received.push(error); return { ...pino.stdSerializers.err(error), service: 'api' } } }
  })
  await request('/boom')
  const line = lines.find((entry) => entry.msg === 'panic recovered')
  t.ok(received.some((error) => error instanceof Error && error.message === 'cannot read total'), 'the serializer got an Error')
  t.match(line?.err, { service: 'api', type: 'TypeError', message: 'cannot read total: db down', code: 'E_TOTAL', password: '[redacted]' })
})

test('@elastic/ecs-pino-format writes ECS error.* fields', async (t) => {
  const { lines, stream } = collect()
  const { request } = await appWith({ level: 'info', stream, ...ecsFormat() })
  await request('/boom')
  const line = lines.find((entry) => entry.message === 'panic recovered')
  t.ok(line, 'the line, with ECS `message`')
  t.match(line?.error, { type: 'TypeError', message: 'cannot read total', stack_trace: /^TypeError: cannot read total\n {4}at / })
  t.notOk('err' in (line ?? {}), 'no err object beside error.*')
  t.equal(line?.['log.level'], 'error')
})

test('pino\'s redact option still applies to the line', async (t) => {
  const { lines, stream } = collect()
  const { request } = await appWith({ level: 'info', stream, redact: ['err.orderId', 'panic.route'] })
  await request('/boom')
  const line = lines.find((entry) => entry.msg === 'panic recovered')
  t.equal(line?.err?.orderId, '[Redacted]')
  t.equal(line?.panic?.route, '[Redacted]')
  t.equal(line?.err?.message, 'cannot read total: db down')
})

test('a logger without an err serializer writes the copy as JSON in pino\'s shape', async (t) => {
  const written: Array<Record<string, any>> = []
  const logger: Record<string, unknown> = { level: 'info' }
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace']) {
    logger[level] = (object: Record<string, unknown>, msg: string) => { written.push({ msg, ...JSON.parse(JSON.stringify(object)) }) }
  }
  logger.child = () => logger
  const app = Fastify({ loggerInstance: logger as never })
  await app.register(recovery, { metrics: false })
  app.get('/boom', async () => { throw Object.assign(new Error('plain logger', { cause: new Error('inner') }), { token: 'abc' }) })
  await app.inject('/boom')
  await app.close()
  t.match(written.find((entry) => entry.msg === 'panic recovered')?.err, {
    type: 'Error', message: 'plain logger: inner', stack: /caused by: Error: inner/, token: '[redacted]'
  })
})

test('a request whose logger cannot be used: the line is written through the instance\'s logger, never dropped', async (t) => {
  const { app, lines, panics, total } = await buildApp()
  t.teardown(() => app.close())
  app.get('/getter', { onRequest: async (request) => { Object.defineProperty(request, 'log', { get () { throw new Error('log getter') } }) } }, async () => {
    throw new Error('boom behind a broken logger')
  })
  const throwing = { ...app.log, error () { throw new Error('the request logger fails') }, isLevelEnabled: () => true }
  app.get('/method', { onRequest: async (request) => { Object.defineProperty(request, 'log', { value: throwing }) } }, async () => {
    throw new Error('boom with a failing logger')
  })
  app.get('/none', { onRequest: async (request) => { Object.defineProperty(request, 'log', { value: undefined }) } }, async () => {
    throw new Error('boom without a logger')
  })
  app.get('/ok', async () => 'still serving')
  for (const url of ['/getter', '/method', '/none']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500, url)
    t.equal(res.body, genericBody(res.headers['x-request-id'] as string))
  }
  t.match(panics(), [{ err: { message: 'boom behind a broken logger' } }, { err: { message: 'boom with a failing logger' } }, { err: { message: 'boom without a logger' } }], 'every line, through the instance\'s logger')
  t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0, 'not a failure of the plugin')
  t.equal(await total(), 3)
  t.equal((await app.inject('/ok')).body, 'still serving')
})
