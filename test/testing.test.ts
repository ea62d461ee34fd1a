import { test } from 'tap'
import { channel } from 'node:diagnostics_channel'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import Fastify from 'fastify'
import { capturePanics } from '../testing'
import { buildApp, builtPlugin, recovery, runNode, sleep } from './helper'

// Contract §16, the test kit: `capturePanics(app)` collects every panic that app (and its child
// scopes) records from now on, in order, whatever the source, and nothing of another instance.

test('every panic of the app and its child scopes, in order, of every source; no other instance\'s', async (t) => {
  const { app } = await buildApp({ process: { unhandledRejection: 'log' } })
  t.teardown(() => app.close())
  const other = Fastify()
  await other.register(recovery, { metrics: false, logLevel: 'fatal' })
  t.teardown(() => other.close())
  app.get('/boom', async () => { throw new TypeError('request') })
  app.register(async (child) => { child.get('/child', async () => { throw new Error('child scope') }) })
  app.get('/detached', async () => { Promise.reject(new Error('process')); return 'ok' })
  other.get('/boom', async () => { throw new Error('another instance') })
  await app.ready()

  const captured = capturePanics(app)
  t.teardown(() => captured.stop())
  await app.inject('/boom')
  await other.inject('/boom')
  await app.inject('/child')
  await app.inject('/detached')
  await sleep(20)
  await app.recovery.run(() => { throw new Error('background') })
  app.recovery.report(new Error('reported'), { name: 'job' })
  other.recovery.report(new Error('another report'))

  t.same(captured.panics.map((info) => [info.source, info.error.message]), [
    ['request', 'request'], ['request', 'child scope'], ['process', 'process'], ['background', 'background'], ['reported', 'reported']
  ])
  t.match(captured.panics[0], { requestId: 'req-1', route: '/boom', method: 'GET', fingerprint: /^[0-9a-f]{12}$/ })
  t.ok(captured.panics[0].error instanceof TypeError, 'the thrown value itself, for assertions')
  t.equal(captured.panics[4].task, 'job')

  captured.clear()
  t.same(captured.panics, [])
  await app.inject('/boom')
  t.equal(captured.panics.length, 1, 'goes on after clear()')
  captured.stop()
  await app.inject('/boom')
  t.equal(captured.panics.length, 1, 'nothing after stop()')
})

test('an app that does not call it gets nothing: no subscriber', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const subscribed = (): boolean[] => ['fastify-recovery.panic', 'fastify-recovery.record', 'fastify-recovery.close'].map((name) => channel(name).hasSubscribers)
  t.same(subscribed(), [false, false, false])
  const captured = capturePanics(app)
  t.same(subscribed(), [false, true, true], 'the test kit listens on channels of its own, not on the public one')
  captured.stop()
  t.same(subscribed(), [false, false, false])
})

test('the README\'s node:test example runs under node --test', async (t) => {
  // inside the project, so that it finds fastify as an application would
  const dir = mkdtempSync(join(resolve(__dirname, '..'), '.tmp-kit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'orders.test.js')
  writeFileSync(file, `
    const { test } = require('node:test')
    const assert = require('node:assert')
    const Fastify = require('fastify')
    const recovery = require(${JSON.stringify(builtPlugin())})
    const { capturePanics } = require(${JSON.stringify(resolve(__dirname, '..', 'dist', 'testing.js'))})

    test('a failing order is recorded, not leaked', async (t) => {
      const app = Fastify()
      await app.register(recovery)
      app.get('/orders/:id', async () => { throw new Error('db down') })
      const panics = capturePanics(app)
      t.after(() => { panics.stop(); return app.close() })

      const res = await app.inject('/orders/7')
      assert.equal(res.statusCode, 500)
      assert.equal(panics.panics.length, 1)
      assert.equal(panics.panics[0].route, '/orders/:id')
      assert.match(panics.panics[0].error.message, /db down/)
    })
  `)
  const { code, stdout, stderr } = await runNode(['--test', '--test-reporter=tap', file], resolve(__dirname, '..'))
  const output = stdout + stderr
  t.equal(code, 0, output)
  t.match(output, /# pass 1/)
})

test('given no instance (a test that captures before its app exists): nothing captured, nothing thrown, other apps unchanged', async (t) => {
  const none = capturePanics(undefined)
  const nothing = capturePanics(null)
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  const captured = capturePanics(app)
  t.teardown(() => captured.stop())
  app.get('/boom', async () => { throw new Error('boom') })
  const uncaught: unknown[] = []
  const onUncaught = (error: unknown): void => { uncaught.push(error) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => process.removeListener('uncaughtException', onUncaught))
  t.equal((await app.inject('/boom')).statusCode, 500)
  await sleep(10)
  t.same(uncaught, [], 'no subscriber throws')
  t.same([none.panics.length, nothing.panics.length], [0, 0])
  t.doesNotThrow(() => { none.clear(); none.stop(); nothing.stop() })
  t.equal(captured.panics.length, 1)
  t.equal(panics().length, 1)
})

test('a child scope\'s capture sees what that scope records every way: its routes, its report() and run(), a report made in the custom handler', async (t) => {
  const { app } = await buildApp({ handler: (info, request) => { app.recovery.report(new Error(`reported by the handler of ${info.route ?? ''}`), { request }) } })
  t.teardown(() => app.close())
  let scope: typeof app | undefined
  app.register(async (child) => {
    scope = child
    child.get('/child', async () => { throw new Error('child route') })
  })
  app.get('/root', async () => { throw new Error('root route') })
  await app.ready()
  const inChild = capturePanics(scope)
  const inRoot = capturePanics(app)
  t.teardown(() => { inChild.stop(); inRoot.stop() })
  await app.inject('/child')
  scope?.recovery.report(new Error('child report'))
  await scope?.recovery.run(async () => { throw new Error('child task') })
  await app.inject('/root')
  await sleep(10)
  t.same(inChild.panics.map((info) => (info.error as Error).message), ['child route', 'reported by the handler of /child', 'child report', 'child task'])
  t.same(inRoot.panics.map((info) => (info.error as Error).message), ['child route', 'reported by the handler of /child', 'child report', 'child task', 'root route', 'reported by the handler of /root'])
})

test('a capture stops when its instance closes: a forgotten stop() keeps no closed app alive', async (t) => {
  const { app } = await buildApp()
  let child: typeof app | undefined
  app.register(async (scope) => { child = scope })
  await app.ready()
  const captures = [capturePanics(app), capturePanics(child)]
  t.equal(channel('fastify-recovery.record').hasSubscribers, true)
  await app.close()
  t.equal(channel('fastify-recovery.record').hasSubscribers, false, 'both captures stopped')
  t.equal(channel('fastify-recovery.close').hasSubscribers, false)
  t.same(captures.map((captured) => captured.panics.length), [0, 0])
})
