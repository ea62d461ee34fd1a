import { test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { get } from 'node:http'
import { resolve } from 'node:path'
import { freePort, sleep } from './helper'

// Many processes (example/cluster.js): several workers panic, the primary serves the aggregated
// counter through prom-client's AggregatorRegistry, and the sum is exact.

// a new connection each time, so the cluster spreads the requests over its workers
function request (port: number, path: string): Promise<{ status: number, pid: string, body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk) => { body += chunk }).on('end', () => {
        resolve({ status: response.statusCode ?? 0, pid: String(response.headers['x-worker-pid']), body })
      })
    }).on('error', reject)
  })
}

test('three workers panic; the primary serves the exact sum', async (t) => {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const cluster = spawn(process.execPath, [resolve(__dirname, '..', 'example', 'cluster.js')], {
    env: { ...process.env, WORKERS: '3', PORT: String(port), METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { cluster.kill('SIGKILL') })
  let output = ''
  cluster.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  for (let i = 0; i < 200 && (output.match(/Server listening/g) ?? []).length < 3; i++) await sleep(50)
  t.equal((output.match(/Server listening/g) ?? []).length, 3, 'three workers listening')

  const pids = new Set<string>()
  for (let i = 0; i < 30; i++) {
    const response = await request(port, '/boom')
    t.equal(response.status, 500)
    pids.add(response.pid)
  }
  for (let i = 0; i < 6; i++) await request(port, '/background')
  await request(port, '/ok')
  t.ok(pids.size > 1, `the panics happened in ${pids.size} workers`)
  await sleep(100)

  const metrics = await request(metricsPort, '/metrics')
  t.equal(metrics.status, 200)
  t.match(metrics.body, 'fastify_panics_total{method="GET",route="/boom",source="request"} 30')
  t.match(metrics.body, 'fastify_panics_total{method="GET",route="/background",source="background"} 6')
  t.match(metrics.body, 'fastify_panics_total{method="GET",route="/ok",source="request"} 0')

  cluster.kill('SIGTERM')
  const [code] = await once(cluster, 'exit')
  t.equal(code, 0)
})
