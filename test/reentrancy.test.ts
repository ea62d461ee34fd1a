import { test } from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import Fastify, { type FastifyInstance } from 'fastify'
import pino from 'pino'
import { Registry } from 'prom-client'
import type { FastifyRecoveryOptions, PanicMessage } from '../types/index'
import { counterValue, recovery, sleep, watchUnhandledRejections, type LogLine } from './helper'

// Contract §10, re-entrancy: the code the plugin hands a panic to — the channel's subscribers (and
// what they start), the `context` function, the custom handler, the logger — may record again. Such
// a record writes its line and its count once, and neither publishes nor calls `context`; the outer
// panic is unaffected. Nothing recurses, whatever the application does. (Each of these used to
// recurse: a subscriber reporting its own failure gave 864 lines, then a RangeError crash; a context
// function reporting gave 1,002 lines.)

const NAME = 'fastify-recovery.panic'

interface Way {
  name: string
  /** What the subscriber does with each message, if there is one. */
  subscriber?: (app: FastifyInstance, message: PanicMessage) => unknown
  options?: (app: () => FastifyInstance) => FastifyRecoveryOptions
  /** Records a serializer of the logger makes. */
  serializer?: boolean
  /** The nested records expected besides the panic. */
  nested: number
  /** Its failure is a rejection nobody handles, which the process net records. */
  unhandled?: true
}

const trackerDown = (): Error => new Error('the error tracker is down')

const ways: Way[] = [
  { name: 'a subscriber that reports its own failure (the README recipe, the tracker down)', subscriber: (app, { info }) => { try { throw trackerDown() } catch (error) { app.recovery.report(error, { name: `forward ${info.fingerprint}` }) } }, nested: 1 },
  { name: 'a subscriber that reports later, from a promise it started', subscriber: (app) => { Promise.resolve().then(() => app.recovery.report(trackerDown())) }, nested: 1 },
  { name: 'a subscriber that reports from a timer', subscriber: (app) => { setTimeout(() => app.recovery.report(trackerDown()), 1) }, nested: 1 },
  { name: 'a subscriber that runs a task that rejects', subscriber: (app) => { app.recovery.run(async () => { await sleep(1); throw trackerDown() }) }, nested: 1 },
  { name: 'a subscriber that hands run a promise that rejects', subscriber: (app) => { app.recovery.run(sleep(1).then(() => { throw trackerDown() })) }, nested: 1 },
  { name: 'a subscriber that throws, the process net logging uncaught exceptions', subscriber: () => { throw trackerDown() }, options: () => ({ process: { uncaughtException: 'log' } }), nested: 1 },
  { name: 'an async subscriber that rejects, the process net logging rejections', subscriber: async () => { await sleep(1); throw trackerDown() }, options: () => ({ process: { unhandledRejection: 'log' } }), nested: 1, unhandled: true },
  { name: 'a context function that reports', options: (app) => ({ context: (request) => { app().recovery.report(new Error('context failed'), { request }); return { user: 'u1' } } }), nested: 1 },
  { name: 'a context function that runs a task that rejects', options: (app) => ({ context: (request) => { app().recovery.run(async () => { throw new Error('context task failed') }, { request }); return {} } }), nested: 1 },
  { name: 'a custom handler that reports', options: (app) => ({ handler: (_info, request) => { app().recovery.report(new Error('handler failed'), { request }); return undefined } }), nested: 1 },
  { name: 'a custom handler that runs a task that rejects', options: (app) => ({ handler: (_info, request) => { app().recovery.run(async () => { throw new Error('handler task failed') }, { request }); return undefined } }), nested: 1 },
  // the logger reports while writing the panic's line, and again while writing that report's line
  { name: 'an err serializer of the logger that reports', serializer: true, nested: 2 }
]

for (const way of ways) {
  test(`${way.name}: one more line and count, no more publishing, nothing recurses`, async (t) => {
    const noneUnhandled = way.unhandled === true ? async () => {} : watchUnhandledRejections(t)
    const lines: LogLine[] = []
    const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
    const serializers = way.serializer === true
      ? { err: (error: Error) => { instance.recovery.report(new Error('serializer failed')); return pino.stdSerializers.err(error) } }
      : undefined
    const instance: FastifyInstance = Fastify({ logger: { level: 'info', stream, serializers } })
    t.teardown(() => instance.close())
    const registry = new Registry()
    await instance.register(recovery, { metrics: { registry }, ...way.options?.(() => instance) })
    const published: PanicMessage[] = []
    const subscriber = (message: unknown): void => {
      published.push(message as PanicMessage)
      way.subscriber?.(instance, message as PanicMessage)
    }
    subscribe(NAME, subscriber)
    t.teardown(() => { unsubscribe(NAME, subscriber) })
    instance.get('/boom', async () => { throw new Error('the panic') })
    instance.get('/ok', async () => 'still serving')
    await instance.ready()

    const res = await instance.inject('/boom')
    await sleep(100)
    t.equal(res.statusCode, 500)
    t.same(JSON.parse(res.body), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error', requestId: 'req-1' })
    const recorded = lines.filter((line) => line.msg === 'panic recovered')
    const serializerReports = way.serializer === true ? 1 : 0
    t.equal(recorded.length, 1 + way.nested - serializerReports, `${recorded.length} lines: the panic and each nested record once`)
    t.equal(recorded.filter((line) => line.err?.message === 'the panic').length, 1, 'the panic\'s own line, once')
    t.equal(await counterValue(registry, {}), 1 + way.nested, 'the panic and each nested record counted once')
    t.equal(published.length, 1, 'published once: a nested record is not')
    t.equal(published[0].info.error.message, 'the panic')
    t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 0, 'the plugin itself never failed')
    t.equal((await instance.inject('/ok')).body, 'still serving')
    await sleep(50)
    t.equal(lines.filter((line) => line.msg === 'panic recovered').length, recorded.length, 'and nothing more came later')
    await noneUnhandled()
  })
}

test('a report made outside any record is a record of its own: published, its context called', async (t) => {
  let contexts = 0
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: false, context: () => { contexts++; return {} } })
  const published: PanicMessage[] = []
  const subscriber = (message: unknown): void => { published.push(message as PanicMessage) }
  subscribe(NAME, subscriber)
  t.teardown(() => { unsubscribe(NAME, subscriber) })
  app.get('/caught', async (request) => {
    app.recovery.report(new Error('caught'), { request })
    await sleep(1)
    app.recovery.report(new Error('caught later'), { request })
    return 'ok'
  })
  await app.inject('/caught')
  t.equal(published.length, 2)
  t.equal(contexts, 2)
})
