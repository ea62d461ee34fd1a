import { test } from 'tap'
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify'
import { buildApp, logControllerForms, recovery } from './helper'

// Contract §2: client errors (4xx) and service errors (501-599) are not panics.

function withStatus (message: string, props: Record<string, unknown>): Error {
  return Object.assign(new Error(message), props)
}

test('a 4xx keeps its status, message and code, with Fastify\'s shape; not counted', async (t) => {
  const { app, panics, total, lines } = await buildApp()
  t.teardown(() => app.close())
  app.get('/missing', async () => { throw withStatus('user 7 not found', { statusCode: 404, code: 'E_NO_USER' }) })
  app.get('/conflict', async () => { throw withStatus('already exists', { status: 409 }) })

  const missing = await app.inject('/missing')
  t.equal(missing.statusCode, 404)
  t.equal(missing.body, '{"statusCode":404,"code":"E_NO_USER","error":"Not Found","message":"user 7 not found"}')
  t.equal(missing.headers['content-type'], 'application/json; charset=utf-8')
  t.notOk('cache-control' in missing.headers)

  const conflict = await app.inject('/conflict')
  t.equal(conflict.statusCode, 409)
  t.same(conflict.json(), { statusCode: 409, error: 'Conflict', message: 'already exists' })

  t.equal(panics().length, 0)
  t.equal(await total(), 0)
  const info = lines.filter((line) => line.level === 30 && line.msg === 'user 7 not found')
  t.equal(info.length, 1, 'logged at info, as Fastify does')
})

test('a 5xx service error keeps its status and headers, hides its message unless expose', async (t) => {
  const { app, panics, total, lines } = await buildApp()
  t.teardown(() => app.close())
  app.get('/shed', async () => { throw withStatus('queue depth 9000 > 500', { statusCode: 503, code: 'E_SHED', headers: { 'retry-after': '5' } }) })
  app.get('/exposed', async () => { throw withStatus('upstream timed out', { statusCode: 504, expose: true }) })

  const shed = await app.inject('/shed')
  t.equal(shed.statusCode, 503)
  t.equal(shed.headers['retry-after'], '5')
  t.equal(shed.body, '{"statusCode":503,"code":"E_SHED","error":"Service Unavailable","message":"Service Unavailable"}')
  const exposed = await app.inject('/exposed')
  t.same(exposed.json(), { statusCode: 504, error: 'Gateway Timeout', message: 'upstream timed out' })
  t.equal(panics().length, 0)
  t.equal(await total(), 0)
  t.equal(lines.filter((line) => line.level === 50 && line.msg === 'queue depth 9000 > 500').length, 1, 'logged at error, as Fastify does')
})

