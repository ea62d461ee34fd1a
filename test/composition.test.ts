import { test, type Test } from 'tap'
import { channel } from 'node:diagnostics_channel'
import fastifyCookie from '@fastify/cookie'
import { context, type ContextManager } from '@opentelemetry/api'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { capturePanics } from '../testing'
import type { FastifyRecoveryOptions, PanicMessage } from '../types/index'
import { buildApp, genericBody, listenOnLoopback, rawRequest, recovery, type TestApp } from './helper'

// Contract §18: inside the application's own error handling. An application error handler decides
// the reply for what it answers; a panic it answers with a server error, or fails on, is recorded
// once; what it throws, rejects with or hands on is answered by the plugin (a thrown value is never a
// payload); a failure never becomes a success; failures after the reply are recorded; each
// integration is isolated; one failure, one record; cookies survive a double fault.

const SECRET = 'postgres://app:hunter2@db'
const PASSWORD = 'hunter2'
type Handler = (error: any, request: FastifyRequest, reply: FastifyReply) => unknown

/** An app with the plugin, watched: its lines, its count, the channel's messages and a capture. */
async function watched (t: Test, options: FastifyRecoveryOptions = {}, setup: { before?: (app: FastifyInstance) => void } = {}): Promise<TestApp & { published: PanicMessage[], captured: ReturnType<typeof capturePanics> }> {
  const published: PanicMessage[] = []
  const onPanic = (message: unknown): void => { published.push(message as PanicMessage) }
  channel('fastify-recovery.panic').subscribe(onPanic)
  t.teardown(() => { channel('fastify-recovery.panic').unsubscribe(onPanic) })
  const built = await buildApp(options, {}, setup.before)
  t.teardown(() => built.app.close())
  const captured = capturePanics(built.app)
  return { ...built, published, captured }
}

/** What the outcome of one request was: its reply, the lines of its request, the count. */
async function outcome (built: TestApp, url: string, init: { method?: 'GET' | 'POST', payload?: object } = {}): Promise<{ statusCode: number, body: string, headers: Record<string, unknown>, lines: Array<Record<string, any>> }> {
  const before = built.lines.length
  const res = await built.app.inject({ url, method: init.method ?? 'GET', payload: init.payload })
  await new Promise((resolve) => setTimeout(resolve, 20))
  return { statusCode: res.statusCode, body: res.body, headers: res.headers, lines: built.lines.slice(before) }
}

const panicLines = (lines: Array<Record<string, any>>): Array<Record<string, any>> => lines.filter((line) => line.msg === 'panic recovered')

// every way an application handler is put in front of the plugin
const placements: Array<[string, (app: FastifyInstance, handler: Handler) => void, 'before' | 'after']> = [
  ['root, set before the plugin', (app, handler) => { app.setErrorHandler(handler) }, 'before'],
  ['root, set after the plugin', (app, handler) => { app.setErrorHandler(handler) }, 'after'],
  ['a child scope\'s', (app, handler) => { app.register(async (child) => { child.setErrorHandler(handler); child.get('/child/boom', async () => { throw new TypeError(`total of undefined ${SECRET}`) }) }) }, 'after'],
  ['a route\'s errorHandler option', (app, handler) => { app.get('/route/boom', { errorHandler: handler }, async () => { throw new TypeError(`total of undefined ${SECRET}`) }) }, 'after']
]
const boomOf = (placement: string): string => placement.startsWith('a child') ? '/child/boom' : placement.startsWith('a route') ? '/route/boom' : '/boom'

for (const [placement, place, when] of placements) {
  test(`an application handler (${placement}) that answers a panic with a 500: its reply, one line, one count, one message`, async (t) => {
    const mine: Handler = async (_error, _request, reply) => reply.code(500).send({ mine: true })
    // the reference: plain Fastify with the same handler
    const plain = Fastify()
    t.teardown(() => plain.close())
    place(plain, mine)
    plain.get('/boom', async () => { throw new TypeError(`total of undefined ${SECRET}`) })
    const expected = await plain.inject(boomOf(placement))

    let asked = 0
    const built = await watched(t, { handler: () => { asked++ } }, { before: when === 'before' ? (app) => place(app, mine) : undefined })
    if (when === 'after') place(built.app, mine)
    built.app.get('/boom', async () => { throw new TypeError(`total of undefined ${SECRET}`) })
    const res = await outcome(built, boomOf(placement))
    t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: expected.statusCode, body: expected.body }, 'the application\'s reply, as without the plugin')
    const [line, ...more] = panicLines(res.lines)
    t.same(more, [], 'one line')
    t.match(line, { reqId: 'req-1', err: { type: 'TypeError', message: /total of undefined/, stack: /TypeError: total of undefined/ }, panic: { source: 'request', statusCode: 500 } })
    t.notMatch(JSON.stringify(line), PASSWORD, 'the line is redacted')
    t.equal(await built.total(), 1, 'one count')
    t.equal(built.published.length, 1, 'one channel message')
    t.equal(built.captured.panics.length, 1, 'the test kit sees it')
    t.equal(asked, 0, 'the custom handler is not called for a reply the application chose')
  })
}

