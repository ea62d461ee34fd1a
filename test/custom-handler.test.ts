import { test } from 'tap'
import type { PanicInfo } from '../types/index'
import { buildApp, genericBody, HostileSpecies, hostileRejection, watchUnhandledRejections } from './helper'

test('the handler gets the panic after it is logged and counted, and its reply is sent', async (t) => {
  const seen: Array<{ info: PanicInfo, lines: number, counted: number }> = []
  const built = await buildApp({
    handler: async (info, request, reply) => {
      seen.push({ info, lines: built.panics().length, counted: await built.total() })
      t.equal(request.id, info.requestId)
      t.equal(typeof reply.code, 'function')
      return { statusCode: 503, headers: { 'retry-after': '10', 'X-Custom': 'yes' }, body: { sorry: true, id: info.requestId } }
    }
  })
  const { app } = built
  t.teardown(() => app.close())
  class DbDown extends Error {}
  const thrown = new DbDown('db down at 10.0.0.7')
  app.get('/users/:id', async () => { throw thrown })

  const res = await app.inject('/users/9')
  t.equal(res.statusCode, 503)
  t.same(res.json(), { sorry: true, id: 'req-1' })
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.headers['retry-after'], '10')
  t.equal(res.headers['x-custom'], 'yes')
  t.equal(res.headers['cache-control'], 'no-store', 'defaults stay unless overridden')
  t.equal(res.headers['x-request-id'], 'req-1')

  t.equal(seen.length, 1, 'called once')
  const { info, lines, counted } = seen[0]
  t.equal(lines, 1, 'after it was logged')
  t.equal(counted, 1, 'after it was counted')
  t.equal(info.error, thrown)
  t.equal(info.value, thrown)
  t.equal(info.source, 'request')
  t.equal(info.method, 'GET')
  t.equal(info.route, '/users/:id')
  t.equal(info.requestId, 'req-1')
  t.type(info.latencyMs, 'number')
  t.match(info.fingerprint, /^[0-9a-f]{12}$/)
  t.equal(info.fingerprint, built.panics()[0].panic?.fingerprint)
  t.equal(await built.total(), 1)
})

test('undefined (sync or async) sends the default reply', async (t) => {
  for (const handler of [() => undefined, async () => undefined, () => null as never]) {
    const { app, total } = await buildApp({ handler })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500)
    t.equal(res.body, genericBody('req-1'))
    t.equal(await total(), 1)
  }
})

test('string and Buffer bodies are sent as they are; statusCode alone keeps the default body', async (t) => {
  const answers = [
    { body: '<h1>Oops</h1>', headers: { 'content-type': 'text/html; charset=utf-8' } },
    { body: 'plain words' },
    { body: Buffer.from([1, 2, 3]) },
    { statusCode: 502 },
    { body: 42 },
    { statusCode: 499 }
  ]
  let next = 0
  const { app } = await buildApp({ handler: () => answers[next++] })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })

  const html = await app.inject('/boom')
  t.equal(html.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(html.body, '<h1>Oops</h1>')
  const text = await app.inject('/boom')
  t.equal(text.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(text.body, 'plain words')
  const binary = await app.inject('/boom')
  t.equal(binary.headers['content-type'], 'application/octet-stream')
  t.same([...binary.rawPayload], [1, 2, 3])
  const status = await app.inject('/boom')
  t.equal(status.statusCode, 502)
  t.same(status.json(), { statusCode: 502, error: 'Bad Gateway', message: 'Internal Server Error', requestId: 'req-4' })
  const number = await app.inject('/boom')
  t.equal(number.body, '42')
  const unnamed = await app.inject('/boom')
  t.equal(unnamed.statusCode, 499)
  t.equal(unnamed.json().error, 'Error', 'a status without a standard reason phrase')
})