test('err.headers that cannot be sent are dropped, the rest kept', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/h', async () => {
    throw withStatus('limited', { statusCode: 429, headers: { 'retry-after': '1', 'bad header': 'x', 'x-evil': 'a\r\nb', 'X-Upper': 'ok' } })
  })
  app.get('/hostile', async () => {
    throw Object.defineProperty(withStatus('x', { statusCode: 429 }), 'headers', { get () { throw new Error('getter') }, enumerable: true })
  })
  app.get('/weird', async () => { throw withStatus('x', { statusCode: 429, headers: 'not an object' }) })
  const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x-h${i}`, String(i)]))
  app.get('/many', async () => { throw withStatus('x', { statusCode: 429, headers: many }) })
  const unreadable = new Proxy({}, { ownKeys () { throw new Error('trap') } })
  app.get('/trap', async () => { throw withStatus('x', { statusCode: 429, headers: unreadable }) })
  const res = await app.inject('/h')
  t.equal(res.statusCode, 429)
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.headers['x-upper'], 'ok')
  t.notOk('x-evil' in res.headers)
  t.equal((await app.inject('/hostile')).statusCode, 429)
  t.equal((await app.inject('/weird')).statusCode, 429)
  const manyRes = await app.inject('/many')
  t.equal(Object.keys(manyRes.headers).filter((name) => name.startsWith('x-h')).length, 50, 'at most 50 headers from an error')
  t.equal((await app.inject('/trap')).statusCode, 429)
})

test('request logging disabled: pass-through errors are not logged', async (t) => {
  for (const fastifyOptions of [...logControllerForms({ disableRequestLogging: true }), ...logControllerForms({ disableRequestLogging: () => true })]) {
    const { app, lines } = await buildApp({}, fastifyOptions)
    t.teardown(() => app.close())
    app.get('/missing', async () => { throw withStatus('gone', { statusCode: 404 }) })
    t.equal((await app.inject('/missing')).statusCode, 404)
    t.equal(lines.filter((line) => line.msg === 'gone').length, 0)
  }
})

// Fastify's own 4xx must be byte-identical with and without the plugin.
function routes (app: FastifyInstance): void {
  app.post('/validated', {
    schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } }
  }, async () => 'ok')
  app.post('/echo', async (request) => request.body)
  app.post('/small', { bodyLimit: 10 }, async (request) => request.body)
  app.get('/query', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } } }, async () => 'ok')
  app.post('/schema-400', {
    schema: {
      body: { type: 'object', required: ['name'] },
      response: { 400: { type: 'object', properties: { message: { type: 'string' }, statusCode: { type: 'integer' } } } }
    }
  }, async () => 'ok')
  app.post('/schema-any', {
    schema: {
      body: { type: 'object', required: ['name'] },
      response: { 400: { content: { '*/*': { schema: { type: 'object', properties: { statusCode: { type: 'integer' } } } } } } }
    }
  }, async () => 'ok')
  app.post('/schema-4xx', {
    schema: {
      body: { type: 'object', required: ['name'] },
      response: { '4xx': { content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'string' } } } } } } }
    }
  }, async () => 'ok')
}

const fastifyErrors: Array<[string, InjectOptions]> = [
  ['validation', { method: 'POST', url: '/validated', payload: { other: 1 } }],
  ['querystring validation', { method: 'GET', url: '/query?n=abc' }],
  ['malformed JSON', { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"broken":' }],
  ['empty JSON body', { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '' }],
  ['body too large', { method: 'POST', url: '/small', headers: { 'content-type': 'application/json' }, payload: '{"a":"0123456789"}' }],
  ['unsupported media type', { method: 'POST', url: '/echo', headers: { 'content-type': 'application/x-nothing' }, payload: 'x' }],
  ['invalid content type', { method: 'POST', url: '/echo', headers: { 'content-type': '/' }, payload: 'x' }],
  ['prototype poisoning', { method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' }],
  ['route response schema for the status', { method: 'POST', url: '/schema-400', payload: {} }],
  ['route 4xx schema by content type', { method: 'POST', url: '/schema-4xx', payload: {} }],
  ['route schema for any content type', { method: 'POST', url: '/schema-any', payload: {} }]
]

for (const [name, request] of fastifyErrors) {
  test(`Fastify's own error, byte-identical: ${name}`, async (t) => {
    const bare = Fastify()
    routes(bare)
    const { app, panics, total } = await buildApp()
    routes(app)
    t.teardown(() => Promise.all([bare.close(), app.close()]))

    const expected = await bare.inject(request)
    const actual = await app.inject(request)
    t.ok(expected.statusCode >= 400 && expected.statusCode < 500, `Fastify answers ${expected.statusCode}`)
    t.equal(actual.statusCode, expected.statusCode)
    t.equal(actual.body, expected.body)
    const { date: _a, ...expectedHeaders } = expected.headers
    const { date: _b, ...actualHeaders } = actual.headers
    t.same(actualHeaders, expectedHeaders)
    t.equal(panics().length, 0)
    t.equal(await total(), 0)
  })
}