test('an application handler that answers a panic-class value with a status below 500 decides: nothing recorded', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler((error: Error, _request, reply) => {
    if (error.message === 'no such user') return reply.code(404).send({ notFound: true })
    if (error.message === 'fine') return { handled: true } // 200
    return reply.code(500).send({ mine: true })
  })
  built.app.get('/user', async () => { throw new Error('no such user') })
  built.app.get('/fine', async () => { throw new Error('fine') })
  built.app.get('/client', async () => { throw Object.assign(new Error('gone'), { statusCode: 410 }) })
  t.match(await outcome(built, '/user'), { statusCode: 404, body: '{"notFound":true}' })
  t.match(await outcome(built, '/fine'), { statusCode: 200, body: '{"handled":true}' })
  // a client error it answers with a 500 stays uncounted: it is not a panic
  t.match(await outcome(built, '/client'), { statusCode: 500, body: '{"mine":true}' })
  t.equal(panicLines(built.lines).length, 0)
  t.equal(await built.total(), 0)
  t.equal(built.published.length, 0)
})

for (const [name, value] of [['a string', `password=${PASSWORD}`], ['a plain object', { password: PASSWORD, note: 'x' }], ['null', null], ['a number', 42]] as const) {
  test(`a synchronous application handler that rethrows ${name}: the generic 500, never a 200 of the value`, async (t) => {
    const built = await watched(t)
    built.app.setErrorHandler((error: unknown) => { throw error })
    built.app.get('/throw', () => { throw value })
    built.app.get('/ok', async () => 'still serving')
    const res = await outcome(built, '/throw')
    t.equal(res.statusCode, 500)
    t.equal(res.body, genericBody('req-1'))
    t.equal(panicLines(res.lines).length, 1, 'one line')
    t.equal(await built.total(), 1, 'one count')
    t.notMatch(JSON.stringify(res.lines), PASSWORD, 'nothing of it in any line')
    t.equal((await built.app.inject('/ok')).body, 'still serving')
  })
}

test('an application handler that returns or sends the thrown non-Error: never a payload', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler((error: unknown, request, reply) => request.url === '/returned' ? error : reply.send(error))
  built.app.get('/returned', () => { throw `password=${PASSWORD}` }) // eslint-disable-line no-throw-literal
  built.app.get('/sent', () => { throw `password=${PASSWORD}` }) // eslint-disable-line no-throw-literal
  for (const url of ['/returned', '/sent']) {
    const res = await outcome(built, url)
    t.equal(res.statusCode, 500, url)
    t.notMatch(res.body, PASSWORD)
  }
  t.equal(await built.total(), 2)
})

test('an application handler that sets a 4xx and then fails: the generic 500, its failure recorded, nothing leaked', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler(async (error: Error & { statusCode?: number }, _request, reply) => {
    reply.code(error.statusCode ?? 404)
    if (error.message === 'bug') return (undefined as unknown as { body: string }).body // a TypeError building its body
    throw new Error(`audit write failed: ${SECRET}`) // a DB error from its audit write
  })
  built.app.get('/client-bug', async () => { throw Object.assign(new Error('bug'), { statusCode: 404 }) })
  built.app.get('/client-db', async () => { throw Object.assign(new Error('gone'), { statusCode: 404 }) })
  built.app.get('/panic-db', async () => { throw new RangeError('bad index') })
  for (const url of ['/client-bug', '/client-db']) {
    const res = await outcome(built, url)
    t.equal(res.statusCode, 500, `${url}: the failure is a panic, whatever the status set`)
    t.equal(res.body, genericBody(res.headers['x-request-id'] as string))
    t.equal(panicLines(res.lines).length, 1, `${url}: its failure is the line`)
    t.notMatch(JSON.stringify(res.lines), PASSWORD, `${url}: no line carries the password`)
  }
  t.match(panicLines(built.lines)[0].err, { type: 'TypeError' })
  // a panic it fails on: the panic is the line, its failure a second line; counted once
  const res = await outcome(built, '/panic-db')
  t.equal(res.statusCode, 500)
  t.match(panicLines(res.lines), [{ err: { type: 'RangeError', message: 'bad index' }, panic: { statusCode: 500 } }])
  t.match(res.lines.filter((line) => line.msg === 'recovery handler failed'), [{ err: { message: /audit write failed/ } }])
  t.notMatch(JSON.stringify(res.lines), PASSWORD)
  t.equal(await built.total(), 3, 'one count per request')
})

