import { test, type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { builtPlugin, rawRequest, sleep, type RawResponse } from './helper'

// The process-level net for real: servers run as child processes (they exit, by design) and are
// driven over real sockets. They run the built plugin with plain node (its logic is covered in-process
// by process-net.test.ts).

interface Server {
  child: ChildProcess
  port: number
  lines: Array<Record<string, any>>
  exited: Promise<{ code: number | null, at: number }>
}

async function start (t: Test, option: unknown, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [resolve(__dirname, 'fixtures', 'process-server.js'), JSON.stringify(option)], {
    env: { ...process.env, ...env, RECOVERY_PLUGIN: builtPlugin() },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, any>> = []
  let buffered = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let newline
    while ((newline = buffered.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buffered.slice(0, newline)))
      buffered = buffered.slice(newline + 1)
    }
  })
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, at: Date.now() }))
  let stderr = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      const match = /listening (\d+)/.exec(stderr)
      if (match) resolve(Number(match[1]))
    })
    exited.then(() => reject(new Error(`the fixture exited: ${stderr}`)))
  })
  return { child, port, lines, exited }
}

const get = (port: number, path: string, waitMs = 3000): Promise<RawResponse> =>
  rawRequest(port, [`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`], waitMs)

function panicLines (server: Server): Array<Record<string, any>> {
  return server.lines.filter((line) => line.msg === 'panic recovered')
}

test("uncaughtException, 'exit' (default): culprit 500, in-flight drained, new connections refused, exit 1", async (t) => {
  const server = await start(t, true, { SLOW_MS: '600' })
  const slow = get(server.port, '/slow')
  await sleep(50)
  const crash = await get(server.port, '/crash', 500)
  t.equal(crash.statusCode, 500, 'the culprit gets the generic 500')
  t.equal(JSON.parse(crash.body).message, 'Internal Server Error')
  t.notMatch(crash.body, /timer bug/)
  t.equal(crash.headers.connection, 'close')

  await t.rejects(get(server.port, '/ok', 300), { code: 'ECONNREFUSED' }, 'no new connection while shutting down')

  const drained = await slow
  t.equal(drained.statusCode, 200, 'the in-flight request finished')
  t.same(JSON.parse(drained.body), { slow: 'done' })

  const { code } = await server.exited
  t.equal(code, 1)
  const [fatal] = panicLines(server)
  t.equal(fatal.level, 60, 'logged at fatal')
  t.equal(fatal.reqId, crash.headers['x-request-id'], 'attributed to the culprit')
  t.match(fatal, { err: { message: 'timer bug in /crash' }, panic: { source: 'process', method: 'GET', route: '/crash', statusCode: 500 } })
})

test('shutdownTimeout bounds the wait for in-flight requests', async (t) => {
  const server = await start(t, { shutdownTimeout: 300 }, { SLOW_MS: '10000' })
  const begun = Date.now()
  const slow = get(server.port, '/slow', 5000)
  await sleep(50)
  await get(server.port, '/crash', 300)
  const { code, at } = await server.exited
  t.equal(code, 1)
  t.ok(at - begun < 3000, `exited after ${at - begun} ms, not after the 10 s request`)
  t.ok((await slow).closed, 'the slow request was cut')
})

test('a second fatal error during the shutdown exits at once', async (t) => {
  const server = await start(t, true, { SLOW_MS: '5000' })
  const begun = Date.now()
  get(server.port, '/slow', 6000).catch(() => {})
  await sleep(50)
  get(server.port, '/crash-twice', 1000).catch(() => {})
  const { code, at } = await server.exited
  t.equal(code, 1)
  t.ok(at - begun < 2500, `exited after ${at - begun} ms instead of draining the 5 s request`)
  t.same(panicLines(server).map((line) => line.err.message), ['first fatal', 'second fatal'])
})

test("unhandledRejection, 'log' (default): logged with the right reqId, the server keeps answering", async (t) => {
  const server = await start(t, true)
  for (const id of ['a', 'b', 'c']) {
    const res = await get(server.port, `/reject/${id}`, 200)
    t.equal(res.statusCode, 200)
  }
  await sleep(50)
  t.equal((await get(server.port, '/ok', 200)).statusCode, 200, 'still serving')
  const lines = panicLines(server)
  t.equal(lines.length, 3)
  for (const [i, id] of ['a', 'b', 'c'].entries()) {
    t.equal(lines[i].err.message, `detached rejection for ${id}`)
    t.equal(lines[i].reqId, `req-${i + 1}`, `the rejection for ${id} is attributed to its own request`)
    t.match(lines[i], { level: 50, panic: { source: 'process', method: 'GET', route: '/reject/:id' } })
  }
  const metrics = (await get(server.port, '/metrics', 200)).body
  t.match(metrics, 'fastify_panics_total{method="GET",route="/reject/:id",source="process"} 3')
  server.child.kill('SIGTERM')
})

