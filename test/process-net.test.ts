import { test, type Test } from 'tap'
import { EventEmitter } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { ProcessNet, type ProcessHost } from '../lib/process'
import type { ProcessSettings } from '../lib/options'
import { Copier } from '../lib/copier'
import { Recorder } from '../lib/record'
import { PanicReplies } from '../lib/panic-reply'
import { Recoverer } from '../lib/recover'
import { Secrets } from '../lib/secrets'
import { counterValue, recovery, sleep } from './helper'
import { PanicCounter } from '../lib/metrics'
import { markHandled } from '../lib/foreign-promise'

// The process net's logic in-process, with a fake `process` (a host whose exit is recorded), so a
// failure can be raised on purpose; process.test.ts runs the real thing in child processes.

class FakeHost extends EventEmitter implements ProcessHost {
  exits: number[] = []
  exit (code: number): void { this.exits.push(code) }
}

interface NetApp { app: FastifyInstance, net: ProcessNet, lines: Array<Record<string, any>>, registry: Registry }

async function netApp (host: FakeHost, settings: Partial<ProcessSettings> = {}, logger: object = {}): Promise<NetApp> {
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } }, ...logger }, forceCloseConnections: false })
  const registry = new Registry()
  const copier = new Copier(new Secrets())
  const recorder = new Recorder({
    logLevel: 'error',
    stackBudget: undefined,
    sampler: undefined,
    scope: app,
    counter: new PanicCounter(registry, 'fastify_panics_total'),
    copier,
    log: app.log,
    context: undefined,
    markSpan: undefined
  })
  const replies = new PanicReplies({ message: 'Internal Server Error', closeConnection: 'auto', requestIdHeader: 'x-request-id' })
  const net = new ProcessNet({
    fastify: app,
    settings: { unhandledRejection: 'log', uncaughtException: 'exit', shutdownTimeout: 1000, ...settings },
    recoverer: new Recoverer({ recorder, replies, handler: undefined, handlerTimeout: 1000, describe: (value) => copier.describe(value) }),
    host
  })
  app.addHook('onRequest', net.enter)
  app.addHook('onReady', async () => net.attach())
  app.addHook('onClose', async () => net.detach())
  return { app, net, lines, registry }
}

const panics = (lines: Array<Record<string, any>>): Array<Record<string, any>> => lines.filter((line) => line.msg === 'panic recovered')

test('one pair of listeners per host, whatever the instances; removed with the last', async (t) => {
  const host = new FakeHost()
  const one = await netApp(host)
  const two = await netApp(host)
  await one.app.ready()
  await two.app.ready()
  t.equal(host.listenerCount('unhandledRejection'), 1)
  t.equal(host.listenerCount('uncaughtException'), 1)
  await one.app.close()
  t.equal(host.listenerCount('unhandledRejection'), 1, 'still one instance left')
  await two.app.close()
  t.equal(host.listenerCount('unhandledRejection'), 0)
  t.equal(host.listenerCount('uncaughtException'), 0)
  const never = await netApp(host)
  await never.app.close()
  t.equal(host.listenerCount('uncaughtException'), 0, 'closing an instance that never started is fine')
})

test('a failure goes to the instance whose request raised it, else to the oldest; never twice', async (t) => {
  const host = new FakeHost()
  const one = await netApp(host)
  const two = await netApp(host)
  t.teardown(async () => { await one.app.close(); await two.app.close() })
  let raise: () => void = () => {}
  two.app.get('/raise', async () => { raise(); return 'ok' })
  await one.app.ready()
  await two.app.ready()

  raise = () => host.emit('unhandledRejection', new Error('inside a request of two'))
  await two.app.inject('/raise')
  host.emit('unhandledRejection', new Error('outside any request'))

  t.same(panics(one.lines).map((line) => line.err.message), ['outside any request'])
  t.same(panics(two.lines).map((line) => line.err.message), ['inside a request of two'])
  t.match(panics(two.lines)[0], { reqId: 'req-1', panic: { source: 'process', route: '/raise', method: 'GET' } })
  t.notOk('reqId' in panics(one.lines)[0])
  t.match(panics(one.lines)[0].panic, { method: '', route: '' })
  t.equal(await counterValue(two.registry, { source: 'process', route: '/raise' }), 1)
  t.equal(await counterValue(one.registry, { source: 'process', route: '' }), 1)
  t.same(host.exits, [], "'log' keeps serving")
})