test('an application handler that answers and then fails: its reply stands, its failure is recorded with source response', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler((_error: Error, request, reply) => {
    if (request.url === '/sync') {
      reply.code(400).send({ bad: true })
      throw new Error(`after the reply: ${SECRET}`)
    }
    return (async () => {
      reply.code(400).send({ bad: true })
      await Promise.reject(new Error(`audit rejected: ${SECRET}`))
    })()
  })
  built.app.get('/sync', async () => { throw Object.assign(new Error('bad'), { statusCode: 400 }) })
  built.app.get('/async', async () => { throw Object.assign(new Error('bad'), { statusCode: 400 }) })
  for (const url of ['/sync', '/async']) {
    const res = await outcome(built, url)
    t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 400, body: '{"bad":true}' }, url)
    t.match(panicLines(res.lines), [{ panic: { source: 'response', statusCode: 400 } }], `${url}: recorded`)
    t.same(res.lines.filter((line) => /reply\.sent|already sent/i.test(line.msg ?? '')), [], `${url}: no raw line of Fastify's`)
    t.notMatch(JSON.stringify(res.lines), PASSWORD)
  }
  t.equal(await built.count({ source: 'response' }), 2)
})

test('a route handler that fails after its reply was sent: source response, one line, one count, no raw line', async (t) => {
  // the reference: plain Fastify writes the raw error, password and all
  const plain = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { plainLines.push(line) } } } })
  const plainLines: string[] = []
  t.teardown(() => plain.close())
  plain.get('/async', async (_request, reply) => {
    reply.code(202).send({ accepted: true })
    await new Promise((resolve) => setTimeout(resolve, 5))
    throw new Error(`post-processing failed: ${SECRET}`)
  })
  await plain.inject('/async')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(plainLines.join(''), PASSWORD, 'without the plugin, Fastify\'s line carries the secret')

  const built = await watched(t)
  built.app.get('/async', async (_request, reply) => {
    reply.code(202).send({ accepted: true })
    await new Promise((resolve) => setTimeout(resolve, 5))
    throw new Error(`post-processing failed: ${SECRET}`)
  })
  built.app.get('/sync', (_request, reply) => {
    reply.code(202).send({ accepted: true })
    throw new Error(`post-processing failed: ${SECRET}`)
  })
  built.app.get('/ok', async () => 'still serving')
  for (const url of ['/async', '/sync']) {
    const res = await outcome(built, url)
    t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 202, body: '{"accepted":true}' }, `${url}: the reply as sent`)
    t.match(panicLines(res.lines), [{ reqId: /^req-/, err: { message: /post-processing failed/ }, panic: { source: 'response', statusCode: 202, route: url } }])
    t.same(res.lines.filter((line) => line.level >= 40 && line.msg !== 'panic recovered'), [], `${url}: no other warning or error line`)
    t.notMatch(JSON.stringify(res.lines), PASSWORD)
  }
  t.equal(await built.count({ source: 'response' }), 2)
  t.equal(built.captured.panics.length, 2)
  t.equal((await built.app.inject('/ok')).body, 'still serving')
})

