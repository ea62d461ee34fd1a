import { test } from 'tap'
import { runScript } from './helper'

// A thrown Promise that rejects is a panic; its own rejection must not crash the process as well,
// even when its `constructor` cannot be replaced (every way to add a handler looks it up). Run in
// child processes: an unhandled rejection is a property of the whole process.

function run (script: string, covered = false): Promise<{ code: number | null, stdout: string, stderr: string }> {
  // plain node on the built plugin, but for the crash the plugin's own listener causes (its lines run in no other test)
  return runScript(`
    const app = Fastify()
    const hostile = (how) => {
      const promise = Promise.reject(new Error('own rejection ' + how))
      Object.defineProperty(promise, 'constructor', { get () { throw new Error('hostile constructor') }, configurable: how === 'configurable' })
      return promise
    }
    ${script}
  `, { covered })
}

test('a thrown Promise with a non-configurable hostile constructor: one panic, no crash', async (t) => {
  const { code, stdout, stderr } = await run(`
    app.register(recovery, { metrics: false })
    app.get('/a', async () => { throw hostile('non-configurable') })
    app.get('/b', async () => { throw hostile('configurable') })
    // the two in one turn: one listener swallows both
    Promise.all([app.inject('/a'), app.inject('/b'), app.inject('/a')]).then((replies) => {
      console.log(replies.map((reply) => reply.statusCode).join(' '))
      setTimeout(() => app.close(), 50)
    })
  `)
  t.equal(stderr, '', 'nothing on stderr')
  t.equal(stdout.trim(), '500 500 500')
  t.equal(code, 0)
})

test('while a rejection is being swallowed, any other unhandled rejection still crashes the process', async (t) => {
  const { code, stderr } = await run(`
    app.register(recovery, { metrics: false })
    app.get('/a', async () => { Promise.reject(new Error('an unrelated unhandled rejection')); throw hostile('non-configurable') })
    app.inject('/a')
    setTimeout(() => {}, 1000)
  `, true)
  t.not(code, 0)
  t.match(stderr, /an unrelated unhandled rejection/)
  t.notMatch(stderr, /own rejection/)
})

test('a rejection with a non-Error reason crashes as Node would, with its reason', async (t) => {
  const { code, stderr } = await run(`
    app.register(recovery, { metrics: false })
    app.get('/a', async () => { Promise.reject('a bare string reason'); throw hostile('non-configurable') })
    app.inject('/a')
    setTimeout(() => {}, 1000)
  `, true)
  t.not(code, 0)
  t.match(stderr, /Unhandled rejection: a bare string reason/)
})

test('with the process net on, the swallowed rejection is not recorded twice', async (t) => {
  const { code, stdout } = await run(`
    const logged = Fastify({ logger: { level: 'error' } })
    logged.register(recovery, { process: true, metrics: false })
    logged.get('/a', async () => { throw hostile('non-configurable') })
    logged.ready().then(() => logged.inject('/a')).then(() => setTimeout(() => logged.close(), 50))
  `)
  t.equal(code, 0)
  const panics = stdout.trim().split('\n').map((line) => JSON.parse(line)).filter((line) => line.msg === 'panic recovered')
  t.equal(panics.length, 1)
  t.equal(panics[0].panic.source, 'request')
})
