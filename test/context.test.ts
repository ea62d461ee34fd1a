import { test } from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { PanicInfo, PanicMessage } from '../types/index'
import { buildApp, genericBody, hostileRejection, watchUnhandledRejections } from './helper'

// Contract §12: the `context` option adds application fields to the panics of a request, under
// `panic.context` and `info.context`, copied with the bounds and redaction of `err`.

test('context fields reach the line, the handler and the channel', async (t) => {
  const handled: PanicInfo[] = []
  const published: PanicMessage[] = []
  const listener = (message: unknown): void => { published.push(message as PanicMessage) }
  subscribe('fastify-recovery.panic', listener)
  const calls: Array<[unknown, PanicInfo]> = []
  const { app, panics } = await buildApp({
    context: (request, info) => {
      calls.push([request, info])
      return { userId: request.headers['x-user'], tenant: 'acme', flags: ['new-checkout'], apiToken: 'SECRET' }
    },
    handler: (info) => { handled.push(info); return undefined }
  })
  t.teardown(async () => { unsubscribe('fastify-recovery.panic', listener); await app.close() })
  app.get('/checkout', async () => { throw new Error('x') })
  const res = await app.inject({ url: '/checkout', headers: { 'x-user': 'u-42' } })
  t.equal(res.body, genericBody('req-1'))
  const expected = { userId: 'u-42', tenant: 'acme', flags: ['new-checkout'], apiToken: '[redacted]' }
  t.same(panics()[0].panic?.context, expected)
  t.same(handled[0].context, expected)
  t.same(published[0].info.context, expected)
  t.equal(calls.length, 1)
  t.equal((calls[0][0] as { id: string }).id, 'req-1')
  t.match(calls[0][1], { source: 'request', route: '/checkout', requestId: 'req-1' })
  t.notMatch(JSON.stringify(panics()[0]), /SECRET/)
})

test('bounded like err: a large context is cut to 4 KiB', async (t) => {
  const { app, panics } = await buildApp({ context: () => ({ blob: 'b'.repeat(100_000), many: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v'.repeat(500)])) }) })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  await app.inject('/boom')
  const size = Buffer.byteLength(JSON.stringify(panics()[0].panic?.context))
  t.ok(size <= 4096, `${size} bytes`)
})

test('a context function that throws or answers something else: the panic goes on without it', async (t) => {
  const answers: Array<[string, () => unknown]> = [
    ['throws', () => { throw new Error('context bug') }],
    ['a string', () => 'user 42'],
    ['an array', () => ['a']],
    ['null', () => null],
    ['undefined', () => undefined],
    ['a Promise', () => Promise.resolve({ userId: 1 })],
    ['a rejected Promise', () => Promise.reject(new Error('context rejection'))],
    ['a rejected Promise whose constructor getter throws', () => hostileRejection('context rejection')],
    ['a Proxy', () => new Proxy({}, { ownKeys () { throw new Error('trap') } })]
  ]
  const noUnhandledRejections = watchUnhandledRejections(t)
  for (const [name, answer] of answers) {
    const { app, panics, total, lines } = await buildApp({ context: answer as never })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500, name)
    t.equal(res.body, genericBody('req-1'), name)
    t.equal(panics().length, 1, `${name}: the line`)
    t.notOk('context' in (panics()[0].panic ?? {}), `${name}: without context`)
    t.equal(await total(), 1, `${name}: counted once`)
    t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0)
  }
  await noUnhandledRejections()
})

test('no request, no context: background tasks without one, reported failures without one', async (t) => {
  let calls = 0
  const { app, panics } = await buildApp({ context: () => { calls++; return { a: 1 } } })
  t.teardown(() => app.close())
  await app.recovery.run(() => { throw new Error('task') })
  app.recovery.report(new Error('caught'))
  t.equal(calls, 0)
  t.equal(panics().length, 2)
})

// Contract §11, §12: the context function is the application's code: what it changes in the info it
// is given reaches neither the reply, nor the line, nor the count.
test('a context function that rewrites the info it is given changes nothing of the panic', async (t) => {
  const CANARY = 'CANARY-context-8d02'
  const { app, panics, count } = await buildApp({
    context: (_request, info) => {
      Object.assign(info, { requestId: info.error.message, route: CANARY, method: CANARY, source: CANARY, fingerprint: CANARY })
      delete (info as Partial<PanicInfo>).error
      return { user: 'u1' }
    }
  })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error(CANARY) })
  const res = await app.inject('/boom')
  t.equal(res.body, genericBody('req-1'))
  t.notMatch(JSON.stringify(res.headers), CANARY)
  t.match(panics()[0], { reqId: 'req-1', err: { message: CANARY }, panic: { source: 'request', method: 'GET', route: '/boom', fingerprint: /^[0-9a-f]{12}$/, context: { user: 'u1' } } })
  t.notMatch(JSON.stringify(panics()[0].panic), CANARY)
  t.equal(await count({ source: 'request', method: 'GET', route: '/boom' }), 1)
})
