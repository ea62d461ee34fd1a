import { test, type Test } from 'tap'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { buildApp, counterValue, logControllerForms, recovery, sleep } from './helper'

test('one line per panic, through request.log, with err and panic fields', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/users/:id', async () => { throw Object.assign(new TypeError('cannot read name of undefined'), { code: 'E_BUG' }) })

  await app.inject('/users/12')
  const lines = panics()
  t.equal(lines.length, 1)
  const [line] = lines
  t.equal(line.level, 50)
  t.equal(line.msg, 'panic recovered')
  t.equal(line.reqId, 'req-1')
  t.equal(line.err?.type, 'TypeError')
  t.equal(line.err?.message, 'cannot read name of undefined')
  t.equal(line.err?.code, 'E_BUG')
  t.match(line.err?.stack, /^TypeError: cannot read name of undefined\n {4}at /)
  t.same(Object.keys(line.panic ?? {}).sort(), ['fingerprint', 'latencyMs', 'method', 'route', 'source', 'statusCode'])
  t.match(line.panic, { source: 'request', method: 'GET', route: '/users/:id', statusCode: 500 })
  t.type(line.panic?.latencyMs, 'number')
  t.ok((line.panic?.latencyMs as number) > 0)
  t.match(line.panic?.fingerprint, /^[0-9a-f]{12}$/)
})

test('never request headers, body or query string', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.post('/login', async () => { throw new Error('boom') })
  await app.inject({
    method: 'POST',
    url: '/login?token=QUERYSECRET',
    headers: { authorization: 'Bearer HEADERSECRET', cookie: 'sid=COOKIESECRET' },
    payload: { password: 'BODYSECRET' }
  })
  const line = JSON.stringify(panics()[0])
  t.notMatch(line, /SECRET|authorization|cookie|password|token=/)
  t.equal(panics()[0].panic?.route, '/login')
})

test('logLevel sets the level; Fastify\'s requestIdLogLabel is honoured', async (t) => {
  for (const fastifyOptions of logControllerForms({ requestIdLogLabel: 'traceId' })) {
    const { app, panics } = await buildApp({ logLevel: 'warn' }, fastifyOptions)
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    await app.inject('/boom')
    t.equal(panics()[0].level, 40)
    t.equal(panics()[0].traceId, 'req-1')
  }
})

