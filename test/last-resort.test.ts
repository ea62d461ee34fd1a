import { test } from 'tap'
import Fastify, { type FastifyReply } from 'fastify'
import { Counter, Registry } from 'prom-client'
import { buildApp, counterValue, genericBody, recovery } from './helper'

// Contract §3: whatever goes wrong inside the plugin itself, a covered route is never answered by
// Fastify's default handler: the generic 500, a `recovery failed` line with the plugin's own error,
// and the panic counted once.

test('the plugin\'s own code throws while answering a 4xx: the generic 500, a recovery failed line, one count', async (t) => {
  const { app, lines, total } = await buildApp()
  t.teardown(() => app.close())
  app.get('/broken', async (_request, reply: FastifyReply) => {
    reply.code = () => { throw new Error('reply.code replaced by a broken decorator') }
    throw Object.assign(new Error('SECRET not found'), { statusCode: 404 })
  })
  app.get('/ok', async () => 'ok')
  const res = await app.inject('/broken')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.equal(res.headers['x-request-id'], 'req-1')
  t.equal(res.headers['cache-control'], 'no-store')
  t.notMatch(res.body, /SECRET/)
  const failed = lines.filter((line) => line.msg === 'recovery failed')
  t.equal(failed.length, 1)
  t.match(failed[0], { level: 50, reqId: 'req-1', err: { message: 'reply.code replaced by a broken decorator' }, panic: { source: 'request', route: '/broken' } })
  t.equal(await total(), 1, 'counted once, by the last resort')
  t.equal((await app.inject('/ok')).statusCode, 200)
})

test('counting throws: the client still gets the generic 500 and the line says why', async (t) => {
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  // a counter of the right shape (the plugin shares what it finds) whose increments throw once the server is up
  const registry = new Registry()
  const counter = new Counter({ name: 'fastify_panics_total', help: 'h', labelNames: ['method', 'route', 'source'], registers: [registry] })
  await app.register(recovery, { metrics: { registry } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('SECRET route failure') })
  app.get('/ok', async () => 'ok')
  await app.ready()
  counter.inc = () => { throw new Error('the registry is broken') }
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
  t.equal(lines.filter((line) => line.msg === 'panic recovered').length, 1, 'the panic line was written before counting failed')
  t.match(lines.find((line) => line.msg === 'recovery failed'), { err: { message: 'the registry is broken' }, panic: { route: '/boom' } })
  t.equal((await app.inject('/ok')).statusCode, 200)

  // every entry point goes through the same path
  t.equal(await app.recovery.run(() => { throw new Error('task') }), undefined, 'a background task still resolves')
  t.equal(lines.filter((line) => line.msg === 'recovery failed').length, 2)
})

test('a recovery failed line is bounded and redacted like any other', async (t) => {
  const { app, lines } = await buildApp()
  t.teardown(() => app.close())
  app.get('/broken', async (_request, reply: FastifyReply) => {
    reply.code = () => { throw Object.assign(new Error('x'.repeat(100_000)), { password: 'SECRET', blob: 'b'.repeat(1_000_000) }) }
    throw Object.assign(new Error('gone'), { statusCode: 404 })
  })
  await app.inject('/broken')
  const failed = lines.find((line) => line.msg === 'recovery failed')
  t.ok(Buffer.byteLength(JSON.stringify(failed)) <= 64 * 1024)
  t.equal(failed?.err?.password, '[redacted]')
})

test('the default handler never answers a covered route, whatever reply methods fail', async (t) => {
  const breakages: Array<[string, (reply: FastifyReply) => void]> = [
    ['reply.code', (reply) => { reply.code = () => { throw new Error('code SECRET') } }],
    ['reply.headers', (reply) => { reply.headers = () => { throw new Error('headers SECRET') } }],
    ['reply.getHeaders', (reply) => { reply.getHeaders = () => { throw new Error('getHeaders SECRET') } }],
    ['reply.removeHeader', (reply) => { reply.header('etag', 'x'); reply.removeHeader = () => { throw new Error('removeHeader SECRET') } }]
  ]
  for (const status of [undefined, 404, 503]) {
    for (const [name, breakReply] of breakages) {
      const registry = new Registry()
      const app = Fastify()
      await app.register(recovery, { metrics: { registry } })
      app.get('/broken', async (_request, reply) => {
        breakReply(reply)
        throw Object.assign(new Error(status === undefined ? 'route SECRET' : 'route failure'), status === undefined ? {} : { statusCode: status })
      })
      const res = await app.inject('/broken')
      const label = `${name}, ${status ?? 'panic'}`
      t.notMatch(res.body, /SECRET/, label)
      if (res.statusCode === 500) {
        t.equal(res.body, genericBody('req-1'), label)
        t.equal(await counterValue(registry, { route: '/broken' }), 1, `${label}: one count`)
      } else {
        // the broken method was not needed: the error went out as it should
        t.equal(res.statusCode, status, label)
        t.equal(await counterValue(registry, { route: '/broken' }), 0, `${label}: not a panic`)
      }
      await app.close()
    }
  }
})