test('an onResponse hook that fails: source response, one line, one count; Fastify\'s line for the request without the raw error', async (t) => {
  const hooks: Array<[string, (app: FastifyInstance) => void]> = [
    ['async', (scope) => { scope.addHook('onResponse', async () => { throw new Error(`audit write failed: ${SECRET}`) }) }],
    ['callback', (scope) => { scope.addHook('onResponse', (_request, _reply, done) => { done(new Error(`audit write failed: ${SECRET}`)) }) }],
    ['sync, a string', (scope) => { scope.addHook('onResponse', function (_request, _reply, _done): void { throw `audit write failed: ${SECRET}` }) }] // eslint-disable-line no-throw-literal
  ]
  // the reference: plain Fastify logs the raw error as "request errored", uncounted
  const plainLines: string[] = []
  const plain = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { plainLines.push(line) } } } })
  t.teardown(() => plain.close())
  hooks[0][1](plain)
  plain.get('/audited', async () => ({ done: true }))
  t.equal((await plain.inject('/audited')).statusCode, 200)
  t.match(plainLines.join(''), /"msg":"request errored"/)
  t.match(plainLines.join(''), PASSWORD, 'without the plugin, Fastify\'s line carries the secret')

  for (const [kind, addHook] of hooks) {
    const built = await watched(t)
    built.app.register(async (scope) => {
      addHook(scope)
      scope.get('/audited', async () => ({ done: true }))
    })
    // a sibling scope without a failing hook: its requests complete as ever
    built.app.get('/ok', async () => 'still serving')
    const res = await outcome(built, '/audited')
    t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 200, body: '{"done":true}' }, `${kind}: the reply as sent`)
    t.match(panicLines(res.lines), [{ reqId: 'req-1', err: kind.endsWith('string') ? { type: 'string' } : { type: 'Error', message: /audit write failed/ }, panic: { source: 'response', statusCode: 200, route: '/audited' } }], `${kind}: one line`)
    t.match(res.lines.filter((line) => line.msg !== 'panic recovered' && line.msg !== 'incoming request'), [{ msg: 'request completed', res: { statusCode: 200 } }], `${kind}: Fastify's own line, completed, without the error`)
    t.notMatch(JSON.stringify(res.lines), PASSWORD, `${kind}: nothing leaked`)
    t.equal(await built.count({ source: 'response', route: '/audited' }), 1, `${kind}: one count`)
    t.equal(built.published.length, 1)
    t.equal(built.captured.panics.length, 1)
    const after = await outcome(built, '/ok')
    t.equal(after.body, 'still serving')
    t.match(after.lines, [{ msg: 'incoming request' }, { msg: 'request completed' }], 'a request whose hooks succeed: Fastify\'s lines as ever')
  }
})

test('an onResponse hook that fails with a hostile value, in an app with its own error handler and a custom handler: one line and one count each, the plugin never fails', async (t) => {
  const revocable = Proxy.revocable({}, {})
  revocable.revoke()
  const hostile: Array<[string, unknown]> = [
    ['a revoked Proxy', revocable.proxy],
    ['an Error whose message and stack are getters that throw', Object.defineProperties(Object.create(Error.prototype), { message: { get () { throw new Error(PASSWORD) } }, stack: { get () { throw new Error(PASSWORD) } } })],
    ['a frozen Error', Object.freeze(new Error(`frozen ${SECRET}`))],
    ['a Symbol', Symbol(SECRET)]
  ]
  let handlerAsked = 0
  let appHandlerAsked = 0
  const built = await watched(t, { handler: () => { handlerAsked++ } })
  built.app.setErrorHandler(async (error) => { appHandlerAsked++; throw error })
  let current: unknown
  built.app.register(async (scope) => {
    scope.addHook('onResponse', async () => { throw current })
    scope.get('/audited', async (_request, reply) => { reply.code(201); return { done: true } })
  })
  built.app.get('/ok', async () => 'still serving')
  for (const [name, value] of hostile) {
    current = value
    const res = await outcome(built, '/audited')
    t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 201, body: '{"done":true}' }, `${name}: the reply as sent`)
    t.match(panicLines(res.lines), [{ panic: { source: 'response', statusCode: 201, route: '/audited' } }], `${name}: one line`)
    t.same(res.lines.filter((line) => line.msg === 'recovery failed' || line.msg === 'request errored'), [], `${name}: the plugin did not fail, no raw line`)
    t.notMatch(JSON.stringify(res.lines), PASSWORD, `${name}: nothing leaked`)
  }
  t.equal(await built.count({ source: 'response', route: '/audited' }), hostile.length, 'one count each')
  t.equal(handlerAsked, 0, 'the custom handler chooses replies: there is none to choose after the response')
  t.equal(appHandlerAsked, 0, 'nor is the application\'s error handler asked')
  t.equal((await built.app.inject('/ok')).body, 'still serving')
})

