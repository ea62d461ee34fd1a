import { test } from 'tap'
import type { FastifyReply } from 'fastify'
import { buildApp, genericBody, listenOnLoopback, rawRequest } from './helper'
import { writeRaw } from '../lib/send'

// When the error reply itself fails, Fastify hands the new error to its default handler and then
// to a fallback that writes `err.message` into the body. The client must still get the generic
// 500 with nothing of either message, and the panic counts once.

test('an onSend hook that throws on every reply, the plugin\'s included', async (t) => {
  const { app, panics, total, lines } = await buildApp()
  t.teardown(() => app.close())
  let calls = 0
  app.addHook('onSend', async () => { calls++; throw new Error(`hook secret ${calls}`) })
  app.get('/boom', async () => { throw new Error('route secret') })
  app.get('/ok', async () => 'fine')

  for (const url of ['/boom', '/ok']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500, url)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.body, genericBody(res.headers['x-request-id'] as string), url)
    t.notMatch(res.body, /secret/)
  }
  t.equal(await total(), 2, 'each panic counted once')
  t.equal(panics().length, 2)
  t.match(panics()[0].err?.message, 'route secret')
  t.match(panics()[1].err?.message, 'hook secret', '/ok: the hook failure is the panic')
  t.ok(lines.some((line) => line.level === 50 && /hook secret/.test(line.msg)), 'Fastify logs the hook failure on the error reply itself')
})

test('a synchronous onSend hook that throws, problem+json and HEAD included', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('onSend', (_request, _reply, _payload, done) => { done(new Error('sync hook secret')) })
  app.get('/boom', async () => { throw new Error('route secret') })
  const problem = await app.inject({ url: '/boom', headers: { accept: 'application/problem+json' } })
  t.equal(problem.statusCode, 500)
  t.equal(problem.headers['content-type'], 'application/problem+json')
  t.same(problem.json(), { type: 'about:blank', title: 'Internal Server Error', status: 500, requestId: 'req-1' })
  const head = await app.inject({ method: 'HEAD', url: '/boom' })
  t.equal(head.statusCode, 500)
  t.equal(head.body, '')
  t.equal(await total(), 2)
})

test('a preSerialization hook that throws every time', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('preSerialization', async () => { throw new Error('preSerialization secret') })
  app.get('/object', async () => ({ some: 'data' }))
  app.get('/boom', async () => { throw new Error('route secret') })
  for (const url of ['/object', '/boom']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500)
    t.equal(res.body, genericBody(res.headers['x-request-id'] as string))
  }
  t.equal(await total(), 2)
})

test('a client error whose reply fails becomes a panic: generic 500, counted once', async (t) => {
  const { app, total, panics } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('onSend', async (_request, reply) => { if (reply.statusCode === 404) throw new Error('hook secret on 404') })
  app.get('/missing', async () => { throw Object.assign(new Error('user not found'), { statusCode: 404 }) })
  const res = await app.inject('/missing')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.equal(await total(), 1)
  t.equal(panics()[0].err?.message, 'hook secret on 404')
})

test('a header set earlier that cannot be written: the generic 500 still goes out', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.get('/bad-header', async (_request, reply) => {
    reply.header('x-broken', 'line\nbreak')
    throw new Error('route secret')
  })
  const res = await app.inject('/bad-header')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.notOk('x-broken' in res.headers)
  t.equal(await total(), 1)
})

