import { test } from 'tap'
import { buildApp, genericBody } from './helper'

test('a child scope\'s own error handler keeps working', async (t) => {
  const { app, panics, total } = await buildApp()
  t.teardown(() => app.close())
  app.register(async (child) => {
    child.setErrorHandler(async (error: Error, _request, reply) => {
      reply.code(418)
      return { handledBy: 'child', message: error.message }
    })
    child.get('/child', async () => { throw new Error('child domain error') })
  })
  const res = await app.inject('/child')
  t.equal(res.statusCode, 418)
  t.same(res.json(), { handledBy: 'child', message: 'child domain error' })
  t.equal(panics().length, 0)
  t.equal(await total(), 0)
})

test('if the child handler rethrows, the plugin answers and counts', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  app.register(async (child) => {
    child.setErrorHandler(async (error) => { throw error })
    child.get('/rethrow', async () => { throw new Error('secret') })
    child.register(async (grandchild) => {
      grandchild.setErrorHandler((error, _request, reply) => { reply.send(error) })
      grandchild.get('/resend', async () => { throw new Error('secret') })
    })
  })
  for (const url of ['/rethrow', '/resend']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500)
    t.equal(res.body, genericBody(res.headers['x-request-id'] as string))
    t.equal(await count({ route: url }), 1)
  }
  t.equal(panics().length, 2)
})

test('if the child handler maps the error to a 4xx, it is not a panic', async (t) => {
  const { app, panics, total } = await buildApp()
  t.teardown(() => app.close())
  app.register(async (child) => {
    child.setErrorHandler(async (error: Error) => { throw Object.assign(new Error(`invalid: ${error.message}`), { statusCode: 422 }) })
    child.get('/mapped', async () => { throw new Error('domain') })
  })
  const res = await app.inject('/mapped')
  t.equal(res.statusCode, 422)
  t.same(res.json(), { statusCode: 422, error: 'Unprocessable Entity', message: 'invalid: domain' })
  t.equal(panics().length, 0)
  t.equal(await total(), 0)
})

test('a route-level errorHandler works the same way', async (t) => {
  const { app, count } = await buildApp()
  t.teardown(() => app.close())
  app.get('/route-handled', { errorHandler: (_error, _request, reply) => { reply.code(409).send({ route: 'handled' }) } }, async () => { throw new Error('x') })
  app.get('/route-rethrow', { errorHandler: (error) => { throw error } }, async () => { throw new Error('x') })
  t.equal((await app.inject('/route-handled')).statusCode, 409)
  const res = await app.inject('/route-rethrow')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-2'))
  t.equal(await count({ route: '/route-rethrow' }), 1)
  t.equal(await count({ route: '/route-handled' }), 0)
})