test('an onResponse hook that fails in a scope without the plugin: Fastify\'s line, nothing recorded', async (t) => {
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  const registry = new (await import('prom-client')).Registry()
  app.register(async (covered) => { await covered.register(recovery, { metrics: { registry } }) })
  app.register(async (sibling) => {
    sibling.addHook('onResponse', async () => { throw new Error('not the plugin\'s') })
    sibling.get('/sibling', async () => 'ok')
  })
  t.equal((await app.inject('/sibling')).body, 'ok')
  t.match(lines.filter((line) => line.msg === 'request errored'), [{ err: { message: 'not the plugin\'s' } }])
  t.same(lines.filter((line) => line.msg === 'panic recovered'), [])
})

test('a successful route is untouched by the cover: its value, its status, its headers', async (t) => {
  const built = await watched(t)
  built.app.get('/sync', (_request, reply) => { reply.header('x-mine', '1'); return { sync: true } })
  built.app.get('/async', async (_request, reply) => { reply.code(201); return { async: true } })
  built.app.get('/sent', async (_request, reply) => reply.send('sent'))
  t.match(await built.app.inject('/sync'), { statusCode: 200, body: '{"sync":true}', headers: { 'x-mine': '1' } })
  t.match(await built.app.inject('/async'), { statusCode: 201, body: '{"async":true}' })
  t.match(await built.app.inject('/sent'), { statusCode: 200, body: 'sent' })
  t.equal(built.lines.filter((line) => line.level >= 40).length, 0)
})

// Contract §18: "a failure never becomes a success". Fastify goes on with a request unless
// `reply.sent` (lib/hooks.js, lib/handle-request.js) and sends what a route returned unless the
// reply was hijacked (lib/wrap-thenable.js): while the plugin awaits the custom handler, it holds
// the reply as sent.
for (const handler of [async (): Promise<undefined> => undefined, async () => ({ statusCode: 503, body: { busy: true } })]) {
  test(`fail-open: an async auth hook that sends an Error without returning reply, with a custom handler (${handler.name || 'answers'}): the route never runs`, async (t) => {
    const built = await watched(t, { handler: async () => { await new Promise((resolve) => setTimeout(resolve, 10)); return await handler() } })
    let ran = 0
    built.app.get('/protected', {
      preHandler: async (_request, reply) => { reply.send(new Error('auth backend down')) } // no `return reply`
    }, async () => { ran++; return { secret: 'the protected data' } })
    built.app.get('/route-sends', async (_request, reply) => { reply.send(new Error('route failed')); return { secret: 'the route data' } })
    built.app.get('/route-sends-nothing', async (_request, reply) => { reply.send(new Error('route failed')) })
    built.app.setNotFoundHandler(async (_request, reply) => { reply.send(new Error('not found handler failed')) })
    for (const url of ['/protected', '/route-sends', '/route-sends-nothing', '/nowhere']) {
      const res = await outcome(built, url)
      t.not(res.statusCode, 200, `${url}: no success`)
      t.notMatch(res.body, /secret|protected data|route data/, `${url}: no data of the route`)
      t.not(res.body, '', `${url}: not an empty reply`)
    }
    t.equal(ran, 0, 'the protected route never ran')
    t.equal(await built.total(), 4, 'each counted once')
  })
}

test('fail-open: an async application handler forwarding with reply.send(err) while the custom handler runs: no empty 200', async (t) => {
  const built = await watched(t, { handler: async () => { await new Promise((resolve) => setTimeout(resolve, 10)) } })
  built.app.setErrorHandler(async (error, _request, reply) => { reply.send(error) })
  built.app.get('/boom', async () => { throw new Error('boom') })
  const res = await outcome(built, '/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.equal(await built.total(), 1)
})

test('an OpenTelemetry context manager that throws stops neither the custom handler, the channel, the line nor the count', async (t) => {
  const throwing = (): never => { throw new Error('broken context manager') }
  const manager = { active: throwing, with: throwing, bind: throwing, enable: () => manager, disable: () => manager } as unknown as ContextManager
  context.setGlobalContextManager(manager)
  t.teardown(() => { context.disable() })
  let asked = 0
  const built = await watched(t, { handler: () => { asked++; return { statusCode: 503, body: { chosen: true } } } })
  built.app.get('/boom', async () => { throw new Error('boom') })
  const res = await outcome(built, '/boom')
  t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 503, body: '{"chosen":true}' }, 'the custom handler chose the reply')
  t.equal(asked, 1)
  t.equal(panicLines(res.lines).length, 1)
  t.match(res.lines.filter((line) => line.msg === 'recovery failed'), [{ err: { message: 'broken context manager' } }], 'the integration\'s failure is on record')
  t.equal(await built.total(), 1)
  t.equal(built.published.length, 1)
  t.equal(built.captured.panics.length, 1)
})

