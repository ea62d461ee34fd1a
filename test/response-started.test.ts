import { test } from 'tap'
import { buildApp, listenOnLoopback, rawRequest } from './helper'

// Contract §3: once the headers went out, nothing more is written: the connection is destroyed
// so the client sees a broken response, never a clean-looking truncated one.

test('a handler that wrote its head and part of the body, then threw', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  app.get('/partial', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' })
    reply.raw.write('first half')
    await new Promise((resolve) => setTimeout(resolve, 10))
    throw new Error('second half failed')
  })
  app.get('/ok', async () => 'ok')
  const port = await listenOnLoopback(app)

  const res = await rawRequest(port, ['GET /partial HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.equal(res.statusCode, 200)
  t.ok(res.closed, 'the connection is destroyed')
  t.notMatch(res.body, /0\r\n\r\n$/, 'no final chunk: the client cannot mistake it for a complete body')
  t.notMatch(res.body, /failed|Internal Server Error/)

  const [line] = panics()
  t.equal(line.reqId, 'req-1')
  t.match(line.panic, { source: 'response', route: '/partial', statusCode: 200 })
  t.equal(await count({ source: 'response', route: '/partial', method: 'GET' }), 1)
  t.equal(await count({ source: 'request' }), 0)
  t.equal((await rawRequest(port, ['GET /ok HTTP/1.1\r\nHost: x\r\n\r\n'])).statusCode, 200, 'still serving')
})

test('when recording it fails (a request the plugin cannot read), the last resort still breaks the response', async (t) => {
  const { app, lines, count } = await buildApp()
  t.teardown(() => app.close())
  app.get('/partial', async (request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' })
    reply.raw.write('first half')
    Object.defineProperty(request, 'routeOptions', { get () { throw new Error('routeOptions getter') } })
    throw new Error('second half failed')
  })
  const port = await listenOnLoopback(app)
  const res = await rawRequest(port, ['GET /partial HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.ok(res.closed, 'the connection is destroyed')
  t.notMatch(res.body, /0\r\n\r\n$/)
  t.match(lines.filter((line) => line.msg === 'recovery failed'), [{ err: { message: 'routeOptions getter' } }])
  t.equal(await count({ source: 'response' }), 1, 'counted once')
})
