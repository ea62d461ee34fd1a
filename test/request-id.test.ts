import { test } from 'tap'
import { buildApp, rawRequest } from './helper'

// The request id goes into a response header and the body. Ids can come from the client (Fastify's
// requestIdHeader) or from genReqId: one that is not a valid header value must not inject headers.

test('the request id comes from Fastify, whatever generates it', async (t) => {
  const { app } = await buildApp({}, { requestIdHeader: 'x-request-id', genReqId: () => 'generated' })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  const incoming = await app.inject({ url: '/boom', headers: { 'x-request-id': 'from-the-proxy' } })
  t.equal(incoming.headers['x-request-id'], 'from-the-proxy')
  t.equal(incoming.json().requestId, 'from-the-proxy')
  const generated = await app.inject('/boom')
  t.equal(generated.json().requestId, 'generated')
})

test('a request id that is not a valid header value is left out of the headers, kept in the body', async (t) => {
  const ids = ['evil\r\nset-cookie: session=stolen', 'tab\tis\u0000nul', 'unicode-€', '']
  let next = 0
  const { app } = await buildApp({}, { genReqId: () => ids[next++] })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  for (const id of ids) {
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500)
    t.notOk('x-request-id' in res.headers, JSON.stringify(id))
    t.notOk('set-cookie' in res.headers)
    t.equal(res.json().requestId, id)
  }
})

test('over a real socket: a CR/LF request id injects no header and no second response', async (t) => {
  const { app, panics } = await buildApp({}, { genReqId: () => 'id\r\nset-cookie: session=stolen\r\n\r\nHTTP/1.1 200 OK' })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const res = await rawRequest(port, ['GET /boom HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.equal(res.statusCode, 500)
  t.notOk('set-cookie' in res.headers)
  t.notOk('x-request-id' in res.headers)
  t.equal(JSON.parse(res.body).requestId, 'id\r\nset-cookie: session=stolen\r\n\r\nHTTP/1.1 200 OK', 'escaped in the JSON body')
  t.notMatch(res.body, /\r\nHTTP\/1\.1 200/, 'no raw CR/LF in the body')
  t.equal(panics().length, 1)
})