test('one failure, one record: an error handler that reports and rethrows, a task that reports and rethrows', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler((error, request) => {
    built.app.recovery.report(error, { request })
    throw error
  })
  built.app.get('/boom', async () => { throw new Error('boom') })
  const res = await outcome(built, '/boom')
  t.equal(res.statusCode, 500)
  t.equal(panicLines(res.lines).length, 1)
  t.equal(await built.total(), 1)
  const failure = new Error('task')
  const first = built.app.recovery.report(failure)
  await built.app.recovery.run(async () => { throw failure })
  t.same(built.app.recovery.report(failure).fingerprint, first.fingerprint, 'report returns the first record\'s info')
  t.equal(await built.total(), 2)
})

test('a panic after reply.setCookie, then an onSend hook that fails on the error reply: the fallback keeps the cookie', async (t) => {
  const setup = (app: FastifyInstance): void => {
    app.register(fastifyCookie)
    app.after(() => {
      app.register(async (scope) => {
        let sending = 0
        scope.addHook('onSend', async () => { if (++sending === 1) throw new Error('onSend failed on the error reply') })
        scope.get('/boom', async (_request, reply) => { reply.setCookie('session', 'abc'); throw new Error('boom') })
      })
    })
  }
  const plain = Fastify()
  t.teardown(() => plain.close())
  setup(plain)
  const expected = await plain.inject('/boom')
  t.match(expected.headers['set-cookie'], /session=abc/, 'plain Fastify keeps it')

  const built = await watched(t)
  setup(built.app)
  const res = await built.app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.match(res.headers['set-cookie'], /session=abc/, 'the fallback keeps it')
  t.equal(await built.total(), 1)
})

test('inject: a POST whose body was read before the handler threw keeps its connection, as on a socket', async (t) => {
  const built = await watched(t)
  built.app.post('/boom', async () => { throw new Error('boom') })
  const res = await outcome(built, '/boom', { method: 'POST', payload: { order: 1 } })
  t.equal(res.statusCode, 500)
  const plain = Fastify()
  t.teardown(() => plain.close())
  plain.post('/boom', async () => { throw new Error('boom') })
  const expected = await plain.inject({ method: 'POST', url: '/boom', payload: { order: 1 } })
  t.equal(res.headers.connection, expected.headers.connection, 'as plain Fastify: keep-alive')
  t.not(res.headers.connection, 'close')
})

test('an application handler that replies twice: Fastify\'s own warning once the first went out; never two replies while one is in flight', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler((_error: Error, _request, reply) => {
    reply.code(409).send({ first: true })
    reply.send({ second: true })
  })
  built.app.get('/twice', async () => { throw new Error('boom') })
  const res = await outcome(built, '/twice')
  t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 409, body: '{"first":true}' })
  t.match(res.lines.filter((line) => line.level === 40), [{ err: { code: 'FST_ERR_REP_ALREADY_SENT' } }], 'as plain Fastify warns')

  // an async onSend hook keeps the first reply in flight; the async handler did not return `reply`,
  // so Fastify sends its (undefined) result too: that second reply is never written
  const slow = await watched(t)
  slow.app.addHook('onSend', async (_request, _reply, payload) => { await new Promise((resolve) => setTimeout(resolve, 10)); return payload })
  slow.app.setErrorHandler(async (_error, _request, reply) => { reply.code(409).send({ first: true }) })
  slow.app.get('/slow', async () => { throw new Error('boom') })
  const inFlight = await outcome(slow, '/slow')
  t.same({ statusCode: inFlight.statusCode, body: inFlight.body }, { statusCode: 409, body: '{"first":true}' })
  t.equal(await slow.total(), 0)
})

test('a panic an application handler hands on as a service error: the 503 as Fastify sends it, the panic recorded with it', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler(() => { throw Object.assign(new Error('try again later'), { statusCode: 503, cause: undefined }) })
  built.app.get('/db', async () => { throw new TypeError('pool of undefined') })
  const res = await outcome(built, '/db')
  t.equal(res.statusCode, 503)
  t.same(JSON.parse(res.body), { statusCode: 503, error: 'Service Unavailable', message: 'Service Unavailable' })
  t.match(panicLines(res.lines), [{ err: { type: 'TypeError' }, panic: { statusCode: 503 } }])
  t.equal(await built.total(), 1)
})

