import { test, type Test } from 'tap'
import { gunzipSync } from 'node:zlib'
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify'
import compress from '@fastify/compress'
import cors from '@fastify/cors'
import multipart from '@fastify/multipart'
import rateLimit from '@fastify/rate-limit'
import replyFrom from '@fastify/reply-from'
import { Registry } from 'prom-client'
import { buildApp, counterValue, genericBody, listenOnLoopback, rawRequest, recovery } from './helper'

// The plugins users combine this one with, for real. Where Fastify's behaviour is the reference,
// the same app is built without the plugin and the replies are compared byte for byte.

async function pair (setup: (app: FastifyInstance) => Promise<void>): Promise<{ bare: FastifyInstance, app: FastifyInstance, registry: Registry }> {
  const bare = Fastify()
  await setup(bare)
  const app = Fastify()
  const registry = new Registry()
  await app.register(recovery, { metrics: { registry } })
  await setup(app)
  return { bare, app, registry }
}

function sameReply (t: Test, actual: { statusCode: number, body: string, headers: Record<string, unknown> }, expected: typeof actual, name: string): void {
  t.equal(actual.statusCode, expected.statusCode, `${name}: status`)
  t.equal(actual.body, expected.body, `${name}: body`)
  const { date: _a, ...actualHeaders } = actual.headers
  const { date: _b, ...expectedHeaders } = expected.headers
  t.same(actualHeaders, expectedHeaders, `${name}: headers`)
}

test('@fastify/rate-limit: its default 429 and its README\'s errorResponseBuilder object, byte for byte', async (t) => {
  const now = Date.now
  Date.now = () => 1_800_000_000_000 // the README's builder puts Date.now() in the body
  t.teardown(() => { Date.now = now })
  for (const builder of [undefined, (_request: unknown, context: { max: number, after: string, ttl: number }) => ({
    statusCode: 429,
    error: 'Too Many Requests',
    message: `I only allow ${context.max} requests per ${context.after} to this Website. Try again soon.`,
    date: Date.now(),
    expiresIn: context.ttl // milliseconds
  })]) {
    const { bare, app, registry } = await pair(async (instance) => {
      await instance.register(rateLimit, { max: 1, timeWindow: 60_000, ...(builder === undefined ? {} : { errorResponseBuilder: builder }) })
      instance.get('/limited', async () => 'ok')
    })
    t.teardown(() => Promise.all([bare.close(), app.close()]))
    for (let i = 0; i < 3; i++) {
      sameReply(t, await app.inject('/limited'), await bare.inject('/limited'), `${builder === undefined ? 'default' : 'builder'} #${i}`)
    }
    const limited = await app.inject('/limited')
    t.equal(limited.statusCode, 429)
    if (builder !== undefined) t.same(Object.keys(limited.json()), ['statusCode', 'error', 'message', 'date', 'expiresIn'], 'every key kept')
    t.equal(await counterValue(registry, {}), 0, 'not a panic')
  }
})

test('@fastify/compress: the panic reply and a 4xx are compressed like any reply; a stale content-encoding is dropped', async (t) => {
  const { app, registry } = await pair(async (instance) => {
    await instance.register(compress, { threshold: 0 })
    instance.get('/boom', async () => { throw new Error('SECRET') })
    instance.get('/missing', async () => { throw Object.assign(new Error('no such order'), { statusCode: 404 }) })
    // a handler that had announced a compressed body, then failed
    instance.get('/announced', async (_request, reply) => { reply.header('content-encoding', 'br'); throw new Error('SECRET') })
  })
  t.teardown(() => app.close())
  const gzip: InjectOptions = { headers: { 'accept-encoding': 'gzip' } }
  const boom = await app.inject({ url: '/boom', ...gzip })
  t.equal(boom.headers['content-encoding'], 'gzip')
  t.equal(gunzipSync(boom.rawPayload).toString(), genericBody(boom.headers['x-request-id'] as string))
  const missing = await app.inject({ url: '/missing', ...gzip })
  t.same(JSON.parse(gunzipSync(missing.rawPayload).toString()), { statusCode: 404, error: 'Not Found', message: 'no such order' })
  const announced = await app.inject('/announced')
  t.notOk('content-encoding' in announced.headers, 'the replaced body is not brotli')
  t.equal(announced.body, genericBody(announced.headers['x-request-id'] as string))
  t.equal(await counterValue(registry, {}), 2)
})

