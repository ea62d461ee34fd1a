import { test, type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2'
import { resolve } from 'node:path'
import { Readable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { counterValue, genericBody, recovery } from './helper'

// Contract §3: HTTP/2 (h2c and over TLS) and HTTP/1.1 over TLS behave as HTTP/1.1 does: the generic
// 500, no connection-specific header on HTTP/2, and a response broken after its headers is reset
// (INTERNAL_ERROR) or its connection destroyed, so no client takes it for a complete response.
// `node:http2` and `node:https` are the clients.

const key = readFileSync(resolve(__dirname, 'fixtures', 'localhost-key.pem'))
const cert = readFileSync(resolve(__dirname, 'fixtures', 'localhost-cert.pem'))
const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']

type Transport = 'h2c' | 'h2'

function failingStream (): Readable {
  let sent = false
  return new Readable({
    read () {
      if (sent) setTimeout(() => this.destroy(new Error('disk gone SECRET')), 10)
      else this.push('partial body ')
      sent = true
    }
  })
}

function routes (app: FastifyInstance): void {
  app.addHook('onRequest', async (_request, reply) => { reply.header('access-control-allow-origin', 'https://app.example') })
  app.get('/boom', async () => { throw new Error('SECRET') })
  // fails before the body is read (a handler would wait for it): the upload is still arriving
  app.post('/upload', { onRequest: async () => { throw new Error('SECRET before reading the body') } }, async () => 'unreached')
  app.get('/stream', async (_request, reply) => reply.type('text/plain').send(failingStream()))
  app.get('/raw', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.write('half ')
    throw new Error('SECRET after raw writes')
  })
  app.get('/double', { onSend: async (_request, reply) => { if (reply.statusCode === 500) throw new Error('SECRET hook') } }, async () => { throw new Error('SECRET route') })
  app.get('/ok', async () => ({ ok: true }))
}

async function server (t: Test, transport: Transport | 'https', withPlugin = true): Promise<{ app: FastifyInstance, registry: Registry, origin: string }> {
  const options = transport === 'h2c' ? { http2: true as const } : transport === 'h2' ? { http2: true as const, https: { key, cert, allowHTTP1: true } } : { https: { key, cert } }
  const app = Fastify(options as never) as unknown as FastifyInstance
  const registry = new Registry()
  if (withPlugin) await app.register(recovery, { metrics: { registry } })
  routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, registry, origin: `${transport === 'h2c' ? 'http' : 'https'}://127.0.0.1:${port}` }
}

interface H2Response { headers: IncomingHttpHeaders, body: string, rstCode: number, error?: string }

function h2 (session: ClientHttp2Session, path: string, method = 'GET', body?: string): Promise<H2Response> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path, ':method': method, ...(body === undefined ? {} : { 'content-type': 'text/plain' }) })
    let headers: IncomingHttpHeaders = {}
    let data = ''
    let error: string | undefined
    stream.on('response', (received) => { headers = received })
    stream.setEncoding('utf8').on('data', (chunk: string) => { data += chunk })
    stream.on('error', (failure: NodeJS.ErrnoException) => { error = failure.code })
    stream.on('close', () => resolve({ headers, body: data, rstCode: stream.rstCode ?? 0, error }))
    if (body === undefined) stream.end()
    else stream.write(body) // never ended: the body is still arriving when the handler fails
  })
}

function session (t: Test, origin: string): ClientHttp2Session {
  const client = connect(origin, { ca: cert, servername: 'localhost' })
  t.teardown(() => client.close())
  return client
}