test("'exit': the culprit gets the 500, every instance closes, logs are flushed, exit 1", async (t) => {
  const host = new FakeHost()
  const { app, lines } = await netApp(host)
  let flushed = false
  const log = app.log as unknown as { flush: (callback?: (error?: Error) => void) => void }
  const flush = log.flush.bind(log)
  log.flush = (callback) => { flushed = true; flush(callback) }
  app.get('/culprit', async () => {
    setImmediate(() => host.emit('uncaughtException', new Error('fatal in culprit')))
    await new Promise(() => {})
  })
  const res = await app.inject('/culprit')
  t.equal(res.statusCode, 500)
  t.equal(res.headers.connection, 'close')
  t.equal(JSON.parse(res.body).message, 'Internal Server Error')
  await sleep(50)
  t.same(host.exits, [1])
  t.ok(flushed, 'the logs were flushed before the exit')
  t.match(panics(lines)[0], { level: 60, reqId: 'req-1', panic: { source: 'process', statusCode: 500 } })
  host.emit('uncaughtException', new Error('second fatal'))
  t.same(host.exits, [1, 1], 'a second fatal error exits at once')
  t.equal(host.listenerCount('uncaughtException'), 1, 'the listeners stay during the shutdown')
})

test("'exit' for a request that was already answered: no second reply", async (t) => {
  const host = new FakeHost()
  const { app, lines } = await netApp(host, { unhandledRejection: 'exit' })
  let raise: () => void = () => {}
  app.get('/answered', async (_request, reply) => {
    await reply.send('done')
    raise = () => host.emit('unhandledRejection', new Error('after the reply'))
  })
  const res = await app.inject('/answered')
  t.equal(res.body, 'done')
  raise()
  await sleep(50)
  t.same(host.exits, [1])
  t.notOk('statusCode' in panics(lines)[0].panic)
})

test('an instance whose close fails during the shutdown: the failure is recorded with no request, the process still exits', async (t) => {
  const host = new FakeHost()
  const { app, lines } = await netApp(host)
  app.addHook('onClose', async () => { throw new Error('onClose failed') })
  await app.ready()
  host.emit('uncaughtException', new Error('fatal'))
  while (host.exits.length === 0) await sleep(10)
  t.same(host.exits, [1])
  const shutdown = panics(lines).find((line) => line.err?.message === 'onClose failed')
  t.match(shutdown, { panic: { source: 'process', method: '', route: '' } })
  t.notOk('reqId' in (shutdown ?? {}))
})

test('during the shutdown, a failure in the context of a request already answered belongs to no request', async (t) => {
  const host = new FakeHost()
  const { app, lines } = await netApp(host)
  app.get('/answered', async (_request, reply) => {
    await reply.send('done')
    // raised later in this request's context, as an onClose hook's timer would be
    setTimeout(() => host.emit('uncaughtException', new Error('during the shutdown')), 30)
  })
  t.equal((await app.inject('/answered')).body, 'done')
  host.emit('uncaughtException', new Error('fatal'))
  await sleep(80)
  t.same(host.exits, [1, 1], 'a second fatal failure during the shutdown exits at once')
  const during = panics(lines).find((line) => line.err?.message === 'during the shutdown')
  t.match(during, { panic: { source: 'process', route: '' } })
  t.notOk('reqId' in (during ?? {}))
})