// Client and service errors thrown in any shape go out as Fastify's default handler sends them:
// an Error in Fastify's error shape, anything else serialized as it is (contract §2).
class Teapot { statusCode = 418; brewing = true }
const thrownValues: Array<[string, () => unknown]> = [
  ['an Error with statusCode 404 and a code', () => Object.assign(new Error('user 7 not found'), { statusCode: 404, code: 'E_NO_USER' })],
  ['an Error with status 409', () => Object.assign(new Error('already exists'), { status: 409 })],
  ['an Error with a numeric code and headers', () => Object.assign(new Error('slow down'), { statusCode: 429, code: 42, headers: { 'retry-after': '3' } })],
  ['a plain object with statusCode 422 and more keys', () => ({ statusCode: 422, message: 'bad field', field: 'email' })],
  ['a bare { statusCode: 400 }', () => ({ statusCode: 400 })],
  ["@fastify/rate-limit's README errorResponseBuilder object", () => ({ statusCode: 429, error: 'Too Many Requests', message: 'Rate limit exceeded, retry in 1 minute', date: Date.UTC(2026, 0, 1), expiresIn: 60 })],
  ['a plain object with headers', () => ({ statusCode: 401, headers: { 'www-authenticate': 'Bearer' }, reason: 'expired' })],
  ['a plain object with toJSON', () => ({ statusCode: 409, toJSON () { return { conflict: true } } })],
  ['a plain 503 object (a service error of its own shape)', () => ({ statusCode: 503, message: 'maintenance', until: '10:00' })],
  ['a class instance with statusCode 418', () => new Teapot()],
  ['an Error of another realm with statusCode 400', () => Object.assign(new (require('node:vm').runInNewContext('Error'))('foreign'), { statusCode: 400 })]
]

function throwing (app: FastifyInstance): void {
  app.get('/thrown/:index', async (request) => { throw thrownValues[Number((request.params as { index: string }).index)][1]() })
  app.get('/thrown-schema/:index', {
    schema: { response: { '4xx': { type: 'object', properties: { statusCode: { type: 'integer' }, message: { type: 'string' } } } } }
  }, async (request) => { throw thrownValues[Number((request.params as { index: string }).index)][1]() })
}

for (const [index, [name]] of thrownValues.entries()) {
  test(`a thrown client or service error, byte-identical to Fastify's reply and line: ${name}`, async (t) => {
    const bareLines: Array<Record<string, unknown>> = []
    const bare = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { bareLines.push(JSON.parse(line)) } } } })
    throwing(bare)
    const { app, lines, panics, total } = await buildApp()
    throwing(app)
    t.teardown(() => Promise.all([bare.close(), app.close()]))
    for (const url of [`/thrown/${index}`, `/thrown-schema/${index}`]) {
      const expected = await bare.inject(url)
      const actual = await app.inject(url)
      t.ok(expected.statusCode >= 400 && expected.statusCode !== 500, `Fastify answers ${expected.statusCode}`)
      t.equal(actual.statusCode, expected.statusCode, url)
      t.equal(actual.body, expected.body, url)
      const { date: _a, ...expectedHeaders } = expected.headers
      const { date: _b, ...actualHeaders } = actual.headers
      t.same(actualHeaders, expectedHeaders, url)
    }
    const errorLine = (line: Record<string, unknown>) => line.msg !== 'incoming request' && line.msg !== 'request completed'
    const strip = ({ time: _t, pid: _p, hostname: _h, reqId: _r, err, ...rest }: Record<string, any>) => ({ ...rest, errType: err?.type, errMessage: err?.message })
    t.same(lines.filter(errorLine).map(strip), bareLines.filter(errorLine).map(strip), "Fastify's own lines")
    t.equal(panics().length, 0)
    t.equal(await total(), 0)
  })
}

test('a 4xx sent through a route whose serializer cannot serialize it falls back to the plain body', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/s', {
    schema: { response: { 404: { type: 'object', required: ['must'], properties: { must: { type: 'string' } } } } }
  }, async () => { throw withStatus('gone', { statusCode: 404 }) })
  const res = await app.inject('/s')
  t.equal(res.statusCode, 404)
  t.same(res.json(), { statusCode: 404, error: 'Not Found', message: 'gone' })
})

test('plugin registered: the default 404 is unchanged', async (t) => {
  const bare = Fastify()
  const app = Fastify()
  await app.register(recovery, { metrics: false })
  t.teardown(() => Promise.all([bare.close(), app.close()]))
  const expected = await bare.inject('/nowhere')
  const actual = await app.inject('/nowhere')
  t.equal(actual.statusCode, 404)
  t.equal(actual.body, expected.body)
})
