'use strict'

// One benchmark contender, run as its own process by bench/run.js: `node bench/server.js <contender>`.
// Every contender logs through pino to the same asynchronous destination (BENCH_LOG, default
// /dev/null) at level error, so none writes per-request lines.
// BENCH_PLUGIN: the path of another build of the plugin, to compare two versions.
// BENCH_PREVIOUS: the path of an earlier build, run beside this one as the `previous` contenders.

const Fastify = require('fastify')
const pino = require('pino')
const { Counter, Registry } = require('prom-client')
const recovery = require(process.env.BENCH_PLUGIN ?? 'fastify-recovery')

const GENERIC = { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }

function counter (labelNames) {
  return new Counter({ name: 'panics_total', help: 'panics', labelNames, registers: [new Registry()] })
}

const contenders = {
  // Fastify without the plugin; errors go to Fastify's default handler, which logs them
  bare: async () => {},
  default: async () => {},
  // the hand-written handler from tutorials
  naive: async (app) => {
    const panics = counter(['method', 'route'])
    app.setErrorHandler((err, req, reply) => {
      req.log.error({ err }, 'panic')
      panics.inc({ method: req.method, route: req.routeOptions.url })
      reply.code(500).send(GENERIC)
    })
  },
  // what the contract asks of a panic, by hand, with no care for hostile values or failing hooks:
  // a stackless line with the panic fields, a counter with its source label, the request id in a
  // header and the body, no-store; the realistic ceiling for the plugin in a storm
  handwritten: (app) => handwritten(app, false),
  // the same, every line with its stack: the ceiling for the error path
  'handwritten-stack': (app) => handwritten(app, true),
  // the upper bound: throw and answer, nothing logged or counted
  limit: async (app) => {
    app.setErrorHandler((_err, _req, reply) => { reply.code(500).send(GENERIC) })
  },
  // diagnostic: what one no-op onSend hook costs every reply
  'bare-onsend': async (app) => { app.addHook('onSend', (_request, _reply, _payload, done) => { done() }) },
  plugin: (app) => app.register(recovery, { metrics: { registry: new Registry() } }),
  'plugin-nodedupe': (app) => app.register(recovery, { metrics: { registry: new Registry() }, stackDedupe: false }),
  'plugin-close': (app) => app.register(recovery, { metrics: { registry: new Registry() }, closeConnection: true }),
  // log-storm sampling: the first 10 lines of a failure per minute, then one per 100
  'plugin-sampled': (app) => app.register(recovery, { metrics: { registry: new Registry() }, sampling: { first: 10, every: 100, windowMs: 60_000 } }),
  'plugin-process': (app) => app.register(recovery, { metrics: { registry: new Registry() }, process: true }),
  previous: (app) => app.register(require(process.env.BENCH_PREVIOUS), { metrics: { registry: new Registry() } }),
  'previous-nodedupe': (app) => app.register(require(process.env.BENCH_PREVIOUS), { metrics: { registry: new Registry() }, stackDedupe: false })
}

async function handwritten (app, withStack) {
  const panics = counter(['method', 'route', 'source'])
  app.setErrorHandler((err, req, reply) => {
    const route = req.routeOptions.url
    req.log.error({
      err: withStack ? { type: err.name, message: err.message, stack: err.stack } : { type: err.name, message: err.message },
      panic: { source: 'request', method: req.method, route, statusCode: 500, latencyMs: reply.elapsedTime, fingerprint: '0123456789ab' }
    }, 'panic recovered')
    panics.inc({ method: req.method, route, source: 'request' })
    reply.code(500).header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8').header('x-request-id', req.id)
      .send(`{"statusCode":500,"error":"Internal Server Error","message":"Internal Server Error","requestId":${JSON.stringify(req.id)}}`)
  })
}

async function main () {
  const name = process.argv[2]
  const setup = contenders[name]
  if (setup === undefined) throw new Error(`unknown contender ${name}; one of ${Object.keys(contenders).join(', ')}`)
  const app = Fastify({
    logger: { level: 'error', stream: pino.destination({ dest: process.env.BENCH_LOG ?? '/dev/null', sync: false }) }
  })
  await setup(app)

  let n = 0
  // distinct in their words, so every panic has its own fingerprint
  const letters = (value) => String(value).replace(/\d/g, (digit) => String.fromCharCode(97 + Number(digit)))
  app.get('/ok', async () => ({ hello: 'world' }))
  app.get('/panic', async () => { throw new Error('database connection lost') })
  // distinct fingerprints: a word of its own in each message (the memory measure)
  app.get('/distinct', async () => { throw new Error(`failure ${letters(n++)} while reading the order`) })
  // one place, distinct messages: an id in each, as real failures have (one fingerprint)
  app.get('/order', async () => { throw new Error(`order ${n++} not found in shard 3 (user ${n * 7919 % 100000})`) })
  app.get('/__memory', async () => {
    for (let i = 0; i < 3; i++) global.gc()
    const { rss, heapUsed } = process.memoryUsage()
    return { rss, heapUsed, panics: n }
  })

  await app.listen({ port: 0, host: '127.0.0.1' })
  process.on('message', (message) => {
    // bench/profile.js asks for a clean exit, so that --cpu-prof writes its profile
    if (message === 'exit') app.close().then(() => process.exit(0))
  })
  process.send({ port: app.server.address().port })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