test('a failed start-up is always an exit: a listen error (or one wrapping it) while the server does not listen', async (t) => {
  for (const value of [Object.assign(new Error('listen EADDRINUSE'), { syscall: 'listen' }), new Error('start failed', { cause: Object.assign(new Error('x'), { syscall: 'listen' }) })]) {
    const host = new FakeHost()
    const { app } = await netApp(host, { unhandledRejection: 'log', uncaughtException: 'log' })
    await app.ready()
    host.emit('unhandledRejection', value)
    while (host.exits.length === 0) await sleep(10)
    t.same(host.exits, [1], (value as Error).message)
  }
  // anything else while not listening is what the option says: 'log'
  const host = new FakeHost()
  const { app, lines } = await netApp(host, { unhandledRejection: 'log', uncaughtException: 'log' })
  await app.ready()
  for (const value of ['a string', new Error('no syscall'), new Error('a cause that is no object', { cause: 'x' })]) host.emit('unhandledRejection', value)
  await sleep(20)
  t.same(host.exits, [])
  t.equal(panics(lines).length, 3)
})

test('the rejection of a thrown promise the plugin could not handle is not recorded again by the net', async (t) => {
  const host = new FakeHost()
  const { app, lines } = await netApp(host)
  await app.ready()
  const promise = Object.freeze(Object.defineProperty(Promise.reject(new Error('own rejection')), 'constructor', { get () { throw new Error('hostile') } }))
  markHandled(promise)
  host.emit('unhandledRejection', new Error('own rejection'), promise)
  await sleep(10)
  t.equal(panics(lines).length, 0)
  t.same(host.exits, [])
})

test('the shutdown waits at most shutdownTimeout for the instances to close', async (t) => {
  const host = new FakeHost()
  const { app } = await netApp(host, { shutdownTimeout: 100 })
  app.addHook('onClose', () => new Promise(() => {})) // never closes
  await app.ready()
  const begun = Date.now()
  host.emit('uncaughtException', new Error('fatal'))
  while (host.exits.length === 0) await sleep(10)
  t.ok(Date.now() - begun < 1000, 'did not wait for the instance')
  t.same(host.exits, [1])
})

test('a logger without flush, one whose flush throws, one whose flush never calls back', async (t) => {
  for (const flush of [undefined, () => { throw new Error('flush') }, () => {}]) {
    const host = new FakeHost()
    const { app } = await netApp(host)
    ;(app.log as unknown as { flush: unknown }).flush = flush
    await app.ready()
    host.emit('uncaughtException', new Error('fatal'))
    while (host.exits.length === 0) await sleep(20)
    t.same(host.exits, [1])
  }
})

test('the plugin: process: true adds one pair of listeners to the real process, removed on close', async (t) => {
  const before = [process.listenerCount('unhandledRejection'), process.listenerCount('uncaughtException')]
  const one = Fastify()
  const two = Fastify()
  await one.register(recovery, { process: true, metrics: false })
  await two.register(recovery, { process: { unhandledRejection: 'exit', shutdownTimeout: 500 }, metrics: false })
  let task: Promise<unknown> = Promise.resolve()
  one.get('/ctx', async (request) => {
    task = one.recovery.run(() => { throw new Error(`in a task of ${request.id}`) })
    return 'ok'
  })
  await one.ready()
  await two.ready()
  t.same([process.listenerCount('unhandledRejection'), process.listenerCount('uncaughtException')], [before[0] + 1, before[1] + 1])
  t.equal((await one.inject('/ctx')).statusCode, 200)
  t.equal(await task, undefined)
  await one.close()
  await two.close()
  t.same([process.listenerCount('unhandledRejection'), process.listenerCount('uncaughtException')], before)
})

test('process: false (the default) adds no listener and no onRequest hook', async (t) => {
  const before = process.listenerCount('uncaughtException')
  const hooks = async (options: object): Promise<string> => {
    const app = Fastify()
    await app.register(recovery, { metrics: false, ...options })
    app.get('/ok', async () => 'ok')
    await app.ready()
    const printed = app.printRoutes({ includeHooks: true, commonPrefix: false })
    await app.close()
    return printed
  }
  t.notMatch(await hooks({}), /onRequest/)
  t.match(await hooks({ process: true }), /onRequest/, 'the check can see the hook when it is there')
  t.equal(process.listenerCount('uncaughtException'), before)
})

