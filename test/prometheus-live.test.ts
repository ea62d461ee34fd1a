import { test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { freePort, recovery, requireProgram, sleep } from './helper'

// The real thing: a Prometheus server scrapes a plugin server every second; the counts are read
// back through its HTTP query API, the alert rules are evaluated by it, and every PromQL
// expression of the Grafana dashboard and of the README is evaluated against its data.

const run = promisify(execFile)
const root = resolve(__dirname, '..')

interface Sample { metric: Record<string, string>, value: [number, string] }

test('a live Prometheus scrape', async (t) => {
  if (!requireProgram(t, 'prometheus', 'apt-get install prometheus')) return
  if (!requireProgram(t, 'promtool', 'apt-get install prometheus')) return

  // the plugin server
  const registry = new Registry()
  const app = Fastify()
  await app.register(recovery, { metrics: { registry, endpoint: '/metrics' } })
  app.get('/boom', async () => { throw new Error('boom') })
  app.post('/orders', async () => { throw new TypeError('order failed') })
  app.get('/missing', async () => { throw Object.assign(new Error('gone'), { statusCode: 404 }) })
  app.get('/untouched/:id', async () => 'never called')
  app.get('/background', async () => { app.recovery.run(() => { throw new Error('task') }).catch(() => {}); return 'ok' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const target = `127.0.0.1:${(app.server.address() as { port: number }).port}`

  // the Prometheus server
  const dir = await mkdtemp(join(tmpdir(), 'fastify-recovery-prometheus-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${join(root, 'prometheus', 'alerts.yml')}`,
    'scrape_configs:',
    '  - job_name: api',
    '    static_configs:',
    `      - targets: ['${target}']`
  ].join('\n'))
  const prometheusPort = await freePort()
  const base = `http://127.0.0.1:${prometheusPort}`
  const prometheus = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${prometheusPort}`,
    '--log.level=warn'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let prometheusLog = ''
  prometheus.stderr.on('data', (chunk) => { prometheusLog += chunk })
  t.teardown(() => { prometheus.kill('SIGKILL') })

  const query = async (expr: string): Promise<Sample[]> => {
    const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`)
    const body = await response.json() as { status: string, data: { result: Sample[] }, error?: string }
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`)
    return body.data.result
  }
  const waitFor = async (what: string, check: () => Promise<boolean>, seconds = 30): Promise<void> => {
    for (let i = 0; i < seconds * 4; i++) {
      try {
        if (await check()) return
      } catch {}
      await sleep(250)
    }
    throw new Error(`timed out waiting for ${what}\n${prometheusLog}`)
  }

  await waitFor('Prometheus to be ready', async () => (await fetch(`${base}/-/ready`)).ok)
  await waitFor('the first scrape', async () => (await query('up{job="api"}'))[0]?.value[1] === '1')

  // panics, a client error, a background task
  for (let i = 0; i < 7; i++) await app.inject('/boom')
  for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: '/orders' })
  for (let i = 0; i < 4; i++) await app.inject('/missing')
  await app.inject('/background')

  const sumOf = async (selector: string): Promise<number> => Number((await query(`sum(fastify_panics_total{${selector}})`))[0]?.value[1])
  await waitFor('the panics to be scraped', async () => await sumOf('job="api"') === 11)
  t.equal(await sumOf('route="/boom"'), 7, 'sum(fastify_panics_total{route="/boom"}) is the number sent')
  t.equal(await sumOf('route="/orders", method="POST"'), 3)
  t.equal(await sumOf('source="background"'), 1)
  t.equal(await sumOf('route="/missing"'), 0, 'client errors are not counted')

  const untouched = await query('fastify_panics_total{route="/untouched/:id"}')
  t.same(untouched.map((sample) => [sample.metric.method, sample.metric.source, sample.value[1]]).sort(),
    [['GET', 'request', '0']], 'untouched routes are scraped as zero series')

  // promtool has nothing to say about the exposition
  const exposition = await (await fetch(`http://${target}/metrics`)).text()
  const lint = spawn('promtool', ['check', 'metrics'])
  let lintOutput = ''
  lint.stdout.on('data', (chunk) => { lintOutput += chunk })
  lint.stderr.on('data', (chunk) => { lintOutput += chunk })
  lint.stdin.end(exposition)
  const [lintCode] = await once(lint, 'exit')
  t.equal(lintCode, 0)
  t.notMatch(lintOutput, 'fastify_panics_total', 'promtool check metrics reports nothing about the metric')

  // the alert rules, evaluated by Prometheus
  await waitFor('FastifyPanic to fire', async () => {
    const { data } = await (await fetch(`${base}/api/v1/alerts`)).json() as { data: { alerts: Array<{ labels: Record<string, string>, state: string }> } }
    return data.alerts.some((alert) => alert.labels.alertname === 'FastifyPanic' && alert.labels.job === 'api' && alert.state === 'firing')
  })
  const { data: rules } = await (await fetch(`${base}/api/v1/rules`)).json() as { data: { groups: Array<{ rules: Array<{ name: string, health: string, lastError?: string }> }> } }
  for (const rule of rules.groups.flatMap((group) => group.rules)) {
    t.equal(rule.health, 'ok', `${rule.name} evaluates without error ${rule.lastError ?? ''}`)
  }

  // every expression of the dashboard, with Grafana's variables filled in, through promtool
  const dashboard = JSON.parse(await readFile(join(root, 'prometheus', 'grafana-dashboard.json'), 'utf8'))
  const fill = (expr: string): string => expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m').replaceAll('$job', '.*')
  let byRoute: Sample[] = []
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      const { stdout } = await run('promtool', ['query', 'instant', base, fill(expr)])
      t.pass(`${panel.title}: promtool query instant evaluates it`)
      if (panel.title === 'Panic rate by route') byRoute = await query(fill(expr))
      t.type(stdout, 'string')
    }
  }
  t.ok(byRoute.some((sample) => sample.metric.route === '/boom' && Number(sample.value[1]) > 0), 'the rate by route shows /boom')

  // and every PromQL example of the docs (docs/reference.md's, marked to be run here)
  const reference = await readFile(join(root, 'docs', 'reference.md'), 'utf8')
  const examples = [...reference.matchAll(/<!-- run: PromQL[^>]*-->\n```promql\n([\s\S]*?)```/g)]
    .flatMap(([, block]) => block.split(/\n\s*\n/))
    .map((example) => example.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n').trim())
    .filter((example) => example !== '')
  t.ok(examples.length >= 4, `${examples.length} examples`)
  for (const example of examples) {
    await t.resolves(run('promtool', ['query', 'instant', base, example]), `docs: ${example.split('\n')[0]}`)
  }
})
