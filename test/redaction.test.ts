import { test } from 'tap'
import { request as httpRequest } from 'node:http'
import { buildApp, listenOnLoopback } from './helper'

// Contract §6: the line never holds request headers, body or query string — also when the thrown
// value carries them — and credential-like keys are redacted at any depth.

const SECRETS = /HEADERSECRET|COOKIESECRET|QUERYSECRET|BODYSECRET|TOKENSECRET|APIKEYSECRET|SETCOOKIESECRET|CUSTOMSECRET/

test('a thrown value carrying the Fastify request, its raw request and reply, over a real socket', async (t) => {
  const { app, panics } = await buildApp({ redact: ['x-tenant-key'] })
  t.teardown(() => app.close())
  app.post('/login', async (request, reply) => {
    throw Object.assign(new Error('login failed'), {
      req: request,
      incoming: request.raw,
      reply,
      res: reply.raw,
      socket: request.raw.socket,
      app,
      // what a careless handler attaches by hand
      context: { headers: { ...request.headers }, query: request.query, body: request.body, 'X-Tenant-Key': 'CUSTOMSECRET' },
      // axios-style
      config: { url: 'https://api.example/v1', method: 'post', headers: { Authorization: 'Bearer TOKENSECRET', 'x-api-key': 'APIKEYSECRET' } },
      response: { status: 401, headers: { 'set-cookie': ['sid=SETCOOKIESECRET'] }, data: { error: 'denied' } }
    })
  })
  const port = await listenOnLoopback(app)
  const body = JSON.stringify({ user: 'ada', password: 'BODYSECRET' })
  const status = await new Promise<number>((resolve, reject) => {
    const request = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/login?token=QUERYSECRET&page=2',
      headers: { authorization: 'Bearer HEADERSECRET', cookie: 'sid=COOKIESECRET', 'content-type': 'application/json' }
    }, (response) => { response.resume(); resolve(response.statusCode as number) })
    request.on('error', reject)
    request.end(body)
  })
  t.equal(status, 500)
  const line = panics()[0]
  t.notMatch(JSON.stringify(line), SECRETS)
  t.match(line.err, {
    req: '[FastifyRequest]',
    incoming: '[IncomingMessage]',
    reply: '[FastifyReply]',
    res: '[ServerResponse]',
    socket: '[Socket]',
    app: '[FastifyInstance]',
    context: {
      headers: { authorization: '[redacted]', cookie: '[redacted]', 'content-type': 'application/json' },
      query: { token: '[redacted]', page: '2' },
      body: { user: 'ada', password: '[redacted]' },
      'X-Tenant-Key': '[redacted]'
    },
    config: { url: 'https://api.example/v1', headers: { Authorization: '[redacted]', 'x-api-key': '[redacted]' } },
    response: { status: 401, headers: { 'set-cookie': '[redacted]' }, data: { error: 'denied' } }
  })
})

test('a thrown non-Error carrying a request: its description is redacted too', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/x', async (request) => { throw { request, headers: request.headers } }) // eslint-disable-line no-throw-literal
  await app.inject({ url: '/x', headers: { authorization: 'Bearer HEADERSECRET', cookie: 'a=COOKIESECRET' } })
  t.notMatch(JSON.stringify(panics()[0]), SECRETS)
  t.match(panics()[0].err?.message, /"request":"\[FastifyRequest\]"/)
})
