import { test } from 'tap'
import { request as httpRequest, createServer, IncomingMessage, ServerResponse } from 'node:http'
import { once } from 'node:events'
import { Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import Fastify from 'fastify'
import { budgetOf, JsonSizes, type Budget } from '../lib/budget'
import { Copier } from '../lib/copier'
import { tagOf } from '../lib/tags'
import { REDACTED, Secrets } from '../lib/secrets'

// The copy every line and description is built from: one budget in JSON bytes, each object once,
// accessors never run, requests and connections tagged, credential-like keys redacted.

const rules = { secrets: new Secrets() }
const copyValue = (value: unknown, budget: Budget, using: { secrets: Secrets } = rules): unknown => new Copier(using.secrets).copy(value, budget)
const budgetOfBytes = (bytes: number): Budget => budgetOf(bytes, new JsonSizes())
const copy = (value: unknown, bytes = 48 * 1024): unknown => JSON.parse(JSON.stringify(copyValue(value, budgetOfBytes(bytes), rules)))

test('credential-like keys are redacted at any depth, without case, `-` or `_`', async (t) => {
  const value = {
    config: { url: '/api', headers: { Authorization: 'Bearer SECRET1', 'X-Api-Key': 'SECRET2', Accept: 'json' } },
    response: { headers: { 'Set-Cookie': ['sid=SECRET3'] }, data: { PASSWORD: 'SECRET4', user: 'ada' } },
    nested: [{ access_token: 'SECRET5', refresh_token: 'SECRET6', id_token: 'SECRET7' }],
    client_secret: 'SECRET8',
    apiKey: 'SECRET9',
    api_key: 'SECRET10',
    dbPassword: 'SECRET11',
    'x-auth-token': 'SECRET12',
    cookie: 'a=SECRET13',
    'proxy-authorization': 'Basic SECRET14',
    secret: { anything: 'SECRET15' },
    token: 42
  }
  const text = JSON.stringify(copy(value))
  t.notMatch(text, /SECRET/)
  t.match(copy(value), {
    config: { url: '/api', headers: { Authorization: REDACTED, 'X-Api-Key': REDACTED, Accept: 'json' } },
    response: { data: { PASSWORD: REDACTED, user: 'ada' } },
    secret: REDACTED,
    token: REDACTED
  })
})

test('the redact option adds names; other keys are not touched', async (t) => {
  const custom = { secrets: new Secrets(['ssn', 'X-Tenant-Key']) }
  const out = JSON.parse(JSON.stringify(copyValue({ SSN: '123', x_tenant_key: 'k', tokens: 3, name: 'n' }, budgetOfBytes(4096), custom)))
  t.same(out, { SSN: REDACTED, x_tenant_key: REDACTED, tokens: 3, name: 'n' })
  t.notOk(rules.secrets.isSecretKey('tokenizer'))
  t.ok(rules.secrets.isSecretKey('csrfToken'))
})

test('requests, replies, sockets, streams and Fastify instances are short tags', async (t) => {
  const app = Fastify()
  let fastifyRequest: unknown, fastifyReply: unknown
  app.get('/', async (request, reply) => { fastifyRequest = request; fastifyReply = reply; return 'ok' })
  await app.inject({ url: '/?token=QUERY', headers: { authorization: 'Bearer HEADER', cookie: 'sid=COOKIE' } })
  const socket = new Socket()
  const message = new IncomingMessage(socket)
  message.headers = { authorization: 'Bearer RAW' }
  const out = copy({ fastifyRequest, fastifyReply, message, response: new ServerResponse(message), socket, stream: new PassThrough(), app })
  t.same(out, {
    fastifyRequest: '[FastifyRequest]',
    fastifyReply: '[FastifyReply]',
    message: '[IncomingMessage]',
    response: '[ServerResponse]',
    socket: '[Socket]',
    stream: '[Stream]',
    app: '[FastifyInstance]'
  })
  await app.close()
})

test('an outgoing request (axios keeps one on its errors) is a tag: its header string holds the credentials', async (t) => {
  const server = createServer((_req, res) => res.end('ok'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const request = httpRequest({ port, host: '127.0.0.1', headers: { authorization: 'Bearer OUTGOING' } })
  request.end()
  const [response] = await once(request, 'response') as [IncomingMessage]
  response.resume()
  t.same(copy({ request, response }), { request: '[ClientRequest]', response: '[IncomingMessage]' })
  t.equal(tagOf({ plain: true }), undefined)
})

test('each object once: a cycle and a shared reference are markers', async (t) => {
  const shared = { big: 'x'.repeat(100) }
  const cyclic: Record<string, unknown> = { name: 'loop' }
  cyclic.self = cyclic
  t.same(copy({ a: shared, b: shared, cyclic }), { a: shared, b: '[Repeated]', cyclic: { name: 'loop', self: '[Circular]' } })
})

test('accessors are written as [Getter] and never run; a Proxy is never looked into', async (t) => {
  let runs = 0
  const value = Object.defineProperty({ plain: 1 }, 'lazy', { get () { runs++; return 'computed' }, enumerable: true })
  const proxy = new Proxy({}, { ownKeys () { runs++; return [] }, get () { runs++ } })
  const revoked = Proxy.revocable({}, {})
  revoked.revoke()
  t.same(copy({ value, proxy, revoked: revoked.proxy, list: [proxy] }), { value: { plain: 1, lazy: '[Getter]' }, proxy: '[Proxy]', revoked: '[Proxy]', list: ['[Proxy]'] })
  const array = [1]
  Object.defineProperty(array, 1, { get () { runs++; return 2 }, enumerable: true })
  t.same(copy(array), [1, '[Getter]'])
  t.equal(runs, 0)
})

test('a budget counts every leaf: numbers, booleans and escapes too', async (t) => {
  for (const value of [
    Array.from({ length: 20 }, () => Array.from({ length: 20 }, () => Array.from({ length: 20 }, () => 1234567.891))),
    Array.from({ length: 20 }, () => Array.from({ length: 20 }, () => Array.from({ length: 20 }, () => true))),
    Array.from({ length: 20 }, () => Array.from({ length: 20 }, () => '\u0001'.repeat(200))),
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`key-${'k'.repeat(120)}-${i}`, Object.fromEntries(Array.from({ length: 20 }, (_, j) => [`${'q'.repeat(120)}${j}`, j]))]))
  ]) {
    for (const bytes of [256, 1024, 4096, 48 * 1024]) {
      const size = Buffer.byteLength(JSON.stringify(copyValue(value, budgetOfBytes(bytes), rules)))
      t.ok(size <= bytes, `${size} <= ${bytes}`)
    }
  }
})

