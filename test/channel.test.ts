import { test } from 'tap'
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Readable } from 'node:stream'
import type { PanicMessage } from '../types/index'
import { buildApp, runScript, sleep } from './helper'

// Contract §11: every recorded panic, whatever its source, is published once on
// `fastify-recovery.panic`, after its line is written and it is counted, before the client is
// answered; nothing is built when nobody subscribes.

const NAME = 'fastify-recovery.panic'

test('one message per panic of every source, after line and count, before the reply', async (t) => {
  const { app, panics, total } = await buildApp({ process: { unhandledRejection: 'log' } })
  const seen: Array<{ message: PanicMessage, lines: number, counted: Promise<number>, replied: boolean | undefined }> = []
  const subscriber = (message: unknown): void => {
    const panic = message as PanicMessage
    // what was true at publication time (prom-client reads its values when get() is called)
    seen.push({ message: panic, lines: panics().length, counted: total(), replied: panic.reply?.raw.headersSent })
  }
  subscribe(NAME, subscriber)
  t.teardown(async () => { unsubscribe(NAME, subscriber); await app.close() })
  app.get('/boom', async () => { throw new Error('request') })
  app.get('/stream', async (_request, reply) => {
    let sent = false
    return reply.type('text/plain').send(new Readable({ read () { if (sent) setTimeout(() => this.destroy(new Error('response')), 5); else this.push('x'); sent = true } }))
  })
  app.get('/detached', async () => { Promise.reject(new Error('process')); return 'ok' })
  await app.ready()
  await app.inject('/boom')
  await app.inject('/stream').catch(() => {})
  await app.inject('/detached')
  await sleep(20)
  await app.recovery.run(() => { throw new Error('background') })
  app.recovery.report(new Error('reported'))
  await sleep(20)

  t.same(seen.map(({ message }) => message.info.source), ['request', 'response', 'process', 'background', 'reported'])
  t.same(seen.map(({ message }) => message.info.error.message), ['request', 'response', 'process', 'background', 'reported'])
  seen.forEach(({ lines }, i) => t.equal(lines, i + 1, `${seen[i].message.info.source}: its line was written before`))
  t.equal(seen[0].replied, false, 'published before the client is answered')
  t.ok(seen[0].message.request !== undefined && seen[0].message.reply !== undefined, 'with the request and reply')
  t.equal(seen[3].message.request, undefined, 'a task without a request: none')
  t.equal(await total(), 5, 'each counted once')
  t.same(await Promise.all(seen.map(({ counted }) => counted)), [1, 2, 3, 4, 5], 'each counted before it was published')
})

test('an error tracker that forwards panics (the README recipe)', async (t) => {
  const tracked: Array<Record<string, unknown>> = []
  // a fake tracker standing in for Sentry, Bugsnag or an in-house one
  const tracker = { captureException: (error: Error, extra: Record<string, unknown>) => { tracked.push({ error, ...extra }) } }
  const forward = (message: unknown): void => {
    const { info } = message as PanicMessage
    tracker.captureException(info.error, { tags: { source: info.source, route: info.route }, requestId: info.requestId, fingerprint: [info.fingerprint] })
  }
  subscribe(NAME, forward)
  const { app } = await buildApp()
  t.teardown(async () => { unsubscribe(NAME, forward); await app.close() })
  app.get('/orders/:id', async () => { throw new TypeError('total of undefined') })
  await app.inject('/orders/1')
  t.equal(tracked.length, 1)
  t.match(tracked[0], { error: { message: 'total of undefined' }, tags: { source: 'request', route: '/orders/:id' }, requestId: 'req-1' })
})

test('nobody subscribed: nothing is published', async (t) => {
  const panicChannel = channel(NAME)
  const publish = panicChannel.publish
  let published = 0
  panicChannel.publish = (data: unknown) => { published++; publish.call(panicChannel, data) }
  // deleted, not assigned back: Node swaps the channel's prototype when it gains subscribers, and an
  // own `publish` would shadow the active one for every test after this
  t.teardown(() => { delete (panicChannel as { publish?: unknown }).publish })
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  await app.inject('/boom')
  t.equal(await total(), 1)
  t.equal(published, 0)
})

async function child (script: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return runScript(`
    const dc = require('node:diagnostics_channel')
    dc.subscribe('${NAME}', ({ info }) => { if (info.source !== 'process') throw new Error('the subscriber is broken') })
    const app = Fastify({ logger: { level: 'error' } })
    ${script}
  `)
}

test('a subscriber that throws: the panic is logged and counted; Node raises its error as an uncaught exception', async (t) => {
  const { code, stdout, stderr } = await child(`
    app.register(recovery)
    app.get('/boom', async () => { throw new Error('the panic') })
    app.inject('/boom')
  `)
  t.equal(code, 1, 'without the process net, the process crashes, as Node does for any subscriber that throws')
  t.match(stderr, /the subscriber is broken/)
  t.match(stdout, /"msg":"panic recovered"/, 'the line was written before')
})