test('a handler that fails gets the default reply, a "recovery handler failed" line, one count', async (t) => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const failures: Array<[string, () => unknown, RegExp]> = [
    ['throws', () => { throw new Error('handler bug') }, /handler bug/],
    ['rejects', async () => { throw new Error('async handler bug') }, /async handler bug/],
    ['rejects with a non-Error', () => Promise.reject('nope'), /non-Error value was thrown: "nope"/], // eslint-disable-line prefer-promise-reject-errors
    ['statusCode 200', () => ({ statusCode: 200 }), /statusCode 200/],
    ['statusCode 600', () => ({ statusCode: 600 }), /statusCode 600/],
    ['statusCode as a string', () => ({ statusCode: '503' }), /statusCode "503"/],
    ['fractional statusCode', () => ({ statusCode: 503.5 }), /statusCode 503.5/],
    ['a string answer', () => 'oops', /a string instead of an object/],
    ['headers not an object', () => ({ headers: 'x' }), /headers "x", not an object/],
    ['a header value not a string', () => ({ headers: { 'x-n': 5 } }), /header "x-n" with a number value/],
    ['a header that cannot be sent', () => ({ headers: { 'x-bad': 'a\nb' } }), /headers that cannot be sent/],
    ['a header name that cannot be sent', () => ({ headers: { 'bad name': 'x' } }), /headers that cannot be sent/],
    ['a circular body', () => ({ body: circular }), /circular/i],
    ['a body JSON cannot hold', () => ({ body: () => {} }), /body that is not JSON/],
    ['a then getter that throws', () => ({ get then () { throw new Error('then getter') } }), /then getter/],
    ['never settles', () => new Promise(() => {}), /did not settle within 50 ms/],
    ['rejects, with a constructor getter that throws', () => hostileRejection('handler rejection'), /handler rejection/],
    ['rejects, with a constructor that cannot be shadowed', () => hostileRejection('handler rejection', false), /a promise was returned that cannot be awaited/i],
    ['rejects, with a species that throws', () => HostileSpecies.reject(new Error('species rejection')), /species rejection/]
  ]
  const noUnhandledRejections = watchUnhandledRejections(t)
  for (const [name, handler, reason] of failures) {
    const { app, lines, total } = await buildApp({ handler: handler as never, handlerTimeout: 50 })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('the panic') })
    app.get('/ok', async () => 'ok')
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500, name)
    t.equal(res.body, genericBody('req-1'), name)
    const failed = lines.filter((line) => line.msg === 'recovery handler failed')
    t.equal(failed.length, 1, `${name}: one failure line`)
    t.match(failed[0]?.err?.message, reason, name)
    t.equal(failed[0]?.reqId, 'req-1')
    t.equal(failed[0]?.panic?.fingerprint, lines.find((line) => line.msg === 'panic recovered')?.panic?.fingerprint)
    t.equal(await total(), 1, `${name}: counted once`)
    t.equal((await app.inject('/ok')).statusCode, 200, `${name}: still serving`)
  }
  await noUnhandledRejections()
})

test('the handler is not called for client or service errors', async (t) => {
  let calls = 0
  const { app } = await buildApp({ handler: () => { calls++ } })
  t.teardown(() => app.close())
  app.get('/404', async () => { throw Object.assign(new Error('gone'), { statusCode: 404 }) })
  app.get('/503', async () => { throw Object.assign(new Error('busy'), { statusCode: 503 }) })
  await app.inject('/404')
  await app.inject('/503')
  t.equal(calls, 0)
})

test('a handler that sends the reply itself is left alone', async (t) => {
  const { app, total } = await buildApp({ handler: async (_info, _request, reply) => { await reply.code(500).send('sent by the handler') } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  const res = await app.inject('/boom')
  t.equal(res.body, 'sent by the handler')
  t.equal(await total(), 1)
})

test('a client gone while the handler ran gets nothing written', async (t) => {
  let release: () => void = () => {}
  const { app, total } = await buildApp({ handler: () => new Promise<undefined>((resolve) => { release = () => resolve(undefined) }) })
  t.teardown(() => app.close())
  app.get('/boom', async (_request, reply) => {
    setImmediate(() => { reply.raw.destroy(); setImmediate(release) })
    throw new Error('x')
  })
  await app.inject('/boom').catch(() => {})
  t.equal(await total(), 1)
})

test('a handler cannot leak: sending the failure itself gets the default reply and a failure line', async (t) => {
  const sends: Array<[string, (panic: import('../types/index').PanicInfo, reply: import('fastify').FastifyReply) => unknown]> = [
    ['reply.send(panic.error)', (panic, reply) => reply.send(panic.error)],
    ['reply.send(panic.value), a non-Error', (panic, reply) => reply.send(panic.value)],
    ['reply.send(new Error(...)) with the message', (panic, reply) => reply.send(new Error(panic.error.message))],
    ['reply.code(503).send(panic.error), then awaits', async (panic, reply) => { await reply.code(503).send(panic.error) }],
    ['sends the error later, after returning', (panic, reply) => { setImmediate(() => reply.send(panic.error)) }]
  ]
  for (const [name, send] of sends) {
    const { app, lines, total } = await buildApp({ handler: (panic, _request, reply) => send(panic, reply) as undefined })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw typeof name === 'string' && name.includes('non-Error') ? 'SECRET-VALUE' : new Error('SECRET-MESSAGE') })
    app.get('/ok', async () => 'ok')
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500, name)
    t.equal(res.body, genericBody('req-1'), name)
    t.notMatch(res.body, /SECRET/, name)
    t.equal(await total(), 1, `${name}: counted once`)
    await new Promise((resolve) => setImmediate(resolve))
    const failed = lines.filter((line) => line.msg === 'recovery handler failed')
    if (!name.includes('later')) {
      t.equal(failed.length, 1, `${name}: one failure line`)
      t.match(failed[0]?.err?.message, /sent the failure itself/, name)
    }
    t.equal((await app.inject('/ok')).statusCode, 200, `${name}: still serving`)
  }
})