test('wide and deep structures are bounded in entries and depth', async (t) => {
  const out = copy({ list: Array(1_000_000).fill(7), deep: { a: { b: { c: { d: { e: { f: 1 } } } } } } }) as Record<string, any>
  t.equal(out.list.length, 21)
  t.equal(out.list[20], '…[999980 more items]')
  t.same(out.deep, { a: { b: { c: { d: '[Object]' } } } })
})

test('engine objects are described through the engine: dates, buffers, maps, sets, promises', async (t) => {
  const date = new Date(0)
  Object.defineProperty(date, 'toISOString', { value: () => { throw new Error('own toISOString') } })
  const map = new Map([[1, 2]])
  Object.defineProperty(map, 'size', { get () { throw new Error('own size') } })
  t.same(copy({ date, map, set: new Set([1]), buf: Buffer.alloc(3), view: new DataView(new ArrayBuffer(2)), ab: new ArrayBuffer(4), re: /x/g, p: Promise.resolve() }), {
    date: '1970-01-01T00:00:00.000Z',
    map: '[Map size=1]',
    set: '[Set size=1]',
    buf: '[Buffer byteLength=3]',
    view: '[DataView byteLength=2]',
    ab: '[ArrayBuffer]',
    re: '[RegExp]',
    p: '[Promise]'
  })
})

