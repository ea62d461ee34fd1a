import { test } from 'tap'
import { buildApp, genericBody, rawRequest } from './helper'

test('a panic gets the generic 500: exact body, fixed message, request id, no-store', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('secret: password=hunter2') })

  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['x-request-id'], 'req-1')
  t.equal(res.body, genericBody('req-1'))
  t.same(Object.keys(res.json()), ['statusCode', 'error', 'message', 'requestId'])
  t.notMatch(res.body, /secret|hunter2/)
})

test('the message option is a fixed string', async (t) => {
  const { app } = await buildApp({ message: 'Something went wrong, we are on it' })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('details') })
  const res = await app.inject('/boom')
  t.equal(res.body, genericBody('req-1', 'Something went wrong, we are on it'))
})

test('requestIdHeader names the header, or false leaves it out', async (t) => {
  const named = await buildApp({ requestIdHeader: 'X-Correlation-Id' })
  t.teardown(() => named.app.close())
  named.app.get('/boom', async () => { throw new Error('x') })
  const res = await named.app.inject('/boom')
  t.equal(res.headers['x-correlation-id'], 'req-1')
  t.notOk('x-request-id' in res.headers)

  const off = await buildApp({ requestIdHeader: false })
  t.teardown(() => off.app.close())
  off.app.get('/boom', async () => { throw new Error('x') })
  const resOff = await off.app.inject('/boom')
  t.notOk('x-request-id' in resOff.headers)
  t.equal(resOff.json().requestId, 'req-1', 'the body still carries the id')
})

test('problem+json when the client prefers it, q-values honoured', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  const cases: Array<[string | undefined, boolean]> = [
    [undefined, false],
    ['*/*', false],
    ['application/json', false],
    ['application/*', false],
    ['text/html', false],
    ['application/problem+json', true],
    ['application/problem+json, application/json', true],
    ['application/json, application/problem+json', false],
    ['application/json;q=0.5, application/problem+json', true],
    ['application/problem+json;q=0.5, application/json', false],
    ['application/json;q=0.9, application/problem+json;q=1.0', true],
    ['application/problem+json;q=0, */*', false],
    ['application/*, application/problem+json;q=0.9', false],
    ['not a media type, application/problem+json', true]
  ]
  for (const [accept, problem] of cases) {
    const res = await app.inject({ url: '/boom', headers: accept === undefined ? {} : { accept } })
    t.equal(res.statusCode, 500, String(accept))
    if (problem) {
      t.equal(res.headers['content-type'], 'application/problem+json', String(accept))
      t.same(res.json(), { type: 'about:blank', title: 'Internal Server Error', status: 500, requestId: res.headers['x-request-id'] })
      t.same(Object.keys(res.json()), ['type', 'title', 'status', 'requestId'])
    } else {
      t.equal(res.headers['content-type'], 'application/json; charset=utf-8', String(accept))
      t.equal(res.body, genericBody(res.headers['x-request-id'] as string))
    }
    t.equal(res.headers['cache-control'], 'no-store')
  }
})

test('HEAD: same status and headers, no body', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  const get = await app.inject({ url: '/boom' })
  const head = await app.inject({ method: 'HEAD', url: '/boom' })
  t.equal(head.statusCode, 500)
  t.equal(head.body, '')
  for (const name of ['content-type', 'cache-control', 'content-length']) {
    t.equal(head.headers[name], get.headers[name], name)
  }
  t.equal(head.headers['x-request-id'], 'req-2')
})

test('headers describing the lost body are dropped, others kept', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async (_request, reply) => {
    reply.header('etag', '"v1"').header('content-encoding', 'gzip').header('content-disposition', 'attachment')
    reply.header('last-modified', new Date(0).toUTCString()).header('x-trace', 'kept')
    throw new Error('x')
  })
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  for (const name of ['etag', 'content-encoding', 'content-disposition', 'last-modified']) t.notOk(name in res.headers, name)
  t.equal(res.headers['x-trace'], 'kept')
  t.equal(res.json().statusCode, 500)
})

test('closeConnection', async (t) => {
  const get = 'GET /boom HTTP/1.1\r\nHost: x\r\n\r\n'
  const postHead = 'POST /early HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n'

  async function serve (closeConnection?: 'auto' | boolean): Promise<number> {
    const { app } = await buildApp(closeConnection === undefined ? {} : { closeConnection })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    // panics before the body is read, with the body still on its way
    app.post('/early', { onRequest: async () => { throw new Error('early') } }, async () => 'unreachable')
    app.post('/late', async () => { throw new Error('late') })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  }

  t.test("'auto' (default) keeps a connection whose request was fully read", async (t) => {
    const port = await serve()
    const res = await rawRequest(port, [get])
    t.equal(res.statusCode, 500)
    t.notOk(res.headers.connection === 'close')
    t.notOk(res.closed, 'the connection stays open')
    const late = await rawRequest(port, ['POST /late HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'])
    t.equal(late.statusCode, 500)
    t.notOk(late.closed, 'a parsed body was fully read')
  })

  t.test("'auto' closes when the body was not fully read", async (t) => {
    const port = await serve('auto')
    const res = await rawRequest(port, [postHead, '{"partial":', 200, '"rest"}  '])
    t.equal(res.statusCode, 500)
    t.equal(res.headers.connection, 'close')
    t.ok(res.closed)
  })

  t.test('true always closes', async (t) => {
    const port = await serve(true)
    const res = await rawRequest(port, [get])
    t.equal(res.headers.connection, 'close')
    t.ok(res.closed)
  })

  t.test('false never closes', async (t) => {
    const port = await serve(false)
    const res = await rawRequest(port, [postHead, '{"partial":', 100, '"rest"}  '])
    t.equal(res.statusCode, 500)
    t.not(res.headers.connection, 'close')
    t.notOk(res.closed)
  })

  t.test('false also drops the connection: close Fastify sets after a body parser failed', async (t) => {
    const { app } = await buildApp({ closeConnection: false })
    t.teardown(() => app.close())
    app.addContentTypeParser('application/x-broken', (_request, _payload, done) => { done(new Error('parser bug'), undefined) })
    app.post('/parse', async () => 'unreachable')
    const res = await app.inject({ method: 'POST', url: '/parse', headers: { 'content-type': 'application/x-broken' }, payload: 'x' })
    t.equal(res.statusCode, 500)
    t.notOk(res.headers.connection === 'close')
  })
})