test('a hook that wrote the headers before failing on the error reply: the connection is broken', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('onSend', async (_request, reply) => {
    if (reply.statusCode === 500) {
      reply.raw.writeHead(500, { 'content-type': 'text/plain' })
      throw new Error('hook secret')
    }
  })
  app.get('/boom', async () => { throw new Error('route secret') })
  app.get('/ok', async () => 'ok')
  const port = await listenOnLoopback(app)
  const res = await rawRequest(port, ['GET /boom HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.ok(res.closed, 'the connection is destroyed')
  t.notMatch(res.body, /secret/)
  t.equal(await total(), 1)
  t.equal((await rawRequest(port, ['GET /ok HTTP/1.1\r\nHost: x\r\n\r\n'])).statusCode, 200)
})

test('a response that cannot even write its head is destroyed, not thrown', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('onSend', async (_request, reply: FastifyReply) => {
    if (reply.statusCode === 500) {
      reply.raw.writeHead = () => { throw new Error('socket in a bad state') }
      throw new Error('hook secret')
    }
  })
  app.get('/boom', async () => { throw new Error('route secret') })
  const port = await listenOnLoopback(app)
  const res = await rawRequest(port, ['GET /boom HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.ok(res.closed)
  t.equal(res.body, '')
  t.equal(await total(), 1)
})

test('a late reply.send after the error reply finished gets Fastify\'s own warning, nothing more', async (t) => {
  const { app, lines } = await buildApp()
  t.teardown(() => app.close())
  let late: Promise<void> = Promise.resolve()
  app.get('/boom', (_request, reply) => {
    late = new Promise((resolve) => setTimeout(() => { reply.send('too late'); resolve() }, 20))
    throw new Error('x')
  })
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  await late
  t.ok(lines.some((line) => line.level === 40 && /already sent/i.test(JSON.stringify(line))))
})

test('a reply whose methods throw while the error reply is prepared still gets the generic 500', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.get('/broken-reply', async (_request, reply) => {
    reply.headers = () => { throw new Error('reply.headers replaced by a broken decorator') }
    throw new Error('route secret')
  })
  const res = await app.inject('/broken-reply')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.equal(await total(), 1)
})

test('the raw 500 of a double fault keeps the headers set before, but those of the replaced body', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('access-control-allow-origin', 'https://app.example')
    reply.header('vary', 'Origin')
    reply.header('set-cookie', ['a=1; Path=/', 'b=2; Path=/'])
    reply.raw.setHeader('x-frame-options', 'DENY') // set on the raw response, as helmet does
  })
  app.addHook('onSend', async (_request, reply) => {
    if (reply.statusCode === 500) {
      reply.header('x-late', 'set by the failing hook')
      throw new Error('hook secret')
    }
  })
  app.get('/boom', async (_request, reply) => {
    reply.header('content-encoding', 'gzip').header('etag', '"v1"').header('content-disposition', 'attachment')
    reply.header('last-modified', 'Mon, 01 Jan 2024 00:00:00 GMT').header('transfer-encoding', 'chunked')
    reply.header('x-bad', ['fine', 42 as unknown as string])
    throw new Error('route secret')
  })
  const port = await listenOnLoopback(app)
  const res = await rawRequest(port, ['GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody(res.headers['x-request-id']))
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(res.headers.vary, 'Origin')
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.same(res.head.match(/^set-cookie: .*$/gim), ['set-cookie: a=1; Path=/', 'set-cookie: b=2; Path=/'], 'both cookies')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-store')
  for (const stale of ['content-encoding', 'etag', 'content-disposition', 'last-modified', 'transfer-encoding', 'x-bad']) {
    t.notOk(stale in res.headers, `${stale} is not kept`)
  }
  t.equal(await total(), 1)
})

// When Node ends a response before a failure surfaces depends on the Node (Node 20 emits 'finish'
// inside end() for an injected request, Node 22+ later): the raw writer itself must leave an ended
// response alone, on every Node.
test('the raw writer leaves a response that already ended alone: nothing written, nothing thrown', async (t) => {
  let touched = 0
  const touch = (): never => { touched++; throw new Error('must not be called') }
  const raw = { writableEnded: true, headersSent: true, writeHead: touch, end: touch, destroy: touch }
  t.doesNotThrow(() => writeRaw({ raw, request: { raw: {} } } as unknown as FastifyReply, { statusCode: 500, headers: {}, body: '', remove: [] }))
  t.equal(touched, 0)
})
