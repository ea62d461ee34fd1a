import { test } from 'tap'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import autoload from '@fastify/autoload'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { SHUTDOWN_LISTENER_MESSAGE } from '../lib/process'
import { buildApp, genericBody } from './helper'

// fastify-cli's generated app loads `plugins/recovery.js` with @fastify/autoload, and its generated
// test helper registers the app with `{ skipOverride: true }`, which the app hands on to every
// plugin it loads. Those options (and Fastify's own `prefix`) are theirs, not the plugin's: accepted
// and ignored, while a real typo is still refused.

test('autoload\'s plain form under the options fastify-cli and Fastify add: it boots and covers the app', async (t) => {
  const dir = mkdtempSync(join(resolve(__dirname, '..'), '.tmp-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'plugins'))
  writeFileSync(join(dir, 'plugins', 'recovery.js'), `module.exports = require(${JSON.stringify(resolve(__dirname, '..', 'index.ts'))})\n`)
  // the app of fastify-cli's template: autoload, with the app's own options handed on
  const appPlugin = async (app: ReturnType<typeof Fastify>, opts: object): Promise<void> => {
    await app.register(autoload, { dir: join(dir, 'plugins'), options: { ...opts } })
    app.get('/boom', async () => { throw new Error('boom') })
  }
  const app = Fastify()
  t.teardown(() => app.close())
  // the generated test helper: `fastify.register(fp(App), { skipOverride: true })`
  await app.register(fp(appPlugin), { skipOverride: true, prefix: '/api', autoPrefix: '/x', autoHooks: true } as object)
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'))
})

test('a typo is still refused, naming the option', async (t) => {
  await t.rejects(buildApp({ requestIdheader: 'x-id' } as object), { code: 'FST_RECOVERY_UNKNOWN_OPTION', message: /unknown option "requestIdheader"/ })
})

test('close-with-grace listening for failures (as `fastify start` installs it): a warning at start that names it', async (t) => {
  const grace = closeWithGrace({ delay: 10, logger: false }, async () => {})
  t.teardown(() => grace.uninstall())
  const { app, lines } = await buildApp({ process: true })
  t.teardown(() => app.close())
  await app.ready()
  t.match(lines.filter((line) => line.level === 40), [{ msg: SHUTDOWN_LISTENER_MESSAGE }])

  // without it: no warning
  grace.uninstall()
  const quiet = await buildApp({ process: true })
  t.teardown(() => quiet.app.close())
  await quiet.app.ready()
  t.equal(quiet.lines.filter((line) => line.level === 40).length, 0)
})
