import { test } from 'tap'
import { buildApp, listenOnLoopback, rawRequest } from './helper'

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
  const port = await listenOnLoopback(app)
  const res = await rawRequest(port, ['GET /boom HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.equal(res.statusCode, 500)
  t.notOk('set-cookie' in res.headers)
  t.notOk('x-request-id' in res.headers)
  t.equal(JSON.parse(res.body).requestId, 'id\r\nset-cookie: session=stolen\r\n\r\nHTTP/1.1 200 OK', 'escaped in the JSON body')
  t.notMatch(res.body, /\r\nHTTP\/1\.1 200/, 'no raw CR/LF in the body')
  t.equal(panics().length, 1)
})

test('the id goes back in the header it came in: Fastify\'s own requestIdHeader is the default', async (t) => {
  const { app } = await buildApp({}, { requestIdHeader: 'x-correlation-id' })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  const res = await app.inject({ url: '/boom', headers: { 'x-correlation-id': 'from-the-gateway' } })
  t.equal(res.headers['x-correlation-id'], 'from-the-gateway')
  t.notOk('x-request-id' in res.headers, 'not a second header of the plugin\'s own')
  t.equal(res.json().requestId, 'from-the-gateway')
  // the option, when given, wins
  const { app: other } = await buildApp({ requestIdHeader: 'x-trace' }, { requestIdHeader: 'x-correlation-id' })
  t.teardown(() => other.close())
  other.get('/boom', async () => { throw new Error('x') })
  t.equal((await other.inject({ url: '/boom', headers: { 'x-correlation-id': 'c' } })).headers['x-trace'], 'c')
  // Fastify without a requestIdHeader (its default: false): x-request-id
  const { app: plain } = await buildApp()
  t.teardown(() => plain.close())
  plain.get('/boom', async () => { throw new Error('x') })
  t.equal((await plain.inject('/boom')).headers['x-request-id'], 'req-1')
})

test('a header that decides framing, caching or the connection is refused at registration, naming the option', async (t) => {
  for (const name of ['content-length', 'Transfer-Encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'te', 'cache-control', 'content-type']) {
    const error = await buildApp({ requestIdHeader: name }).then(() => undefined, (failure: unknown) => failure)
    t.ok(error instanceof TypeError, `${name}: a TypeError`)
    t.match(error, { code: 'FST_RECOVERY_INVALID_OPTION', message: new RegExp(`option "requestIdHeader" must be a header that decides neither.*got "${name}"`) })
  }
})
