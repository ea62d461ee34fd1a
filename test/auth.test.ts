import { test } from 'tap'
import fastifyAuth from '@fastify/auth'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { buildApp, genericBody } from './helper'

// Contract §2: an Error with no status of its own, after a 4xx was set on the reply, is a client
// error with that status, exactly as Fastify sends it. @fastify/auth calls `reply.code(401)` and
// passes its strategy's plain Error on ("always replies with 401"): it used to become a counted panic.

type Done = (error?: Error) => void

function routes (app: FastifyInstance): void {
  app.decorate('verifyToken', (_request: FastifyRequest, _reply: FastifyReply, done: Done) => { done(new Error('you are not authenticated')) })
  app.decorate('verifyKey', (_request: FastifyRequest, _reply: FastifyReply, done: Done) => { done(new Error('no api key')) })
  app.after(() => {
    const auth = (app as unknown as { auth: (strategies: unknown[], options?: object) => never }).auth
    const strategies = app as unknown as { verifyToken: unknown, verifyKey: unknown }
    app.get('/private', { preHandler: auth([strategies.verifyToken]) }, async () => 'secret stuff')
    app.get('/either', { preHandler: auth([strategies.verifyToken, strategies.verifyKey]) }, async () => 'secret stuff')
    app.get('/both', { preHandler: auth([strategies.verifyToken, strategies.verifyKey], { relation: 'and' }) }, async () => 'secret stuff')
  })
  app.post('/validate', async (_request, reply) => reply.code(400).send(new Error('bad input')))
  app.get('/own-status', async (_request, reply) => { reply.code(401); throw Object.assign(new Error('gone'), { statusCode: 404 }) })
}

const clientErrors = ['/private', '/either', '/both', '/validate', '/own-status']

test('@fastify/auth\'s 401 and reply.code(4xx) before an Error: as Fastify sends them, not a panic', async (t) => {
  const bare = Fastify()
  await bare.register(fastifyAuth)
  routes(bare)
  t.teardown(() => bare.close())

  const { app, panics, total } = await buildApp()
  await app.register(fastifyAuth)
  routes(app)
  t.teardown(() => app.close())

  for (const url of clientErrors) {
    const method = url === '/validate' ? 'POST' : 'GET'
    const [expected, actual] = await Promise.all([bare.inject({ method, url }), app.inject({ method, url })])
    t.equal(actual.statusCode, expected.statusCode, `${url}: ${expected.statusCode}`)
    t.equal(actual.body, expected.body, `${url}: the body, byte for byte`)
    t.equal(actual.headers['content-type'], expected.headers['content-type'])
  }
  t.same(JSON.parse((await app.inject('/private')).body), { statusCode: 401, error: 'Unauthorized', message: 'you are not authenticated' })
  t.equal(panics().length, 0, 'no panic line')
  t.equal(await total(), 0, 'nothing counted')
})

test('a bug, a 5xx set on the reply, a value that is not an Error or an unusable status, after reply.code(4xx): still a panic', async (t) => {
  const { app, panics, total } = await buildApp()
  t.teardown(() => app.close())
  app.get('/unavailable', async (_request, reply) => { reply.code(503); throw new Error('secret 503') })
  app.get('/string', async (_request, reply) => { reply.code(401); throw 'secret string' }) // eslint-disable-line no-throw-literal
  app.get('/object', async (_request, reply) => { reply.code(401); throw { note: 'secret object' } }) // eslint-disable-line no-throw-literal
  // the engine's own error types are bugs, not decisions (plain Fastify would answer 403 with the message)
  app.get('/forbidden-then-bug', { preHandler: async (_request, reply) => { reply.code(403) } }, async () => {
    return (undefined as unknown as { name: string }).name
  })
  app.get('/not-found-then-range', async (_request, reply) => { reply.code(404); return new Array(-1) })
  // a status of its own that is present but not an error status decides: a panic (Fastify itself answers "500" with 500)
  app.get('/string-status', async (_request, reply) => { reply.code(404); throw Object.assign(new Error('secret db'), { statusCode: '500' }) })
  app.get('/fraction', async (_request, reply) => { reply.code(404); throw Object.assign(new Error('secret db'), { statusCode: 404.5 }) })
  app.get('/negative', async (_request, reply) => { reply.code(404); throw Object.assign(new Error('secret db'), { statusCode: -1 }) })
  app.get('/ok-status', async (_request, reply) => { reply.code(404); throw Object.assign(new Error('secret db'), { status: 200 }) })
  app.get('/ok', async () => 'still serving')
  const urls = ['/unavailable', '/string', '/object', '/forbidden-then-bug', '/not-found-then-range', '/string-status', '/fraction', '/negative', '/ok-status']
  for (const url of urls) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500, url)
    t.equal(res.body, genericBody(res.headers['x-request-id'] as string), `${url}: the generic body, nothing of the error`)
  }
  t.equal(panics().length, urls.length, 'one line each')
  t.equal(await total(), urls.length, 'one count each')
  t.match(panics()[3], { err: { type: 'TypeError' }, panic: { route: '/forbidden-then-bug', statusCode: 500 } })
  t.equal((await app.inject('/ok')).body, 'still serving')
})