test('a subscriber that throws, with the process net logging uncaught exceptions: the client is answered, both are recorded', async (t) => {
  const { code, stdout } = await child(`
    app.register(recovery, { process: { uncaughtException: 'log' } })
    app.get('/boom', async () => { throw new Error('the panic') })
    app.ready().then(() => app.inject('/boom')).then((res) => {
      setTimeout(() => { console.log(JSON.stringify({ reply: res.statusCode })); app.close() }, 200)
    })
  `)
  t.equal(code, 0)
  t.match(stdout, /"reply":500/)
  // in the order they were written: pino writes a `fatal` line at once, ahead of one still in flight
  const panics = stdout.trim().split('\n').map((line) => JSON.parse(line)).filter((line) => line.msg === 'panic recovered')
    .sort((a, b) => a.time - b.time || a.level - b.level)
  t.same(panics.map((line) => line.panic.source), ['request', 'process'])
  t.equal(panics[1].err.message, 'the subscriber is broken')
})

// Contract §11: the reply is decided from the plugin's own reading and guarded before any
// subscriber runs; what a subscriber does with the reply or the info it is given reaches neither the
// reply, nor the line, nor the count.
const CANARY = 'CANARY-subscriber-41c7'
const subscriberWays: Array<[string, (message: PanicMessage) => void, 'generic' | 'its own']> = [
  ['sends the error itself', ({ info, reply }) => { reply?.send(info.error) }, 'generic'],
  ['sends the thrown value', ({ info, reply }) => { reply?.send(info.value) }, 'generic'],
  ['sends another Error', ({ reply }) => { reply?.send(new Error(`wrapped ${CANARY}`)) }, 'generic'],
  ['deletes the request id it forwards', ({ info }) => { delete info.requestId }, 'generic'],
  ['puts the message in the request id', ({ info }) => { info.requestId = info.error.message }, 'generic'],
  ['rewrites the route, method, source and fingerprint', ({ info }) => { Object.assign(info, { route: CANARY, method: CANARY, source: CANARY, fingerprint: CANARY }) }, 'generic'],
  ['answers with a body of its own, as a custom handler may', ({ reply }) => { reply?.code(503).send({ tracked: true }) }, 'its own']
]

for (const [name, way, expected] of subscriberWays) {
  test(`a subscriber that ${name}: the client, the line and the count are the plugin's`, async (t) => {
    const { app, panics, lines, count } = await buildApp()
    const subscriber = (message: unknown): void => way(message as PanicMessage)
    subscribe(NAME, subscriber)
    t.teardown(async () => { unsubscribe(NAME, subscriber); await app.close() })
    app.get('/orders/:id', async () => { throw new Error(`secret ${CANARY}`) })
    app.get('/ok', async () => 'still serving')
    const res = await app.inject('/orders/7')
    if (expected === 'generic') {
      t.equal(res.statusCode, 500)
      t.same(JSON.parse(res.body), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error', requestId: 'req-1' })
      t.equal(res.headers['x-request-id'], 'req-1')
    } else {
      t.equal(res.statusCode, 503)
      t.same(res.json(), { tracked: true })
    }
    t.notMatch(res.body, CANARY)
    t.notMatch(JSON.stringify(res.headers), CANARY)
    t.equal(panics().length, 1)
    t.match(panics()[0], { reqId: 'req-1', panic: { source: 'request', method: 'GET', route: '/orders/:id', fingerprint: /^[0-9a-f]{12}$/ } })
    t.equal(await count({ source: 'request', method: 'GET', route: '/orders/:id' }), 1)
    if (name.startsWith('sends')) t.match(lines.find((line) => line.msg === 'recovery handler failed')?.err, { code: 'FST_RECOVERY_HANDLER_SENT' }, 'the attempt is recorded')
    t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0)
    t.equal((await app.inject('/ok')).body, 'still serving')
  })
}

test('what one subscriber changes, the next one and the custom handler do not see', async (t) => {
  const seen: Array<string | undefined> = []
  const { app } = await buildApp({ handler: (info) => { seen.push(`handler ${info.requestId}`); return undefined }, context: () => ({ user: 'u1' }) })
  const first = (message: unknown): void => {
    const { info } = message as PanicMessage
    info.requestId = 'changed'
    ;(info.context as Record<string, unknown>).user = 'changed'
  }
  const second = (message: unknown): void => {
    const { info } = message as PanicMessage
    seen.push(`second ${info.requestId} ${String(info.context?.user)}`)
  }
  subscribe(NAME, first)
  subscribe(NAME, second)
  t.teardown(async () => { unsubscribe(NAME, first); unsubscribe(NAME, second); await app.close() })
  app.get('/boom', async () => { throw new Error('x') })
  await app.inject('/boom')
  t.same(seen, ['second changed changed', 'handler req-1'], 'subscribers share one message (Node hands them the same object); the handler gets its own copy')
})
