import { test } from 'tap'
import { Agent, get, request } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { counterValue, listenOnLoopback, recovery } from './helper'

// Tens of thousands of panics, every message different: the heap stays flat. The stack
// de-duplication state and the counter's series are bounded whatever the messages.
// Over real sockets: light-my-request 6.8.1 (app.inject) itself retains ~9 KB per call on Node 20.

setFlagsFromString('--expose_gc')
const gc = runInNewContext('gc') as () => void

// collected until it settles: a few passes, with turns between them for what finalizers and
// sockets still release (one reading after a single pass varied by ±1.5 MB under load)
async function heapAfterGc (): Promise<number> {
  let least = Infinity
  for (let i = 0; i < 5; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    least = Math.min(least, process.memoryUsage().heapUsed)
  }
  return least
}

test('20,000 panics with distinct messages leave the heap flat', async (t) => {
  const registry = new Registry()
  let lines = 0
  const app = Fastify({ logger: { level: 'error', stream: { write: () => { lines++ } } } })
  await app.register(recovery, { metrics: { registry } })
  t.teardown(() => app.close())
  let n = 0
  // distinct in their words, not only in numbers (numbers do not change a fingerprint): one
  // fingerprint per panic, so the de-duplication state would grow without its bound
  const letters = (value: number): string => String(value).replace(/\d/g, (digit) => String.fromCharCode(97 + Number(digit)))
  app.get('/boom/:kind', async () => { n++; throw new Error(`failure ${letters(n)} ${'x'.repeat(n % 50)}`) })
  app.get('/typed/:kind', async () => {
    n++
    const Kind = class extends Error {}
    Object.defineProperty(Kind, 'name', { value: `Kind${letters(n)}` })
    throw new Kind('same message')
  })

  const port = await listenOnLoopback(app)
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  const request = (path: string): Promise<void> => new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent }, (res) => { res.resume(); res.on('end', resolve) }).on('error', reject)
  })
  async function storm (count: number): Promise<void> {
    for (let i = 0; i < count; i += 4) {
      await Promise.all([0, 1, 2, 3].map((j) => request((i + j) % 2 === 0 ? `/boom/${i + j}` : `/typed/${i + j}`)))
    }
  }

  // 2 MB over 20,000 panics: a leak of 100 bytes a panic shows (a kept Error is ten times that)
  await storm(3_000)
  const before = await heapAfterGc()
  await storm(20_000)
  const after = await heapAfterGc()
  const growth = (after - before) / 1024 / 1024
  t.ok(growth < 2, `heap grew ${growth.toFixed(2)} MB over 20,000 distinct panics`)
  t.equal(lines, 23_000, 'every panic was logged')
  const metric = await registry.getSingleMetric('fastify_panics_total')?.get()
  t.equal(metric?.values.length, 2, 'the counter has one series per route (GET), whatever the messages')
})

// Every method, every URL distinct, in the not-found handler, with the process net on (on Node 24
// AsyncLocalStorage runs on AsyncContextFrame): nothing keeps a failure alive on any Node.
test('30,000 panics of distinct not-found URLs, every method, with the process net on: the heap stays flat', async (t) => {
  const registry = new Registry()
  let lines = 0
  const app = Fastify({ logger: { level: 'error', stream: { write: () => { lines++ } } } })
  await app.register(recovery, { metrics: { registry }, process: { unhandledRejection: 'log', uncaughtException: 'log' } })
  t.teardown(() => app.close())
  app.setNotFoundHandler(async (request) => { throw new Error(`no route for ${request.method} ${request.url}`) })
  const port = await listenOnLoopback(app)
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => agent.destroy())
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'SEARCH', 'PROPFIND', 'LOCK']
  let n = 0
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const i = n++
    const path = `/missing/${i.toString(36)}/${Math.random().toString(36).slice(2)}`
    request({ host: '127.0.0.1', port, path, method: methods[i % methods.length], agent }, (res) => { res.resume(); res.on('end', resolve) })
      .on('error', reject)
      .end()
  })
  async function storm (count: number): Promise<void> {
    for (let i = 0; i < count; i += 4) await Promise.all([one(), one(), one(), one()])
  }

  await storm(3_000)
  const before = await heapAfterGc()
  await storm(30_000)
  const after = await heapAfterGc()
  const growth = (after - before) / 1024 / 1024
  t.ok(growth < 2, `heap grew ${growth.toFixed(2)} MB over 30,000 distinct not-found panics (${process.version})`)
  t.equal(lines, 33_000, 'every panic was logged')
  t.equal(await counterValue(registry, { route: '__not_found__' }), 33_000, 'and counted')
})
