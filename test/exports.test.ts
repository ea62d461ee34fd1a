import { test } from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { resolve } from 'node:path'
import Fastify from 'fastify'

// The compiled package, as npm users load it (package self-reference resolves to dist/).
const run = promisify(execFile)
const root = resolve(__dirname, '..')

test('CommonJS: the plugin, .default and .fastifyRecovery are one function', async (t) => {
  const plugin = require('fastify-recovery')
  t.type(plugin, 'function')
  t.equal(plugin.default, plugin)
  t.equal(plugin.fastifyRecovery, plugin)
  t.equal(plugin[Symbol.for('fastify.display-name')], 'fastify-recovery')
  t.match(plugin[Symbol.for('plugin-meta')], { name: 'fastify-recovery', fastify: '5.x' })
  t.equal(plugin[Symbol.for('skip-override')], true, 'applies to the scope that registers it')

  const app = Fastify()
  await app.register(plugin, { metrics: false })
  app.get('/boom', async () => { throw new Error('x') })
  t.equal((await app.inject('/boom')).statusCode, 500)
  await app.close()
})

test('ESM: default and named imports', async (t) => {
  const source = `
    import recovery, { fastifyRecovery } from 'fastify-recovery'
    import Fastify from 'fastify'
    if (recovery !== fastifyRecovery || typeof recovery !== 'function') throw new Error('bad exports')
    const app = Fastify()
    await app.register(recovery, { metrics: false })
    app.get('/boom', async () => { throw new Error('x') })
    const res = await app.inject('/boom')
    console.log(res.statusCode, res.json().requestId)
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', source], { cwd: root })
  t.equal(stdout.trim(), '500 req-1')
})