for (const transport of ['h2c', 'h2'] as const) {
  test(`${transport}: a panic gets the generic 500, without connection-specific headers, even on an unread upload`, async (t) => {
    const { registry, origin } = await server(t, transport)
    const warnings: Error[] = []
    const onWarning = (warning: Error): void => { warnings.push(warning) }
    process.on('warning', onWarning)
    t.teardown(() => process.removeListener('warning', onWarning))
    const client = session(t, origin)
    for (const [path, method, body] of [['/boom', 'GET', undefined], ['/upload', 'POST', 'x'.repeat(100_000)]] as const) {
      const res = await h2(client, path, method, body)
      t.equal(res.headers[':status'], 500, path)
      t.equal(res.body, genericBody(res.headers['x-request-id'] as string), path)
      t.equal(res.headers['cache-control'], 'no-store')
      t.equal(res.headers['access-control-allow-origin'], 'https://app.example', `${path}: headers set before are kept`)
      for (const name of CONNECTION_SPECIFIC) t.notOk(name in res.headers, `${path}: no ${name}`)
    }
    await new Promise((resolve) => setImmediate(resolve))
    t.same(warnings.map((warning) => warning.message), [], 'Node refused no header')
    t.equal(await counterValue(registry, { source: 'request' }), 2)
    t.equal((await h2(client, '/ok')).headers[':status'], 200, 'the session still serves')
  })

  test(`${transport}: a double fault gets the raw generic 500, and the session's other streams are served`, async (t) => {
    const { registry, origin } = await server(t, transport)
    const client = session(t, origin)
    const [double, ok] = await Promise.all([h2(client, '/double'), h2(client, '/ok')])
    t.equal(double.headers[':status'], 500)
    t.equal(double.body, genericBody(double.headers['x-request-id'] as string))
    t.notMatch(double.body, /SECRET/)
    t.equal(double.headers['access-control-allow-origin'], 'https://app.example')
    for (const name of CONNECTION_SPECIFIC) t.notOk(name in double.headers, `no ${name}`)
    t.equal(ok.headers[':status'], 200)
    t.same(JSON.parse(ok.body), { ok: true })
    t.equal(await counterValue(registry, { route: '/double' }), 1)
  })

  test(`${transport}: a response broken after its headers resets the stream with INTERNAL_ERROR, counted once`, async (t) => {
    const { registry, origin } = await server(t, transport)
    const client = session(t, origin)
    for (const path of ['/stream', '/raw']) {
      const res = await h2(client, path)
      t.equal(res.headers[':status'], 200, `${path}: the headers had gone out`)
      t.equal(res.rstCode, constants.NGHTTP2_INTERNAL_ERROR, `${path}: reset, never a clean end`)
      t.equal(res.error, 'ERR_HTTP2_STREAM_ERROR', `${path}: the client sees a failure`)
      t.notMatch(res.body, /SECRET/)
      t.equal(await counterValue(registry, { route: path, source: 'response' }), 1, `${path}: counted once, source response`)
    }
    t.equal((await h2(client, '/ok')).headers[':status'], 200, 'other streams are unaffected')
  })
}

test('h2c without the plugin, for reference: Fastify ends a failed stream with NO_ERROR, which the plugin turns into a reset', async (t) => {
  const { origin } = await server(t, 'h2c', false)
  const res = await h2(session(t, origin), '/stream')
  t.equal(res.rstCode, constants.NGHTTP2_NO_ERROR, 'a clean-looking end')
})

function httpsGet (origin: string, path: string): Promise<{ status: number, headers: Record<string, unknown>, body: string, complete: boolean, error?: string }> {
  return new Promise((resolve) => {
    const request = httpsRequest(`${origin}${path}`, { ca: cert, servername: 'localhost' }, (response) => {
      let body = ''
      let error: string | undefined
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      response.on('error', (failure: NodeJS.ErrnoException) => { error = failure.code })
      response.on('close', () => resolve({ status: response.statusCode as number, headers: response.headers, body, complete: response.complete, error }))
    })
    // the connection may be destroyed before the head that was written reaches the client
    request.on('error', (failure: NodeJS.ErrnoException) => resolve({ status: 0, headers: {}, body: '', complete: false, error: failure.code }))
    request.end()
  })
}

test('HTTP/1.1 over TLS: the generic 500; a broken response loses its connection and is never complete', async (t) => {
  const { registry, origin } = await server(t, 'https')
  const boom = await httpsGet(origin, '/boom')
  t.equal(boom.status, 500)
  t.equal(boom.body, genericBody(boom.headers['x-request-id'] as string))
  t.equal(boom.headers['access-control-allow-origin'], 'https://app.example')
  for (const path of ['/stream', '/raw']) {
    const res = await httpsGet(origin, path)
    t.ok(res.status === 200 || res.status === 0, `${path}: the head went out (${res.status || 'lost with the connection'})`)
    t.notOk(res.complete, `${path}: the client knows the body is incomplete`)
    t.equal(res.error, 'ECONNRESET', `${path}: and sees the connection fail`)
    t.equal(await counterValue(registry, { route: path, source: 'response' }), 1, `${path}: counted once`)
  }
  t.equal((await httpsGet(origin, '/ok')).status, 200)
})
