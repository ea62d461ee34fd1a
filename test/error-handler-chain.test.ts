import { test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { Registry } from 'prom-client'
import { joinErrorHandlers } from '../lib/error-handler-chain'
import { FASTIFY_MAJOR, genericBody, recovery } from './helper'

// An application error handler at the root, set before or after the plugin, never stops the app
// from booting (Fastify 6 refuses a second setErrorHandler in a scope): the plugin joins Fastify's
// chain of error handlers behind the application's, which sees every error first, exactly as
// without the plugin; what it rethrows, sends as an Error or fails with is a panic.

const SECRET = 'CANARY-chain-5d1e'

// the shapes an application's root handler gives its 4xx, and the ways it lets an error through
function applicationHandler (error: Error & { validation?: unknown }, _request: FastifyRequest, reply: FastifyReply): unknown {
  if (error.validation !== undefined) return reply.code(400).send({ mine: true, message: error.message })
  switch (error.message) {
    case 'mapped': return reply.code(409).send({ mapped: true })
    case 'async mapped': return Promise.resolve({ asyncMapped: true })
    case 'resend': return reply.send(error)
    case 'return': return error
    case 'handler bug': return (error as unknown as { missing: { field: string } }).missing.field
    case 'reject': return Promise.reject(new Error(`handler rejects ${SECRET}`))
    default: throw error
  }
}

function routes (app: FastifyInstance): void {
  app.get('/validated', { schema: { querystring: { type: 'object', required: ['q'], properties: { q: { type: 'string' } } } } }, async () => 'ok')
  app.get('/throw/:what', async (request) => { throw new Error((request.params as { what: string }).what) })
  app.get('/ok', async () => 'still serving')
}

const answered = ['/validated', '/throw/mapped', '/throw/async%20mapped']
const panicking = ['/throw/rethrown', '/throw/resend', '/throw/return', '/throw/handler%20bug', '/throw/reject']

// what the application's handler answers, without the plugin: the reference
async function without (): Promise<Map<string, { statusCode: number, body: string }>> {
  const app = Fastify()
  app.setErrorHandler(applicationHandler)
  routes(app)
  const replies = new Map()
  for (const url of answered) {
    const res = await app.inject(url)
    replies.set(url, { statusCode: res.statusCode, body: res.body })
  }
  await app.close()
  return replies
}

for (const order of ['before', 'after'] as const) {
  test(`an application error handler set ${order} the plugin: it answers first, what it lets through is a panic`, async (t) => {
    const reference = await without()
    const warnings: string[] = []
    const onWarning = (warning: Error & { code?: string }): void => { warnings.push(warning.code ?? warning.name) }
    process.on('warning', onWarning)
    t.teardown(() => { process.removeListener('warning', onWarning) })

    const lines: Array<Record<string, any>> = []
    const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
    t.teardown(() => app.close())
    if (order === 'before') app.setErrorHandler(applicationHandler)
    const registry = new Registry()
    await app.register(recovery, { metrics: { registry } })
    if (order === 'after') app.setErrorHandler(applicationHandler)
    routes(app)
    await app.ready()

    for (const url of answered) {
      const res = await app.inject(url)
      t.same({ statusCode: res.statusCode, body: res.body }, reference.get(url), `${url}: the application's reply, byte for byte`)
    }
    let expected = 0
    for (const url of panicking) {
      const res = await app.inject(url)
      expected++
      const id = res.headers['x-request-id'] as string
      t.equal(res.statusCode, 500, url)
      t.equal(res.body, genericBody(id), `${url}: the generic body`)
      t.notMatch(res.body, SECRET)
      t.equal(lines.filter((line) => line.msg === 'panic recovered' && line.reqId === id).length, 1, `${url}: one line`)
      const metric = await registry.getSingleMetric('fastify_panics_total')?.get()
      t.equal(metric?.values.reduce((sum, value) => sum + value.value, 0), expected, `${url}: one count`)
    }
    // a panic the handler fails on is the line; what it failed with, a `recovery handler failed` line
    const failed = lines.filter((line) => line.msg === 'recovery handler failed')
    t.match(failed.find((line) => /handler rejects/.test(line.err?.message))?.err, { type: 'Error' }, 'what the handler rejected with is on record')
    t.match(failed.find((line) => line.err?.type === 'TypeError')?.err?.message, /field/, 'a bug in the handler is on record')
    t.match(lines.find((line) => line.msg === 'panic recovered' && line.err?.message === 'reject'), { panic: { statusCode: 500 } }, 'the panic it failed on is the panic line')
    t.equal((await app.inject('/ok')).body, 'still serving')
    t.same(warnings.filter((code) => code === 'FSTWRN004'), [], 'no "overriding an errorHandler" warning from Fastify')
  })
}

test('set before and after the plugin: Fastify refuses the second exactly when it would without the plugin', async (t) => {
  for (const allowErrorHandlerOverride of [false, true]) {
    const refused = async (withPlugin: boolean): Promise<string | undefined> => {
      const app = Fastify({ allowErrorHandlerOverride })
      t.teardown(() => app.close())
      app.setErrorHandler(applicationHandler)
      if (withPlugin) await app.register(recovery, { metrics: false })
      try {
        app.setErrorHandler(applicationHandler)
        return undefined
      } catch (error) {
        return (error as { code: string }).code
      }
    }
    t.equal(await refused(true), await refused(false), `allowErrorHandlerOverride: ${allowErrorHandlerOverride}`)
  }
  // Fastify 6 refuses by default, Fastify 5 allows (with a warning): the plugin changes neither
  const byDefault = Fastify()
  t.teardown(() => byDefault.close())
  byDefault.setErrorHandler(applicationHandler)
  await byDefault.register(recovery, { metrics: false })
  if (FASTIFY_MAJOR >= 6) t.throws(() => byDefault.setErrorHandler(applicationHandler), { code: 'FST_ERR_ERROR_HANDLER_ALREADY_SET' })
  else t.doesNotThrow(() => byDefault.setErrorHandler(applicationHandler))
})

test('set both before and after (allowErrorHandlerOverride): the later one first, then the earlier one, then the plugin', async (t) => {
  const app = Fastify({ allowErrorHandlerOverride: true })
  t.teardown(() => app.close())
  const seen: string[] = []
  app.setErrorHandler((error) => { seen.push('earlier'); throw error })
  await app.register(recovery, { metrics: false, handler: () => { seen.push('plugin') } })
  app.setErrorHandler((error) => { seen.push('later'); throw error })
  app.get('/boom', async () => { throw new Error('x') })
  const res = await app.inject('/boom')
  t.equal(res.body, genericBody('req-1'))
  t.same(seen, ['later', 'earlier', 'plugin'])
})

test('a handler of a parent scope sees the errors of the plugin\'s scope first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.setErrorHandler(applicationHandler)
  let count = 0
  await app.register(async (child) => {
    await child.register(recovery, { metrics: false, handler: () => { count++ } })
    routes(child)
  })
  t.equal((await app.inject('/throw/mapped')).statusCode, 409)
  const res = await app.inject('/throw/rethrown')
  t.equal(res.body, genericBody('req-2'))
  t.equal(count, 1)
})

test('a Fastify without an error handler chain is refused at registration', async (t) => {
  t.throws(() => joinErrorHandlers({ version: '4.0.0' } as unknown as FastifyInstance, () => {}, (handler) => handler), { code: 'FST_RECOVERY_UNSUPPORTED_FASTIFY', message: /4\.0\.0/ })
  const odd = { version: '5.99.0', [Symbol('fastify.errorHandler')]: 'not a chain' }
  t.throws(() => joinErrorHandlers(odd as unknown as FastifyInstance, () => {}, (handler) => handler), { code: 'FST_RECOVERY_UNSUPPORTED_FASTIFY' })
})
