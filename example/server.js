'use strict'

// The demo: `npm start` builds the plugin and runs this on 127.0.0.1:3000 (PORT overrides).
// Pretty logs in a terminal, JSON lines otherwise. With NODE_ENV=development, the developer page is
// on: open a /panic route in a browser.

const Fastify = require('fastify')
const recovery = require('fastify-recovery')

const port = Number(process.env.PORT ?? 3000)
const app = Fastify({
  logger: process.stdout.isTTY ? { transport: { target: 'pino-pretty' } } : true
})

const users = new Map([['1', { id: '1', name: 'Ada' }]])
// the plugin refuses `development: true` under any other NODE_ENV
const development = process.env.NODE_ENV === 'development'

async function main () {
  await app.register(recovery, { metrics: { endpoint: '/metrics' }, development })

  app.get('/', async (request) => ({
    routes: {
      '/ok': 'a normal reply',
      '/users/1': 'a user; /users/2 is a 404 (a client error, not a panic)',
      '/panic/sync': 'a handler that throws',
      '/panic/async': 'an async handler that rejects (a connection string in its message: the password is redacted in the log and on the developer page)',
      '/panic/not-an-error': 'a handler that throws a string',
      '/panic/hook': 'a preHandler hook that throws',
      '/panic/serialize': 'a reply that cannot be serialized (BigInt)',
      '/panic/background': 'a background task that fails after the reply (app.recovery.run)',
      '/metrics': 'the Prometheus counter fastify_panics_total'
    },
    try: `curl -i http://${request.headers.host}/panic/sync, or with -H "accept: application/problem+json"`,
    developerPage: development
      ? 'on (NODE_ENV=development): open a /panic route in a browser to see the error, its cause chain and the source of each frame'
      : 'off: start with NODE_ENV=development npm start to see panics in the browser'
  }))

  app.get('/ok', async () => ({ ok: true }))

  app.get('/users/:id', async (request) => {
    const user = users.get(request.params.id)
    if (user === undefined) throw Object.assign(new Error(`user ${request.params.id} not found`), { statusCode: 404 })
    return user
  })

  app.get('/panic/sync', () => {
    const order = undefined
    return order.total // TypeError: the kind of bug recovery is for
  })

  app.get('/panic/async', async () => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    // the client never gets the message; the line and the developer page show it, its password redacted
    throw new Error('database connection lost: postgres://orders:hunter2@db:5432/orders')
  })

  app.get('/panic/not-an-error', () => {
    throw 'something threw a string' // eslint-disable-line no-throw-literal
  })

  app.get('/panic/hook', { preHandler: async () => { throw new RangeError('quota check failed') } }, async () => 'unreachable')

  app.get('/panic/serialize', async () => ({ total: 10n }))

  app.get('/panic/background', async (request, reply) => {
    app.recovery.run(async () => {
      await new Promise((resolve) => setTimeout(resolve, 10))
      throw new Error('sending the receipt failed')
    }, { request, name: 'send-receipt' })
    return reply.code(202).send({ accepted: true })
  })

  await app.listen({ port, host: '127.0.0.1' })
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { app.close().then(() => process.exit(0)) })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
