import { test } from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import Fastify from 'fastify'
import { LogSampler } from '../lib/log-sampling'
import { buildApp, genericBody, recovery, sleep, type LogLine } from './helper'

// Contract §15, log-storm sampling (opt-in): the first `first` panics of a fingerprint in a window are
// logged as usual, then one line per `every`, carrying `panic.sampled.skipped`. Nothing is lost:
// for each fingerprint the lines plus the `skipped` they carry equal the panics, across window ends;
// the counter, the channel and the reply are unchanged.

const panic = (fingerprint: string) => ({ fingerprint, source: 'request' as const, method: 'GET', route: '/r' })

test('the sampler: the first ones, then one in every; what a window leaves is carried by the next line', async (t) => {
  const sampler = new LogSampler({ first: 2, every: 3, windowMs: 1000 })
  const decisions = Array.from({ length: 9 }, (_, i) => sampler.take(panic('a'), i))
  t.same(decisions, [null, null, undefined, undefined, 2, undefined, undefined, 2, undefined], 'as usual twice; then one line per 3, carrying the 2 before it')
  t.equal(sampler.take(panic('a'), 1000), 1, 'a new window: its first line carries what the last one left over')
  t.equal(sampler.take(panic('a'), 1001), null)
  t.equal(sampler.take(panic('b'), 1001), null, 'each fingerprint on its own')
})

test('a fingerprint dropped to make room, or left when the instance closes: what it carried is handed over', async (t) => {
  const sampler = new LogSampler({ first: 1, every: 10, windowMs: 60_000 }, 2)
  sampler.take(panic('a'), 0)
  sampler.take(panic('a'), 1)
  sampler.take(panic('a'), 2)
  sampler.take(panic('b'), 3)
  t.same(sampler.leftOvers, [])
  sampler.take(panic('c'), 4)
  t.same(sampler.leftOvers, [{ panic: panic('a'), skipped: 2 }], 'the oldest dropped, what it carried left over')
  t.equal(sampler.size, 2)
  sampler.leftOvers.length = 0
  sampler.take(panic('b'), 5)
  sampler.flush()
  t.same(sampler.leftOvers, [{ panic: panic('b'), skipped: 1 }], 'only what carries something')
  t.equal(sampler.size, 0)
})

// for one fingerprint's lines: the panics they stand for
function accounted (lines: LogLine[]): number {
  return lines.reduce((sum, line) => sum + (line.msg === 'panic recovered' ? 1 : 0) + Number((line.panic?.sampled as { skipped?: number } | undefined)?.skipped ?? 0), 0)
}

test('a storm of one failure: few lines, every panic accounted for, counted, published and answered', async (t) => {
  const published: unknown[] = []
  const subscriber = (message: unknown): void => { published.push(message) }
  subscribe('fastify-recovery.panic', subscriber)
  t.teardown(() => { unsubscribe('fastify-recovery.panic', subscriber) })
  const { app, lines, count } = await buildApp({ sampling: { first: 3, every: 10, windowMs: 60_000 } })
  app.get('/boom', async () => { throw new Error('db down') })
  app.get('/other', async () => { throw new TypeError('another failure') })
  for (let i = 0; i < 100; i++) {
    const res = await app.inject('/boom')
    t.equal(res.body, genericBody(`req-${(i + 1).toString(36)}`), 'the reply is unchanged')
  }
  await app.inject('/other')
  const storm = lines.filter((line) => line.panic?.route === '/boom')
  t.equal(storm.filter((line) => line.msg === 'panic recovered').length, 3 + 9, '3 as usual, then one per 10')
  t.notOk('sampled' in (storm[0].panic ?? {}), 'the first lines are as usual')
  t.same(storm[3].panic?.sampled, { skipped: 9 })
  t.match(storm[3], { reqId: `req-${(13).toString(36)}`, err: { message: 'db down' } }, 'a sampled line is a panic\'s line: its reqId, its err')
  t.equal(accounted(storm), 93, 'what the lines carry, the last 7 still pending')
  t.equal(await count({ route: '/boom' }), 100, 'every panic counted')
  t.equal(published.length, 101, 'and published')
  t.equal(lines.filter((line) => line.panic?.route === '/other').length, 1, 'another fingerprint has its own windows')

  await app.close()
  const closing = lines.filter((line) => line.msg === 'panics sampled')
  t.match(closing, [{ panic: { route: '/boom', method: 'GET', source: 'request', sampled: { skipped: 7 } } }], 'closing writes what was pending')
  t.notOk('err' in closing[0], 'nothing of those panics is kept')
  t.equal(accounted(lines.filter((line) => line.panic?.route === '/boom')), 100, 'lines plus what they carry equal the panics')
})