test('@fastify/multipart: a panic before the upload is read closes the connection; its own 4xx are Fastify\'s', async (t) => {
  const { bare, app, registry } = await pair(async (instance) => {
    await instance.register(multipart, { limits: { fileSize: 10 } })
    instance.post('/early', { preValidation: async () => { throw new Error('SECRET before reading') } }, async () => 'unreached')
    instance.post('/upload', async (request) => {
      const file = await request.file()
      await file?.toBuffer()
      return 'stored'
    })
  })
  t.teardown(() => Promise.all([bare.close(), app.close()]))
  const boundary = 'xBOUNDARYx'
  const body = (content: string): string => `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n${content}\r\n--${boundary}--\r\n`
  const upload = (url: string, content: string): InjectOptions => ({ method: 'POST', url, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body(content) })

  sameReply(t, await app.inject(upload('/upload', 'far more than ten bytes')), await bare.inject(upload('/upload', 'far more than ten bytes')), 'file too large')
  sameReply(t, await app.inject({ method: 'POST', url: '/upload', headers: { 'content-type': 'application/json' }, payload: '{}' }),
    await bare.inject({ method: 'POST', url: '/upload', headers: { 'content-type': 'application/json' }, payload: '{}' }), 'not multipart')

  const port = await listenOnLoopback(app)
  const content = 'x'.repeat(200_000)
  const head = `POST /early HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${Buffer.byteLength(body(content))}\r\n\r\n`
  const res = await rawRequest(port, [head, body(content).slice(0, 1000)])
  t.equal(res.statusCode, 500)
  t.equal(res.headers.connection, 'close', 'the rest of the upload is not drained')
  t.ok(res.closed)
  t.notMatch(res.body, /SECRET/)
  t.equal(await counterValue(registry, { route: '/early' }), 1)
})

test('@fastify/cors over a real socket: a panic and a double fault both carry the CORS headers', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  await app.register(cors, { origin: 'https://app.example', exposedHeaders: ['x-request-id'] })
  app.get('/boom', async () => { throw new Error('SECRET') })
  app.get('/double', { onSend: async (_request, reply) => { if (reply.statusCode === 500) throw new Error('SECRET hook') } }, async () => { throw new Error('SECRET route') })
  const port = await listenOnLoopback(app)
  for (const path of ['/boom', '/double']) {
    const res = await rawRequest(port, [`GET ${path} HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n`])
    t.equal(res.statusCode, 500, path)
    t.equal(res.body, genericBody(res.headers['x-request-id']), path)
    t.equal(res.headers['access-control-allow-origin'], 'https://app.example', `${path}: the browser may read it`)
    t.equal(res.headers['access-control-expose-headers'], 'x-request-id', `${path}: and its request id header`)
  }
  const preflight = await rawRequest(port, ['OPTIONS /boom HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n'])
  t.equal(preflight.statusCode, 204, 'preflight untouched')
  t.equal(await total(), 2)
})

// @fastify/reply-from 12 raises an upstream it cannot reach as a 500 error of its own: an upstream
// outage is then a panic. Its `onError` turns it into a 502 (a service error: not counted, Fastify's
// body with the status text) for those who prefer that — the README's note.
test('@fastify/reply-from: an unreachable upstream is a counted panic; its onError makes it a 502', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  await app.register(replyFrom, { base: 'http://127.0.0.1:1' })
  app.get('/proxied', (_request, reply) => reply.from('/'))
  app.get('/mapped', (_request, reply) => reply.from('/', {
    onError: (reply, { error }) => { reply.send(Object.assign(new Error('upstream unavailable', { cause: error }), { statusCode: 502 })) }
  }))
  const res = await app.inject('/proxied')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.match(panics()[0], { err: { code: 'FST_REPLY_FROM_INTERNAL_SERVER_ERROR', message: /ECONNREFUSED/ }, panic: { route: '/proxied' } })
  t.equal(await count({ route: '/proxied', source: 'request' }), 1)
  const mapped = await app.inject('/mapped')
  t.equal(mapped.statusCode, 502)
  t.same(mapped.json(), { statusCode: 502, error: 'Bad Gateway', message: 'Bad Gateway' })
  t.equal(await count({ route: '/mapped' }), 0)
  t.equal(panics().length, 1)
})
