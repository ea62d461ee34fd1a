import { test } from 'tap'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { recovery } from './helper'

const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ['message', { message: 42 }, /option "message" must be a string, got 42/],
  ['closeConnection', { closeConnection: 'sometimes' }, /option "closeConnection" must be 'auto', true or false, got "sometimes"/],
  ['requestIdHeader', { requestIdHeader: 'bad header' }, /option "requestIdHeader" must be a header name or false, got "bad header"/],
  ['requestIdHeader true', { requestIdHeader: true }, /option "requestIdHeader"/],
  ['logLevel', { logLevel: 'loud' }, /option "logLevel" must be a level of the logger .*, got "loud"/],
  ['logLevel silent', { logLevel: 'silent' }, /option "logLevel"/],
  ['handler', { handler: 'not a function' }, /option "handler" must be a function, got "not a function"/],
  ['handlerTimeout', { handlerTimeout: 0 }, /option "handlerTimeout" must be a number of milliseconds/],
  ['handlerTimeout too long', { handlerTimeout: 2 ** 31 }, /option "handlerTimeout"/],
  ['handlerTimeout NaN', { handlerTimeout: Number.NaN }, /option "handlerTimeout"/],
  ['stackDedupe', { stackDedupe: true }, /option "stackDedupe" must be false or \{ max, windowMs \}, got true/],
  ['stackDedupe.max', { stackDedupe: { max: 0 } }, /option "stackDedupe.max" must be a positive integer, got 0/],
  ['stackDedupe.max fraction', { stackDedupe: { max: 1.5 } }, /option "stackDedupe.max"/],
  ['stackDedupe.windowMs', { stackDedupe: { windowMs: -1 } }, /option "stackDedupe.windowMs" must be a positive number of milliseconds, got -1/],
  ['metrics', { metrics: true }, /option "metrics" must be false or \{ name, registry, endpoint \}, got true/],
  ['metrics array', { metrics: [] }, /option "metrics"/],
  ['metrics.name', { metrics: { name: 'has-dash' } }, /option "metrics.name" must be a Prometheus metric name, got "has-dash"/],
  ['metrics.registry', { metrics: { registry: {} } }, /option "metrics.registry" must be a prom-client Registry, got \{\}/],
  ['metrics.registry null', { metrics: { registry: null } }, /option "metrics.registry"/],
  ['metrics.endpoint', { metrics: { endpoint: 'metrics' } }, /option "metrics.endpoint" must be false or a path starting with '\/', got "metrics"/],
  ['process', { process: 'yes' }, /option "process" must be true, false or \{ unhandledRejection, uncaughtException, shutdownTimeout \}, got "yes"/],
  ['process.unhandledRejection', { process: { unhandledRejection: 'crash' } }, /option "process.unhandledRejection" must be 'log' or 'exit', got "crash"/],
  ['process.uncaughtException', { process: { uncaughtException: 'ignore' } }, /option "process.uncaughtException" must be 'exit' or 'log', got "ignore"/],
  ['process.shutdownTimeout', { process: { shutdownTimeout: -5 } }, /option "process.shutdownTimeout" must be a number of milliseconds/],
  ['redact', { redact: 'password' }, /option "redact" must be an array of at most 1000 key names \(non-empty strings of at most 128 characters\), got "password"/],
  ['redact with an empty name', { redact: ['ok', ' '] }, /option "redact" must be .*, got " "/],
  ['redact with a number', { redact: [42] }, /option "redact" must be .*, got 42/],
  ['redact with a long name', { redact: ['k'.repeat(129)] }, /option "redact"/],
  ['redact too long', { redact: Array(1001).fill('k') }, /option "redact"/],
  ['context', { context: { userId: 1 } }, /option "context" must be a synchronous function of \(request, info\), got \{ userId: 1 \}/],
  ['an async context', { context: async () => ({ userId: 1 }) }, /option "context" must be a synchronous function of \(request, info\), got \[AsyncFunction: context\]/],
  ['an unknown option', { closeConnections: true }, /unknown option "closeConnections" \(the options are message, closeConnection/]
]

for (const [name, options, message] of bad) {
  test(`bad option at registration: ${name}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    const error = await app.register(recovery, options as never).then(() => undefined, (err: unknown) => err)
    t.ok(error instanceof TypeError, 'a TypeError')
    t.match((error as Error).message, message)
    t.match((error as { code: string }).code, /^FST_RECOVERY_(INVALID|UNKNOWN)_OPTION$/)
  })
}

test('options that are not an object', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(recovery, 'nope' as never) }, /option "options" must be an object/)
})

test('the defaults and every valid form register', async (t) => {
  const forms = [
    undefined,
    {},
    { closeConnection: true, requestIdHeader: false, logLevel: 'fatal', stackDedupe: false, metrics: false },
    { closeConnection: false, message: '', handler: () => undefined, handlerTimeout: 1, stackDedupe: { max: 1, windowMs: 0.5 } },
    { metrics: { registry: new Registry(), name: 'a:b_c', endpoint: '/m' } },
    { process: false },
    { process: true },
    { process: { unhandledRejection: 'exit', uncaughtException: 'log', shutdownTimeout: 1 } },
    { process: {} },
    { redact: [] },
    { redact: ['ssn', 'X-Tenant-Key'] },
    { context: () => ({}) }
  ] as const
  for (const options of forms) {
    const app = Fastify()
    await app.register(recovery, (options === undefined ? undefined : { metrics: { registry: new Registry() }, ...options }) as never)
    await app.ready()
    t.ok(app.hasDecorator('recovery'))
    await app.close()
  }
})

test('registering twice in one scope chain is an error; sibling scopes are fine', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: { registry: new Registry() } })
  await t.rejects(async () => { await app.register(recovery, { metrics: { registry: new Registry() } }) }, { code: 'FST_RECOVERY_ALREADY_REGISTERED' })

  const siblings = Fastify()
  t.teardown(() => siblings.close())
  const registry = new Registry()
  siblings.register(async (a) => { await a.register(recovery, { metrics: { registry } }) })
  siblings.register(async (b) => { await b.register(recovery, { metrics: { registry } }) })
  await t.resolves(async () => { await siblings.ready() })
})
