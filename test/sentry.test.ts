import { test, type Test } from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import * as Sentry from '@sentry/node'
import type { ErrorEvent } from '@sentry/node'
import type { PanicMessage } from '../types/index'
import { buildApp, sleep } from './helper'

// The README's Sentry recipe, with the real @sentry/node 11 and a transport that keeps envelopes in
// memory: one event per panic, carrying the panic's fingerprint, source, route and request id.
// @sentry/node 11 captures a handler's error itself, first, through Fastify's
// `tracing:fastify.request.handler:error` channel; a subscriber's capture of the same Error is then
// dropped as already captured. The recipe turns Sentry's own capture off for Fastify's handler errors
// (`shouldHandleError: () => false`) and captures every panic, of every source, from the channel.

const events: ErrorEvent[] = []
const envelopes: unknown[] = []

async function initSentry (integrations: ReturnType<typeof Sentry.fastifyIntegration>[] | false): Promise<void> {
  await Sentry.close()
  events.length = 0
  Sentry.init({
    dsn: 'https://public@sentry.example/1',
    defaultIntegrations: false,
    integrations: integrations === false ? [] : integrations,
    // nothing leaves the process: envelopes are kept in memory
    transport: (options) => Sentry.createTransport(options, async (request) => { envelopes.push(request.body); return {} }),
    beforeSend: (event) => { events.push(event); return event }
  })
}

// the README recipe's subscriber
function forwardPanics ({ info }: PanicMessage): void {
  Sentry.withScope((scope) => {
    scope.setFingerprint([info.fingerprint])
    scope.setTags({ 'panic.source': info.source, 'panic.route': info.route, request_id: info.requestId })
    scope.setContext('panic', { requestId: info.requestId, method: info.method, route: info.route, task: info.task, fingerprint: info.fingerprint })
    Sentry.captureException(info.error, { mechanism: { type: 'fastify-recovery', handled: true } })
  })
}

async function panicsOf (t: Test): Promise<Array<{ id: string | undefined, fingerprint: string | undefined }>> {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/orders/:id', async () => { throw new TypeError('total of undefined') })
  app.get('/users', async () => { throw new Error('db down') })
  await app.inject('/orders/7')
  await app.inject('/users')
  await app.recovery.run(async () => { throw new Error('receipt failed') }, { name: 'send-receipt' })
  await Sentry.flush(1000)
  await sleep(20)
  return panics().map((line) => ({ id: line.reqId, fingerprint: line.panic?.fingerprint }))
}

const subscriber = (message: unknown): void => forwardPanics(message as PanicMessage)

test('without Sentry\'s Fastify integration: one event per panic of every source, with its fingerprint, tags and request id', async (t) => {
  await initSentry(false)
  subscribe('fastify-recovery.panic', subscriber)
  t.teardown(() => { unsubscribe('fastify-recovery.panic', subscriber) })
  const panics = await panicsOf(t)
  t.equal(events.length, 3, 'one event per panic')
  t.same(events.map((event) => event.fingerprint), panics.map((panic) => [panic.fingerprint]))
  t.match(events[0], { tags: { 'panic.source': 'request', 'panic.route': '/orders/:id', request_id: 'req-1' }, exception: { values: [{ type: 'TypeError', value: 'total of undefined' }] } })
  t.match(events[2], { tags: { 'panic.source': 'background', 'panic.route': '' }, contexts: { panic: { task: 'send-receipt' } } })
  t.ok(envelopes.length >= 3, 'the transport got them')
})

test('with Sentry\'s Fastify integration and the recipe\'s shouldHandleError: still one event per panic, with its fingerprint', async (t) => {
  await initSentry([Sentry.fastifyIntegration({ shouldHandleError: () => false })])
  subscribe('fastify-recovery.panic', subscriber)
  t.teardown(() => { unsubscribe('fastify-recovery.panic', subscriber) })
  const panics = await panicsOf(t)
  t.equal(events.length, 3)
  t.same(events.map((event) => event.fingerprint), panics.map((panic) => [panic.fingerprint]))
  t.same(events.map((event) => event.tags?.request_id), ['req-1', 'req-2', undefined])
})

test('why the recipe needs it: Sentry\'s own capture comes first, and the subscriber\'s is dropped', async (t) => {
  await initSentry([Sentry.fastifyIntegration()])
  subscribe('fastify-recovery.panic', subscriber)
  t.teardown(() => { unsubscribe('fastify-recovery.panic', subscriber) })
  await panicsOf(t)
  const requestEvents = events.filter((event) => event.exception?.values?.[0].value !== 'receipt failed')
  t.equal(requestEvents.length, 2, 'one event per request panic: Sentry\'s')
  t.same(requestEvents.map((event) => event.fingerprint), [undefined, undefined], 'without the fingerprint, source, route or request id')
  await Sentry.close()
})