test('an object is listed once, however often it is referenced (listing is what costs with many keys)', async (t) => {
  const wide = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]))
  const value = { a: wide, b: wide, c: [wide, wide, wide], d: { e: wide } }
  const keys = Object.keys
  let listings = 0
  Object.keys = (object: object) => { if (object === wide) listings++; return keys(object) }
  try {
    copyValue(value, budgetOfBytes(48 * 1024), rules)
  } finally {
    Object.keys = keys
  }
  t.equal(listings, 1)
})

test('an Error inside a plain copy is its type and message (the log line keeps Errors, other copies need no stack)', async (t) => {
  t.same(copy({ failure: new RangeError('out of range'), nested: [new Error('second')] }), { failure: { type: 'RangeError', message: 'out of range' }, nested: [{ type: 'Error', message: 'second' }] })
})

test('once the budget is spent or its listing time is up, objects are a marker', async (t) => {
  const spent = { ...budgetOfBytes(4096), bytes: 0 }
  t.equal(copyValue({ a: 1 }, spent, rules), '')
  const late = { ...budgetOfBytes(4096), listingMs: 21 }
  t.equal(copyValue({ a: 1 }, late, rules), '[…]')
  // time that passed without listing is not listing time (a busy machine, a first panic compiling patterns)
  const waited = budgetOfBytes(4096)
  t.same(copyValue({ a: 1 }, waited, rules), { a: 1 })
  const until = performance.now() + 25
  while (performance.now() < until) { /* the machine is busy elsewhere */ }
  t.same(copyValue({ b: { c: 2 } }, waited, rules), { b: { c: 2 } }, 'still listed after 25 ms of waiting')
  const small = JSON.parse(JSON.stringify(copyValue({ key: 'k'.repeat(40), next: { deep: 1 } }, budgetOfBytes(64), rules)))
  t.ok(Buffer.byteLength(JSON.stringify(small)) <= 64)
})

test('holes, long prototype chains and nameless engine objects', async (t) => {
  t.same(copy([1, , 3]), [1, null, 3]) // eslint-disable-line no-sparse-arrays
  let chain: object = { own: 1 }
  for (let i = 0; i < 40; i++) chain = Object.create(chain)
  t.same(copy(chain), {}, 'a chain longer than is walked is no tag, and has no own keys')
  const view = Object.setPrototypeOf(new DataView(new ArrayBuffer(1)), null)
  t.equal(copy(view), '[Object byteLength=1]')
})

test('a Proxy on the prototype chain is never looked into', async (t) => {
  let runs = 0
  const trap = new Proxy({}, { getOwnPropertyDescriptor () { runs++; return undefined }, getPrototypeOf () { runs++; return null } })
  t.same(copy({ inner: Object.assign(Object.create(trap), { own: 1 }) }), { inner: { own: 1 } })
  t.equal(runs, 0)
})

test('past the depth bound, an object is named by its constructor, or Object', async (t) => {
  const deep = { a: { b: { c: { d: { named: new (class Thing {})(), bare: Object.create(null) } } } } }
  t.same(copy(deep), { a: { b: { c: { d: { named: '[Thing]', bare: '[Object]' } } } } })
})

test('jsonBytes: the bytes JSON writes, the same when a long text is measured again or another of its length follows', async (t) => {
  const { jsonBytes } = await import('../lib/budget')
  const texts = ['plain', 'a"b\\c\n\u0001', 'é€😀', '\ud800x', 'x'.repeat(300), `${'x'.repeat(299)}\n`, `${'é'.repeat(300)}`, `${'y'.repeat(300)}`]
  for (let round = 0; round < 3; round++) {
    for (const text of [...texts, ...texts.map((text) => text.split('').join(''))]) t.equal(jsonBytes(text), Buffer.byteLength(JSON.stringify(text)), JSON.stringify(text.slice(0, 12)))
  }
})
