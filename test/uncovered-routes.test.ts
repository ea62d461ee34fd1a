import { test } from 'tap'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { recovery } from './helper'
import { UNCOVERED_ROUTE_MESSAGE } from '../lib/uncovered-routes'

// Routes registered before the plugin keep Fastify's default error handler, which leaks
// err.message. The plugin cannot take them over; it warns once per such route.

test('a route registered before the plugin: warned once, at runtime', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  app.get('/early/:id', async () => { throw new Error('early secret') })
  app.get('/early-ok', async () => 'ok')
  await app.register(recovery, { metrics: { registry: new Registry() } })
  app.get('/late', async () => { throw new Error('late secret') })
  app.register(async (child) => {
    child.setErrorHandler(async (error: Error) => { throw Object.assign(error, { statusCode: 400 }) })
    child.get('/late-child', async () => { throw new Error('mapped') })
  })

  const early = await app.inject('/early/1')
  t.equal(early.statusCode, 500)
  t.match(early.body, 'early secret', 'Fastify\'s default handler leaks, which is what the warning is about')
  await app.inject('/early/2')
  await app.inject({ method: 'HEAD', url: '/early/3' })
  t.equal((await app.inject('/early-ok')).statusCode, 200)
  const late = await app.inject('/late')
  t.notMatch(late.body, 'late secret')
  t.equal((await app.inject('/late-child')).statusCode, 400)
  await app.inject('/nowhere')

  const warnings = lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE)
  t.equal(warnings.length, 2, 'once per route: GET and HEAD /early/:id')
  t.match(warnings[0], { level: 40, route: '/early/:id', method: 'GET' })
  t.match(warnings[1], { level: 40, route: '/early/:id', method: 'HEAD' })
})

test('no warning when every route comes after the plugin', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(recovery, { metrics: false })
  app.get('/late', async () => { throw new Error('late') })
  app.setNotFoundHandler(async () => { throw new Error('not found handler') })
  await app.inject('/late')
  await app.inject('/nowhere')
  t.equal(lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE).length, 0)
})

test('routes added after a register() that was not awaited are covered: no warning', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  app.register(recovery, { metrics: { registry: new Registry() } }) // not awaited: the plugin loads later
  app.get('/between', async () => { throw new Error('between secret') })
  app.register(async (child) => {
    child.setErrorHandler((error, _request, reply) => { reply.send(error) }) // re-sends: reaches the plugin
    child.get('/resend', async () => { throw new Error('resend secret') })
  })
  const between = await app.inject('/between')
  t.equal(between.statusCode, 500)
  t.notMatch(between.body, 'between secret', 'the plugin answered')
  const resend = await app.inject('/resend')
  t.notMatch(resend.body, 'resend secret')
  t.equal(lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE).length, 0)
  t.equal(lines.filter((line) => line.msg === 'panic recovered').length, 2)
})

test('an early route whose own error handler answers is not warned about: nothing leaks there', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  app.get('/early', { errorHandler: (_error, _request, reply) => { reply.code(503).send({ handled: true }) } }, async () => { throw new Error('x') })
  await app.register(recovery, { metrics: false })
  const res = await app.inject('/early')
  t.same(res.json(), { handled: true })
  t.equal(lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE).length, 0)
})

test('a route of a sibling scope without the plugin: Fastify answers, nothing is warned or counted', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const registry = new Registry()
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  app.register(async (covered) => {
    await covered.register(recovery, { metrics: { registry } })
    covered.get('/covered', async () => { throw new Error('covered secret') })
  })
  app.register(async (sibling) => {
    sibling.get('/sibling', async () => { throw new Error('sibling secret') })
  })
  const covered = await app.inject('/covered')
  t.notMatch(covered.body, 'covered secret')
  const sibling = await app.inject('/sibling')
  t.match(sibling.body, 'sibling secret', 'not the plugin\'s scope: Fastify\'s default handler')
  t.equal(lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE).length, 0, 'not registered before the plugin either: no warning')
  t.equal(lines.filter((line) => line.msg === 'panic recovered').length, 1)
})

test('a Fastify without a LogController (before 5.12) is refused at registration, with the version', async (t) => {
  const { listenToLogController } = await import('../lib/log-controller')
  const old = { version: '5.11.0' }
  t.throws(() => listenToLogController(old as never, { streamError () {}, defaultErrorLog () {}, responseFailed () {} }), {
    code: 'FST_RECOVERY_UNSUPPORTED_FASTIFY',
    message: /needs Fastify 5\.12 or later .* this is Fastify 5\.11\.0/
  })
})

test('two Fastify instances sharing one LogController (the logController option) each hear their own routes', async (t) => {
  const { LogController } = await import('fastify') as unknown as { LogController: new () => object }
  const logController = new LogController()
  const lines: Array<Record<string, unknown>> = []
  const logger = { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } }
  const one = Fastify({ logger, logController } as never)
  const two = Fastify({ logger, logController } as never)
  t.teardown(() => Promise.all([one.close(), two.close()]))
  one.get('/early-one', async () => { throw new Error('x') })
  two.get('/early-two', async () => { throw new Error('y') })
  await one.register(recovery, { metrics: false })
  await two.register(recovery, { metrics: false })
  await one.inject('/early-one')
  await two.inject('/early-two')
  t.same(lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE).map((line) => line.route), ['/early-one', '/early-two'])
  await one.close()
  await two.inject('/early-two')
  t.equal(lines.filter((line) => line.msg === UNCOVERED_ROUTE_MESSAGE).length, 2, 'warned once per route')
})