test('a wrapper the application hands on, carrying the panic as its cause: one record, the wrapper with its cause', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler((error: Error) => { throw new Error('order failed', { cause: error }) })
  built.app.get('/order', async () => { throw new TypeError('price of undefined') })
  const res = await outcome(built, '/order')
  t.equal(res.statusCode, 500)
  t.match(panicLines(res.lines), [{ err: { message: /order failed.*price of undefined/ } }])
  t.equal(await built.total(), 1)
})

test('a double fault after an application handler sent the thrown value: the fallback 500', async (t) => {
  const built = await watched(t)
  let sending = 0
  built.app.addHook('onSend', async () => { if (++sending === 1) throw new Error(`onSend failed: ${SECRET}`) })
  built.app.setErrorHandler((error, _request, reply) => reply.send(error))
  built.app.get('/string', () => { throw `password=${PASSWORD}` }) // eslint-disable-line no-throw-literal
  const res = await outcome(built, '/string')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.equal(await built.total(), 1)
})

test('an application handler that fails on a panic thrown after the response started: the response broken, the panic and the failure on record', async (t) => {
  const built = await watched(t)
  built.app.setErrorHandler(() => { throw new Error(`handler failed: ${SECRET}`) })
  built.app.get('/partial', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.write('first half')
    throw new TypeError('second half of undefined')
  })
  const port = await listenOnLoopback(built.app)
  const res = await rawRequest(port, ['GET /partial HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.ok(res.closed, 'the connection is destroyed')
  t.match(panicLines(built.lines), [{ err: { type: 'TypeError' }, panic: { source: 'response', statusCode: 200 } }])
  t.match(built.lines.filter((line) => line.msg === 'recovery handler failed'), [{ err: { message: /handler failed/ } }])
  t.notMatch(JSON.stringify(built.lines), PASSWORD)
  t.equal(await built.total(), 1)
})

test('a custom handler that breaks the request before its reply is built: the last resort answers, counted once', async (t) => {
  const built = await watched(t, {
    handler: (_info, request) => {
      Object.defineProperty(request, 'headers', { get () { throw new Error('headers getter') } })
      return { statusCode: 503 }
    }
  })
  built.app.get('/boom', async () => { throw new Error('boom') })
  const res = await outcome(built, '/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.match(res.lines.filter((line) => line.msg === 'recovery failed'), [{ err: { message: 'headers getter' } }])
  t.equal(await built.total(), 1)
})

test('a route returning a promise whose then cannot be used is Fastify\'s, as without the plugin', async (t) => {
  const hostile = (): Promise<string> => Object.defineProperty(Promise.resolve('x'), 'then', { value: () => { throw new Error('then') } })
  const plain = Fastify()
  t.teardown(() => plain.close())
  plain.get('/hostile', () => hostile())
  const expected = await plain.inject('/hostile')
  const built = await watched(t)
  built.app.get('/hostile', () => hostile())
  const res = await built.app.inject('/hostile')
  t.equal(res.statusCode, expected.statusCode)
  t.equal(res.statusCode, 500)
})

test('a route that hands an Error on, then fails while the application handler\'s reply is still in its onSend hooks: one reply, the failure recorded', async (t) => {
  const built = await watched(t)
  built.app.addHook('onSend', async (_request, _reply, payload) => { await new Promise((resolve) => setTimeout(resolve, 20)); return payload })
  built.app.setErrorHandler((_error, _request, reply) => { reply.code(400).send({ handled: true }) })
  built.app.get('/twice', async (_request, reply) => {
    reply.send(Object.assign(new Error('bad input'), { statusCode: 400 }))
    await new Promise((resolve) => setTimeout(resolve, 1))
    throw new Error(`cleanup failed: ${SECRET}`)
  })
  const res = await outcome(built, '/twice')
  t.same({ statusCode: res.statusCode, body: res.body }, { statusCode: 400, body: '{"handled":true}' })
  t.match(panicLines(res.lines), [{ err: { message: /cleanup failed/ }, panic: { source: 'response' } }])
  t.notMatch(JSON.stringify(res.lines), PASSWORD)
})