test('across a window\'s end, the next line carries what the last window left over; stack de-duplication still applies', async (t) => {
  const { app, panics } = await buildApp({ sampling: { first: 1, every: 100, windowMs: 50 }, stackDedupe: { max: 1, windowMs: 60_000 } })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('db down') })
  for (let i = 0; i < 5; i++) await app.inject('/boom')
  await sleep(80)
  await app.inject('/boom')
  const lines = panics()
  t.equal(lines.length, 2)
  t.notOk('sampled' in (lines[0].panic ?? {}))
  t.same(lines[1].panic?.sampled, { skipped: 4 }, 'the 4 skipped in the first window')
  t.equal(lines[1].panic?.stackSuppressed, true, 'the stack budget is spent by written lines only: the second line is past max 1')
  t.equal(accounted(lines), 6)
})

test('sampling off by default: one line per panic', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  for (let i = 0; i < 30; i++) await app.inject('/boom')
  t.equal(panics().length, 30)
  t.notOk(panics().some((line) => 'sampled' in (line.panic ?? {})))
})

test('sampling is validated at registration', async (t) => {
  const bad: unknown[] = [true, {}, { first: 0, every: 1, windowMs: 1 }, { first: 1, every: 1.5, windowMs: 1 }, { first: 1, every: 1, windowMs: 0 }, { first: 1, every: -1, windowMs: 1 }, { first: '1', every: 1, windowMs: 1 }, []]
  for (const sampling of bad) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(recovery, { sampling } as never) }, { code: 'FST_RECOVERY_INVALID_OPTION', message: /"sampling/ }, JSON.stringify(sampling))
    await app.close()
  }
})

// Forgetting the oldest fingerprints used to delete entries one by one from the front of a Map, whose
// iterator then skips the holes left: ~12 µs per new fingerprint at 10,000 tracked, ~1 µs at 1,000.
// Two generations forget in constant time whatever the capacity (printed, not asserted).
test('a new fingerprint costs the same whatever the capacity: the oldest are forgotten a generation at a time', async (t) => {
  const perNew: Record<number, number> = {}
  for (const capacity of [1_000, 10_000]) {
    const sampler = new LogSampler({ first: 1, every: 100, windowMs: 60_000 }, capacity)
    for (let i = 0; i < capacity * 2; i++) sampler.take(panic(`warm ${i}`), i)
    const started = performance.now()
    for (let i = 0; i < 50_000; i++) sampler.take(panic(`new ${i}`), capacity * 2 + i)
    perNew[capacity] = (performance.now() - started) * 1000 / 50_000
    t.ok(sampler.size <= capacity, `at most ${capacity} tracked`)
    sampler.leftOvers.length = 0
  }
  t.comment(`µs per new fingerprint: ${Object.entries(perNew).map(([capacity, us]) => `${capacity} tracked: ${us.toFixed(2)}`).join(', ')}`)
})

test('what the forgotten generation carried is handed over, every fingerprint of it', async (t) => {
  const sampler = new LogSampler({ first: 1, every: 100, windowMs: 60_000 }, 4)
  for (const name of ['a', 'b']) for (let i = 0; i < 3; i++) sampler.take(panic(name), i)
  for (const name of ['c', 'd', 'e', 'f']) sampler.take(panic(name), 10)
  t.same(sampler.leftOvers, [{ panic: panic('a'), skipped: 2 }, { panic: panic('b'), skipped: 2 }])
  t.ok(sampler.size <= 4)
})
