'use strict'

// Many processes: `node example/cluster.js`. WORKERS workers (default 2) serve the app on PORT
// (default 3000); the primary serves the panics of all of them, summed, on METRICS_PORT/metrics
// (default 9464) — prom-client's AggregatorRegistry asks each worker for its registry over IPC.

const cluster = require('node:cluster')
const http = require('node:http')
const { AggregatorRegistry } = require('prom-client')

const workers = Number(process.env.WORKERS ?? 2)
const port = Number(process.env.PORT ?? 3000)
const metricsPort = Number(process.env.METRICS_PORT ?? 9464)

if (cluster.isPrimary) {
  const aggregator = new AggregatorRegistry()
  for (let i = 0; i < workers; i++) cluster.fork()

  const metrics = http.createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end()
      return
    }
    aggregator.clusterMetrics().then(
      (text) => response.writeHead(200, { 'content-type': aggregator.contentType }).end(text),
      (error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(error.message)
    )
  })
  metrics.listen(metricsPort, '127.0.0.1', () => {
    console.log(JSON.stringify({ msg: `primary: cluster metrics at http://127.0.0.1:${metricsPort}/metrics` }))
  })

  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM')
      metrics.close()
      process.exit(0)
    })
  }
} else {
  const Fastify = require('fastify')
  const recovery = require('fastify-recovery')

  // constructing an AggregatorRegistry in a worker is what makes it answer the primary's requests
  // (prom-client installs its IPC listener then); it reads prom-client's global registry
  new AggregatorRegistry() // eslint-disable-line no-new

  async function start () {
    const app = Fastify({ logger: true })
    // the default registry, prom-client's global one: the one the aggregator reads in each worker;
    // awaited, so that the routes below get their zero series
    await app.register(recovery)
    app.addHook('onRequest', async (_request, reply) => { reply.header('x-worker-pid', process.pid) })
    app.get('/ok', async () => ({ ok: true, pid: process.pid }))
    app.get('/boom', async () => { throw new Error(`worker ${process.pid} failed`) })
    app.get('/background', async (request) => {
      app.recovery.run(() => { throw new Error('background task failed') }, { request, name: 'cluster-task' })
      return { started: true }
    })
    await app.listen({ port, host: '127.0.0.1' })
    process.once('SIGTERM', () => { app.close().then(() => process.exit(0)) })
  }
  start()
}
