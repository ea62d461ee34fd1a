import { test, type Test } from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { runScript } from './helper'

// Contract §9: the process net never turns a failure into success. A start-up that fails (listen
// rejecting with EADDRINUSE, awaited or not) ends the process with a non-zero code, as it does
// without the plugin. Child processes run the built plugin with plain node.

async function busyPort (t: Test): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return (server.address() as { port: number }).port
}

async function exitCodeOf (script: string): Promise<{ code: number | null, stdout: string }> {
  return runScript(`
    const app = Fastify({ logger: { level: 'error' } })
    ${script}
  `)
}

const starts: Array<[string, string]> = [
  ['listen() not awaited', 'app.listen({ port: PORT, host: "127.0.0.1" })'],
  ['listen() awaited in an async main without a catch', 'async function main () { await app.listen({ port: PORT, host: "127.0.0.1" }) } main()'],
  ['a listen error wrapped as the cause of the application\'s own', 'app.listen({ port: PORT, host: "127.0.0.1" }).catch((error) => { throw new Error("start failed", { cause: error }) })']
]

for (const [name, start] of starts) {
  test(`a failed start-up exits non-zero: ${name}`, async (t) => {
    const port = await busyPort(t)
    const reference = await exitCodeOf(start.replaceAll('PORT', String(port)))
    t.equal(reference.code, 1, 'without the plugin: 1')
    for (const option of ['true', "{ unhandledRejection: 'log', uncaughtException: 'log' }"]) {
      const { code, stdout } = await exitCodeOf(`app.register(recovery, { process: ${option}, metrics: false }); ${start.replaceAll('PORT', String(port))}`)
      t.equal(code, 1, `process: ${option}`)
      t.match(stdout, /"msg":"panic recovered"/, `process: ${option}: the failure is logged`)
      t.match(stdout, /EADDRINUSE/)
    }
  })
}

test('a listen error the application handles itself is its business: no exit', async (t) => {
  const port = await busyPort(t)
  const { code, stdout } = await exitCodeOf(`
    app.register(recovery, { process: true, metrics: false })
    app.listen({ port: ${port}, host: '127.0.0.1' }).catch(() => app.listen({ port: 0, host: '127.0.0.1' }))
      .then(() => { console.log('listening elsewhere'); return app.close() })
  `)
  t.equal(code, 0)
  t.match(stdout, 'listening elsewhere')
})