// tap listens for uncaught exceptions too: its listeners are set aside while one is raised, and
// process.exit is stubbed. The net's registry stays on the process for the life of a process that
// is exiting: this test process is not, so it is cleared afterwards.
function onTheRealProcess (t: Test): Array<number | string | null | undefined> {
  const saved = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  const exits: Array<number | string | null | undefined> = []
  const exit = process.exit
  process.exit = ((code?: number) => { exits.push(code) }) as typeof process.exit
  t.teardown(() => {
    process.exit = exit
    for (const listener of saved) process.on('uncaughtException', listener)
    const kNets = Symbol.for('fastify-recovery.process-nets')
    const host = process as unknown as Record<symbol, { onRejection: () => void, onException: () => void } | undefined>
    const listeners = host[kNets]
    process.removeListener('unhandledRejection', listeners?.onRejection as () => void)
    process.removeListener('uncaughtException', listeners?.onException as () => void)
    delete host[kNets]
  })
  return exits
}

const raiseUncaught = (error: Error): boolean => (process.emit as (event: string, ...args: unknown[]) => boolean)('uncaughtException', error, 'uncaughtException')

test('the plugin on the real process: a fatal error in a request, with process.exit stubbed', async (t) => {
  const exits = onTheRealProcess(t)
  const registry = new Registry()
  const app = Fastify()
  await app.register(recovery, { process: { shutdownTimeout: 200 }, metrics: { registry } })
  app.get('/culprit', async () => {
    setImmediate(() => raiseUncaught(new Error('fatal')))
    await new Promise(() => {})
  })
  const res = await app.inject('/culprit')
  t.equal(res.statusCode, 500)
  t.equal(res.headers.connection, 'close')
  while (exits.length === 0) await sleep(10)
  t.same(exits, [1])
  t.equal(await counterValue(registry, { source: 'process', route: '/culprit' }), 1)
  // the instance closed during the shutdown; its listeners stayed for a second fatal error
  raiseUncaught(new Error('second'))
  t.same(exits, [1, 1])
})

test('a fatal error while the custom handler of a panic runs: the culprit is answered once', async (t) => {
  const exits = onTheRealProcess(t)
  const registry = new Registry()
  const app = Fastify()
  await app.register(recovery, {
    process: { shutdownTimeout: 200 },
    metrics: { registry },
    handlerTimeout: 100,
    // runs in the request's context: the fatal error is the request's
    handler: () => { setImmediate(() => raiseUncaught(new Error('fatal in the handler'))); return new Promise(() => {}) }
  })
  app.get('/boom', async () => { throw new Error('the panic') })
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.equal(JSON.parse(res.body).message, 'Internal Server Error')
  while (exits.length === 0) await sleep(10)
  await sleep(150) // the handler's timeout has passed: its default reply is not sent again
  t.same(exits, [1])
  t.equal(await counterValue(registry, { route: '/boom', source: 'request' }), 1)
  t.equal(await counterValue(registry, { route: '/boom', source: 'process' }), 1)
})

test("'exit': a culprit whose 500 fails to send (a hook that throws on it) still gets the generic 500", async (t) => {
  const host = new FakeHost()
  const { app, lines } = await netApp(host)
  app.get('/culprit', {
    onSend: async (_request, reply) => { if (reply.statusCode === 500) throw new Error('SECRET hook on the 500') }
  }, async () => {
    setImmediate(() => host.emit('uncaughtException', new Error('fatal in culprit')))
    await new Promise(() => {})
  })
  const res = await app.inject('/culprit')
  t.equal(res.statusCode, 500)
  t.notMatch(res.body, /SECRET/)
  t.equal(JSON.parse(res.body).message, 'Internal Server Error')
  t.equal(panics(lines).length, 1)
  await sleep(50)
  t.same(host.exits, [1])
})