test('headers that decide framing or the connection are a handler failure', async (t) => {
  for (const header of ['content-length', 'Transfer-Encoding', 'connection', 'keep-alive', 'upgrade', 'trailer', 'te', 'proxy-connection']) {
    const { app, lines, total } = await buildApp({ handler: () => ({ statusCode: 503, headers: { [header]: header === 'content-length' ? '5' : 'chunked' }, body: 'down' }) })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500, header)
    t.equal(res.body, genericBody('req-1'), header)
    t.notOk(res.headers['transfer-encoding'], `${header}: no transfer-encoding next to content-length`)
    t.match(lines.find((line) => line.msg === 'recovery handler failed')?.err?.message, new RegExp(`"${header.toLowerCase()}", which only the plugin may set`))
    t.equal(await total(), 1)
  }
})

test('an answer whose fields cannot be read is a handler failure, never a literal marker', async (t) => {
  const unreadable: Array<[string, () => unknown]> = [
    ['a body getter that throws', () => ({ get body () { throw new Error('body getter') } })],
    ['a statusCode getter that throws', () => ({ get statusCode () { throw new Error('statusCode getter') } })],
    ['a headers getter that throws', () => ({ get headers () { throw new Error('headers getter') } })],
    ['headers whose entries cannot be read', () => ({ headers: new Proxy({}, { ownKeys () { throw new Error('ownKeys') } }) })],
    ['a body whose toJSON throws', () => ({ body: { toJSON () { throw new Error('toJSON') } } })],
    ['a Proxy answer', () => new Proxy({}, { get () { throw new Error('proxy answer') } })]
  ]
  for (const [name, answer] of unreadable) {
    const { app, lines, total } = await buildApp({ handler: answer as never })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500, name)
    t.equal(res.body, genericBody('req-1'), name)
    t.notMatch(res.body, /unreadable/)
    t.equal(lines.filter((line) => line.msg === 'recovery handler failed').length, 1, `${name}: one failure line`)
    t.equal(await total(), 1)
  }
})

test('a handler failure is logged at logLevel: not when the logger is above it', async (t) => {
  const { app, lines, total } = await buildApp({ logLevel: 'debug', handler: () => { throw new Error('handler bug') } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  t.equal((await app.inject('/boom')).statusCode, 500)
  t.equal(lines.filter((line) => line.msg === 'recovery handler failed' || line.msg === 'panic recovered').length, 0)
  t.equal(await total(), 1)
})

// Contract §4, §11: the reply is decided from the plugin's own reading; the handler's copy of the
// info is its own.
test('a handler that rewrites the info it is given changes nothing of the reply, the line or the count', async (t) => {
  const CANARY = 'CANARY-handler-2e9b'
  const { app, panics, count } = await buildApp({
    handler: (info) => {
      Object.assign(info, { requestId: info.error.message, route: CANARY, fingerprint: CANARY })
      return undefined
    }
  })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error(CANARY) })
  const res = await app.inject('/boom')
  t.equal(res.body, genericBody('req-1'))
  t.equal(res.headers['x-request-id'], 'req-1')
  t.match(panics()[0], { reqId: 'req-1', panic: { route: '/boom', fingerprint: /^[0-9a-f]{12}$/ } })
  t.equal(await count({ route: '/boom' }), 1)
  // a custom body still carries the plugin's request id when it asks for the default one
  const { app: custom } = await buildApp({ handler: (info) => { info.requestId = CANARY; return { statusCode: 503 } } })
  t.teardown(() => custom.close())
  custom.get('/boom', async () => { throw new Error('x') })
  t.equal((await custom.inject('/boom')).body, JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: 'Internal Server Error', requestId: 'req-1' }))
})