test('a logger level above logLevel writes nothing, and spends no stack budget', async (t) => {
  const { app, panics, total } = await buildApp({ logLevel: 'info', stackDedupe: { max: 1, windowMs: 60_000 } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  app.log.level = 'warn'
  await app.inject('/boom')
  t.equal(panics().length, 0)
  t.equal(await total(), 1, 'still counted')
  app.log.level = 'info'
  await app.inject('/boom')
  t.ok(panics()[0].err?.stack, 'the first written line carries the stack')
})

test('logger: false: nothing is logged, everything else works', async (t) => {
  const registry = new Registry()
  const app = Fastify({ logger: false })
  await app.register(recovery, { metrics: { registry } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.json().requestId, 'req-1')
  t.equal(await counterValue(registry, { route: '/boom' }), 1)
})

test('a logger that throws: the line is retried without err, the reply and the count never lost', async (t) => {
  for (const failing of [/"err"/, /panic recovered/]) {
    const registry = new Registry()
    const written: string[] = []
    const stream = {
      write: (line: string) => {
        if (line.includes('panic recovered') && failing.test(line)) throw new Error('disk full')
        written.push(line)
      }
    }
    const app = Fastify({ logger: { stream } })
    await app.register(recovery, { metrics: { registry } })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('x') })
    const res = await app.inject('/boom')
    t.equal(res.statusCode, 500)
    t.equal(await counterValue(registry, { route: '/boom' }), 1)
    const lines = written.filter((line) => line.includes('panic recovered')).map((line) => JSON.parse(line))
    if (String(failing) === '/"err"/') {
      t.equal(lines.length, 1, 'the line without err')
      t.notOk('err' in lines[0])
      t.equal(lines[0].panic.route, '/boom')
    } else {
      t.equal(lines.length, 0, 'the line is lost')
    }
  }
})

test('stack de-duplication: after max stacks in the window, lines leave the stack out', async (t) => {
  const { app, panics } = await buildApp({ stackDedupe: { max: 2, windowMs: 200 } })
  t.teardown(() => app.close())
  app.get('/boom/:n', async (request) => { throw new Error(`failed for item ${(request.params as { n: string }).n}`) })
  app.get('/other', async () => { throw new Error('another failure') })

  for (let i = 0; i < 5; i++) await app.inject(`/boom/${i}`)
  await app.inject('/other')
  const lines = panics()
  t.equal(lines.length, 6, 'still one line per panic')
  // the copy handed to the logger has no stack; pino's serializer then writes an empty one
  t.same(lines.map((line) => line.err?.stack === '' ? 'left out' : typeof line.err?.stack), ['string', 'string', 'left out', 'left out', 'left out', 'string'])
  t.same(lines.map((line) => line.panic?.stackSuppressed), [undefined, undefined, true, true, true, undefined])
  t.same(lines.map((line) => line.reqId), ['req-1', 'req-2', 'req-3', 'req-4', 'req-5', 'req-6'])
  t.equal(lines[4].err?.message, 'failed for item 4', 'the message is kept')
  t.equal(new Set(lines.slice(0, 5).map((line) => line.panic?.fingerprint)).size, 1, 'one fingerprint for one failure')

  await sleep(250)
  await app.inject('/boom/9')
  t.match(panics()[6].err?.stack, /^Error: failed for item 9\n/, 'a new window carries the stack again')
})

test('stackDedupe: false logs every stack', async (t) => {
  const { app, panics } = await buildApp({ stackDedupe: false })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  for (let i = 0; i < 15; i++) await app.inject('/boom')
  t.equal(panics().filter((line) => typeof line.err?.stack === 'string').length, 15)
})

test('lines whose stack is left out never format it', async (t) => {
  const { app, panics } = await buildApp({ stackDedupe: { max: 1, windowMs: 60_000 } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  await app.inject('/boom')
  const prepare = Error.prepareStackTrace
  let formatted = 0
  Error.prepareStackTrace = (error, frames) => { formatted++; return prepare ? prepare(error, frames) : String(error) }
  t.teardown(() => { Error.prepareStackTrace = prepare })
  for (let i = 0; i < 10; i++) await app.inject('/boom')
  Error.prepareStackTrace = prepare
  t.equal(panics().length, 11)
  t.equal(formatted, 0, 'no stack formatted for suppressed lines')
})

test('a huge message is truncated in the line', async (t) => {
  const { app, lines } = await buildApp()
  t.teardown(() => app.close())
  app.get('/huge', async () => { throw new Error('x'.repeat(2 * 1024 * 1024)) })
  const res = await app.inject('/huge')
  t.equal(res.statusCode, 500)
  const line = lines.find((l) => l.msg === 'panic recovered')
  t.ok(line)
  t.ok(JSON.stringify(line).length < 64 * 1024, 'bounded')
  t.match(line?.err?.message, /truncated/)
})

test('a logger without isLevelEnabled is asked to write; one whose isLevelEnabled throws too', async (t) => {
  for (const isLevelEnabled of [undefined, () => { throw new Error('broken') }]) {
    const written: Array<Record<string, unknown>> = []
    const logger: Record<string, unknown> = { level: 'info' }
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace']) {
      logger[level] = (object: Record<string, unknown>, msg: string) => { written.push({ level, msg, ...JSON.parse(JSON.stringify(object)) }) }
    }
    logger.child = () => logger
    if (isLevelEnabled !== undefined) logger.isLevelEnabled = isLevelEnabled
    const registry = new Registry()
    const app = Fastify({ loggerInstance: logger as never })
    await app.register(recovery, { metrics: { registry } })
    t.teardown(() => app.close())
    app.get('/boom', async () => { throw new Error('custom logger') })
    t.equal((await app.inject('/boom')).statusCode, 500)
    const line = written.find((entry) => entry.msg === 'panic recovered')
    t.match(line, { level: 'error', err: { type: 'Error', message: 'custom logger' }, panic: { route: '/boom' } })
  }
})

// A logger of the application's own (not pino), every level writing into `written`.
function ownLogger (fields: Record<string | symbol, unknown>): { logger: Record<string | symbol, unknown>, written: Array<Record<string, unknown>> } {
  const written: Array<Record<string, unknown>> = []
  const logger: Record<string | symbol, unknown> = { level: 'info', ...fields }
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace']) {
    logger[level] = (object: Record<string, unknown>, msg: string) => { written.push({ msg, ...JSON.parse(JSON.stringify(object)) }) }
  }
  logger.child = () => logger
  return { logger, written }
}

async function panicLineOf (t: Test, logger: Record<string | symbol, unknown>, written: Array<Record<string, unknown>>, error: Error): Promise<Record<string, unknown> | undefined> {
  const app = Fastify({ loggerInstance: logger as never })
  await app.register(recovery, { metrics: false })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw error })
  t.equal((await app.inject('/boom')).statusCode, 500)
  return written.find((entry) => entry.msg === 'panic recovered')
}

test('a logger that holds pino\'s symbol but no text under it is asked for its bindings(): they count against the line', async (t) => {
  const big = { tenant: 't'.repeat(60 * 1024) }
  const { logger, written } = ownLogger({ bindings: () => big, [Symbol('pino.chindings')]: 42 })
  const line = await panicLineOf(t, logger, written, Object.assign(new Error('big bindings'), { details: 'd'.repeat(30 * 1024) }))
  t.match(line, { err: { message: 'big bindings' } })
  t.ok(Buffer.byteLength(JSON.stringify(line?.err)) <= 4 * 1024, 'err got what the bindings left: the least it gets')
})

for (const [what, bindings] of [['throws', () => { throw new Error('no bindings') }], ['answers undefined', () => undefined]] as const) {
  test(`a logger whose bindings() ${what}: the line is written, its err within the line`, async (t) => {
    const { logger, written } = ownLogger({ bindings })
    t.match(await panicLineOf(t, logger, written, new Error('bindings throw')), { err: { message: 'bindings throw' } })
  })
}

test('the panic fields are counted against the line as the bytes JSON writes for them, never fewer', async (t) => {
  const { errBytesFor } = await import('../lib/log')
  const bare = { info () {} } as unknown as Parameters<typeof errBytesFor>[0] // no bindings
  const room = errBytesFor(bare, {}) + 2 // what `err` gets beside `{}`
  const cases: Array<Record<string, unknown>> = [
    { source: 'request', method: 'GET', route: '/users/:id', latencyMs: 2.175, fingerprint: '76ac6ffcc46b', statusCode: 500 },
    { route: '/ünïcødé/😀/"quoted"\\/\n', task: 'x'.repeat(300), latencyMs: Number.NaN, stackSuppressed: true, flag: false },
    { context: { tenant: 'a'.repeat(2000), nested: { n: 1, list: ['é', null] } }, sampled: { skipped: 12 }, lone: '\ud800' }
  ]
  for (const fields of cases) {
    const written = Buffer.byteLength(JSON.stringify(fields))
    const counted = room - errBytesFor(bare, fields)
    t.ok(counted >= written && counted <= written + 1, `${Object.keys(fields).join(',')}: counted ${counted}, JSON ${written}`)
  }
})