test("unhandledRejection, 'exit': the waiting request gets the 500, exit 1", async (t) => {
  const server = await start(t, { unhandledRejection: 'exit' })
  const res = await get(server.port, '/reject-and-wait', 1000)
  t.equal(res.statusCode, 500)
  t.equal((await server.exited).code, 1)
  t.match(panicLines(server)[0], { level: 50, reqId: res.headers['x-request-id'], panic: { source: 'process', statusCode: 500 } })
})

test("uncaughtException, 'log': logged at fatal, the server keeps serving", async (t) => {
  const server = await start(t, { uncaughtException: 'log' })
  get(server.port, '/crash', 300).catch(() => {})
  await sleep(100)
  t.equal((await get(server.port, '/ok', 200)).statusCode, 200)
  t.match(panicLines(server)[0], { level: 60, reqId: 'req-1', panic: { source: 'process', route: '/crash' } })
  t.notOk('statusCode' in panicLines(server)[0].panic, 'no reply was sent for it')
  server.child.kill('SIGTERM')
})

test('app.recovery.run without a request takes it from the context', async (t) => {
  const server = await start(t, true)
  t.equal((await get(server.port, '/background', 200)).statusCode, 200)
  await sleep(50)
  t.match(panicLines(server)[0], { reqId: 'req-1', panic: { source: 'background', task: 'implicit', route: '/background', method: 'GET' } })
  server.child.kill('SIGTERM')
})

// The shutdown is started by a request's failure, but belongs to no request: what fails in it is
// attributed to none (it used to be logged with the reqId of a request answered 200 long before).
test("'exit': a failure of the shutdown itself (an onClose hook) is recorded with no request", async (t) => {
  for (const hook of ['timer', 'rejects']) {
    const server = await start(t, { unhandledRejection: 'exit', uncaughtException: 'log' }, { CLOSE_HOOK: hook })
    const answered = await get(server.port, '/reject/1', 1000)
    t.equal(answered.statusCode, 200, `${hook}: the request whose rejection starts the shutdown was answered`)
    t.equal((await server.exited).code, 1)
    const byMessage = (message: string): Record<string, any> | undefined => panicLines(server).find((line) => line.err?.message === message)
    t.match(byMessage('detached rejection for 1'), { reqId: 'req-1' })
    const shutdown = byMessage(hook === 'timer' ? 'onClose timer failed' : 'onClose hook failed')
    t.ok(shutdown, `${hook}: the shutdown's failure is recorded`)
    t.notOk('reqId' in (shutdown ?? {}), `${hook}: with no request`)
    t.match(shutdown?.panic, { source: 'process', method: '', route: '' })
  }
})

// Fastify runs the onClose hooks where the last in-flight request ended: a timer an onClose hook
// starts used to carry that request's context, and its failure was logged with that innocent
// request's reqId and route.
test("'exit' on an uncaught exception, a request in flight: the shutdown's own failure is attributed to no request", async (t) => {
  const server = await start(t, { uncaughtException: 'exit', shutdownTimeout: 3000 }, { CLOSE_HOOK: 'timer', SLOW_MS: '300' })
  const slow = get(server.port, '/slow', 2000)
  await sleep(50)
  await get(server.port, '/crash', 500)
  t.equal((await slow).statusCode, 200, 'the request in flight finished')
  t.equal((await server.exited).code, 1)
  const shutdown = panicLines(server).find((line) => line.err?.message === 'onClose timer failed')
  t.ok(shutdown, 'the shutdown\'s failure is recorded')
  t.notOk('reqId' in (shutdown ?? {}), 'with no request: not the one that was in flight')
  t.match(shutdown?.panic, { source: 'process', method: '', route: '' })
  t.match(panicLines(server).find((line) => line.err?.message === 'timer bug in /crash'), { reqId: 'req-2', panic: { route: '/crash' } }, 'the culprit\'s own failure keeps its request')
})
