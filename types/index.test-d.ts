import fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { Registry } from 'prom-client'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import recovery, {
  fastifyRecovery,
  type FastifyRecoveryOptions,
  type PanicHandler,
  type PanicContext,
  type PanicInfo,
  type PanicMessage,
  type PanicReply,
  type PanicSource,
  type ProcessOptions,
  type Recovery
} from '..'

const app = fastify()

// registration
app.register(recovery)
app.register(fastifyRecovery, {})
app.register(recovery, {
  message: 'Something went wrong',
  closeConnection: 'auto',
  requestIdHeader: 'x-correlation-id',
  logLevel: 'warn',
  handlerTimeout: 500,
  stackDedupe: { max: 5, windowMs: 10_000 },
  metrics: { name: 'api_panics_total', registry: new Registry(), endpoint: '/metrics' }
})
app.register(recovery, { closeConnection: true, requestIdHeader: false, stackDedupe: false, metrics: false })
app.register(recovery, { stackDedupe: { max: 1 }, metrics: { endpoint: false } })
app.register(recovery, { process: true })
app.register(recovery, { process: { unhandledRejection: 'exit', uncaughtException: 'log', shutdownTimeout: 5000 } })
expectError(app.register(recovery, { process: { unhandledRejection: 'crash' } }))
expectError(app.register(recovery, { process: { shutdownTimeout: '10s' } }))
expectAssignable<ProcessOptions>({})

expectError(app.register(recovery, { closeConnection: 'sometimes' }))
expectError(app.register(recovery, { logLevel: 'loud' }))
expectError(app.register(recovery, { logLevel: 'silent' }))
expectError(app.register(recovery, { metrics: { registry: {} } }))
expectError(app.register(recovery, { stackDedupe: true }))
expectError(app.register(recovery, { handlerTimeout: '1s' }))

// the handler
app.register(recovery, {
  handler: (panic, request, reply) => {
    expectType<PanicInfo>(panic)
    expectType<FastifyRequest>(request)
    expectType<FastifyReply>(reply)
    expectType<Error>(panic.error)
    expectType<unknown>(panic.value)
    expectType<PanicSource>(panic.source)
    expectType<string | undefined>(panic.requestId)
    expectType<string | undefined>(panic.method)
    expectType<string | undefined>(panic.route)
    expectType<number | undefined>(panic.latencyMs)
    expectType<string>(panic.fingerprint)
    return { statusCode: 503, headers: { 'retry-after': '5' }, body: { sorry: true } }
  }
})
app.register(recovery, { handler: async () => undefined })
app.register(recovery, { handler: () => {} })
app.register(recovery, { handler: async () => ({ body: Buffer.from('x') }) })
expectError(app.register(recovery, { handler: () => ({ statusCode: '503' }) }))
expectError(app.register(recovery, { handler: () => ({ headers: { 'retry-after': 5 } }) }))

expectAssignable<PanicReply>({})
expectAssignable<PanicReply>({ body: 'text' })
expectNotAssignable<PanicReply>({ statusCode: '500' })
expectAssignable<PanicHandler>(() => undefined)
expectAssignable<FastifyRecoveryOptions>({ handler: () => Promise.resolve({ statusCode: 500 }) })
expectAssignable<PanicSource>('background')
expectNotAssignable<PanicSource>('elsewhere')

// app.recovery.run
expectType<Recovery>(app.recovery)
expectType<Promise<number | undefined>>(app.recovery.run(() => 42))
expectType<Promise<string | undefined>>(app.recovery.run(async () => 'done'))
expectType<Promise<void | undefined>>(app.recovery.run(async () => {}, { name: 'cleanup' }))
app.get('/', async (request) => {
  await app.recovery.run(async () => {}, { request, name: 'send-email' })
  return 'ok'
})
expectError(app.recovery.run(() => 1, { name: 42 }))
expectError(app.recovery.run(42))
// a promise already started is awaited
expectType<Promise<string | undefined>>(app.recovery.run(Promise.resolve('sent')))
expectType<Promise<number | undefined>>(app.recovery.run({ then: (resolve: (value: number) => void) => resolve(1) } as PromiseLike<number>))

// log-storm sampling
app.register(recovery, { sampling: { first: 10, every: 100, windowMs: 60_000 } })
app.register(recovery, { sampling: false })
expectError(app.register(recovery, { sampling: { first: 10 } }))
expectError(app.register(recovery, { sampling: true }))

// redact and context
app.register(recovery, { redact: ['ssn', 'x-tenant-key'] })
expectError(app.register(recovery, { redact: 'ssn' }))
app.register(recovery, {
  context: (request, info) => {
    expectType<FastifyRequest>(request)
    expectType<PanicInfo>(info)
    return { userId: 42, tenant: request.headers['x-tenant'] }
  }
})
app.register(recovery, { context: () => undefined })
expectError(app.register(recovery, { context: { userId: 1 } }))
expectError(app.register(recovery, { context: () => 'user 42' }))
expectError(app.register(recovery, { context: async () => ({ userId: 1 }) }))
expectAssignable<PanicContext>(() => ({ flag: true }))
app.register(recovery, { handler: (panic) => { expectType<Record<string, unknown> | undefined>(panic.context); expectType<string | undefined>(panic.task) } })

// app.recovery.report
expectAssignable<PanicSource>('reported')
expectType<PanicInfo>(app.recovery.report(new Error('caught')))
expectType<PanicInfo>(app.recovery.report('anything', { name: 'cron' }))
app.get('/report', async (request) => {
  app.recovery.report(new Error('degraded'), { request, name: 'fallback' })
  return 'ok'
})
expectError(app.recovery.report(new Error('x'), { name: 42 }))

// the diagnostics channel's message
expectAssignable<PanicMessage>({ info: app.recovery.report(1) })
expectType<PanicInfo>(({} as PanicMessage).info)
expectType<FastifyRequest | undefined>(({} as PanicMessage).request)
