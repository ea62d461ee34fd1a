import { test } from 'tap'
import { performance } from 'node:perf_hooks'
import { buildApp, type LogLine } from './helper'

// Contract §6: the whole line ≤ 64 KiB counting the logger's bindings (a client-chosen request id,
// child-logger fields), and recording one panic well under 50 ms beyond what V8 needs to list the
// value's keys once, whatever was thrown. Each case is checked by what the line shows (what was left
// out, and why), and its time printed: timings are the benchmark's business, not an assertion here.

const LINE = 64 * 1024

function sizeOf (line: LogLine | undefined): number {
  return Buffer.byteLength(JSON.stringify(line))
}

test('a client-chosen 14 KB request id and an error carrying a body: the line stays within 64 KiB', async (t) => {
  const { app, panics } = await buildApp({}, { requestIdHeader: 'x-request-id' })
  t.teardown(() => app.close())
  app.post('/upload', async (request) => {
    throw Object.assign(new Error('upstream rejected the upload'), { body: request.body, config: { data: request.body, url: '/v1/upload' } })
  })
  const id = `id-${'i'.repeat(14 * 1024)}`
  const started = performance.now()
  const res = await app.inject({ method: 'POST', url: '/upload', headers: { 'x-request-id': id, 'content-type': 'text/plain' }, payload: 'b'.repeat(200 * 1024) })
  t.comment(`${(performance.now() - started).toFixed(1)} ms for the request`)
  t.equal(res.statusCode, 500)
  const line = panics()[0]
  t.equal(line.reqId, id, 'the whole id is the logger\'s binding')
  t.ok(sizeOf(line) <= LINE, `the line is ${sizeOf(line)} bytes`)
  t.match(line.err?.message, 'upstream rejected the upload')
})

test('child-logger bindings the application adds are counted too', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.addHook('onRequest', async (request) => { request.log = request.log.child({ tenant: { name: 't'.repeat(20 * 1024), plan: 'p'.repeat(20 * 1024) } }) })
  app.get('/boom', async () => { throw Object.assign(new Error('x'), { details: Array.from({ length: 20 }, (_, i) => `${i}`.repeat(1024)) }) })
  await app.inject('/boom')
  const line = panics()[0]
  t.ok(sizeOf(line) <= LINE, `the line is ${sizeOf(line)} bytes, 40 KiB of them the bindings`)
  t.equal(line.tenant && (line.tenant as { name: string }).name.length, 20 * 1024)
})

test('causes and AggregateError members share the listing time of nested objects', async (t) => {
  const wide = (label: string): Error => {
    const error = new Error(label)
    for (let i = 0; i < 100_000; i++) (error as unknown as Record<string, number>)[`k${i}`] = i
    return error
  }
  let chain = wide('cause 9')
  for (let i = 8; i >= 1; i--) chain = Object.assign(wide(`cause ${i}`), { cause: chain })
  const top = new Error('top', { cause: chain })
  const aggregate = new AggregateError(Array.from({ length: 9 }, (_, i) => wide(`member ${i}`)), 'many wide')
  const wideOnes = new Set<object>([chain, aggregate])
  for (let link: unknown = chain; link instanceof Error; link = link.cause) wideOnes.add(link)
  for (const member of aggregate.errors) wideOnes.add(member)
  const listOnce = (() => { const started = performance.now(); Object.keys(chain); return performance.now() - started })()

  // how many of the wide objects the copy lists: without the bound on listing time, every one of them
  const keys = Object.keys
  let listings = 0
  Object.keys = (object: object) => { if (wideOnes.has(object)) listings++; return keys(object) }
  t.teardown(() => { Object.keys = keys })

  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/causes', async () => { throw top })
  app.get('/aggregate', async () => { throw aggregate })
  for (const url of ['/causes', '/aggregate']) {
    listings = 0
    const started = performance.now()
    await app.inject(url)
    const elapsed = performance.now() - started
    t.comment(`${url}: ${elapsed.toFixed(1)} ms for the request, ${listings} of 9 wide objects listed; V8 lists one in ${listOnce.toFixed(1)} ms`)
    t.ok(listings < 9, `${url}: listing stopped when its time was spent (${listings} listed)`)
  }
  Object.keys = keys
  const [causes, members] = panics()
  t.match(causes.err?.message, /^top: cause 1: cause 2: cause 3/, 'the chain is followed, whatever was not listed')
  t.ok(sizeOf(causes) <= LINE)
  t.match(JSON.stringify(members.err?.aggregateErrors), 'keys not listed', 'an aggregated error past the listing time says so')
  t.ok(sizeOf(members) <= LINE)
})

test('huge key names are cut before they are compared: a 2 MB key costs what a short one does', async (t) => {
  const value: Record<string, string> = {}
  for (let i = 0; i < 20; i++) value[`${String.fromCharCode(97 + i)}${'k'.repeat(2 * 1024 * 1024)}`] = 'v'
  // a key whose credential name comes at the very end is still a credential's
  value[`${'x'.repeat(2 * 1024 * 1024)}_password`] = 'CANARY-long-key'
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/keys', async () => { throw Object.assign(new Error('wide keys'), { value }) })
  const started = performance.now()
  await app.inject('/keys')
  t.comment(`${(performance.now() - started).toFixed(1)} ms for the request`)
  const line = panics()[0]
  t.ok(sizeOf(line) <= LINE, `${sizeOf(line)} bytes`)
  t.notMatch(JSON.stringify(line), 'CANARY-long-key')
})

test('BigInts are described in bounded time: small ones in full, large ones by their size', async (t) => {
  const { app, panics } = await buildApp({}, { bodyLimit: 2 * 1024 * 1024 })
  t.teardown(() => app.close())
  // a client's 800 KB hex string turned into a BigInt by the application
  app.post('/amount', async (request) => { throw Object.assign(new Error('amount rejected'), { amount: BigInt(`0x${request.body as string}`), small: 12345678901234567890n }) })
  app.get('/thrown', async () => { throw 1n << 10_000_000n }) // eslint-disable-line no-throw-literal
  for (const [url, options] of [['/amount', { method: 'POST', payload: 'f'.repeat(800 * 1024), headers: { 'content-type': 'text/plain' } }], ['/thrown', {}]] as const) {
    const started = performance.now()
    await app.inject({ url, ...options })
    t.comment(`${url}: ${(performance.now() - started).toFixed(1)} ms for the request`)
  }
  const [amount, thrown] = panics()
  t.match(amount.err, { amount: /^0xffffffffffffffff… \[BigInt of 3276800 bits\]$/, small: '12345678901234567890n' })
  t.match(thrown.err?.message, 'A non-Error value was thrown: 0x1000000000000000… [BigInt of 10000001 bits]')
  t.match(thrown.err, { valueType: 'bigint' })
})

test('a Symbol whose description is huge, a function of a huge name: cut, never copied whole', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  const named = { [`f${'n'.repeat(4 * 1024 * 1024)}`]: () => {} }
  app.get('/odd', async () => { throw Object.assign(new Error('odd parts'), { symbol: Symbol('s'.repeat(4 * 1024 * 1024)), fn: Object.values(named)[0] }) })
  await app.inject('/odd')
  const line = panics()[0]
  t.ok(sizeOf(line) <= LINE, `${sizeOf(line)} bytes`)
  t.match(line.err, { symbol: /^Symbol\(s+…\[truncated/, fn: /^\[Function fn+…\[truncated/ })
})
