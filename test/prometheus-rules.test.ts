import { test } from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { requireProgram } from './helper'

// prometheus/alerts.yml is checked and its unit tests (alerts.test.yml) run with promtool;
// the Grafana dashboard is checked for what an import needs. Its PromQL is evaluated against a live
// Prometheus in prometheus-live.test.ts.

const run = promisify(execFile)
const dir = resolve(__dirname, '..', 'prometheus')
const install = 'apt-get install prometheus (promtool comes with it)'

test('promtool check rules: the alert rules are valid', async (t) => {
  if (!requireProgram(t, 'promtool', install)) return
  const { stdout } = await run('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir })
  t.match(stdout, 'SUCCESS: 5 rules found')
})

test('promtool test rules: the alerts fire, and do not fire, as their tests say', async (t) => {
  if (!requireProgram(t, 'promtool', install)) return
  const { stdout } = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir })
  t.match(stdout, 'SUCCESS')
})

test('the Grafana dashboard: importable, every panel on the chosen Prometheus, rate by route and by source', async (t) => {
  const dashboard = JSON.parse(readFileSync(resolve(dir, 'grafana-dashboard.json'), 'utf8'))
  t.match(dashboard, { title: String, uid: 'fastify-recovery-panics', schemaVersion: Number, panels: Array })
  const variables = dashboard.templating.list.map((variable: { name: string, type: string }) => [variable.name, variable.type])
  t.same(variables, [['datasource', 'datasource'], ['job', 'query']])
  const ids = new Set<number>()
  for (const panel of dashboard.panels) {
    t.notOk(ids.has(panel.id), `panel id ${panel.id} is unique`)
    ids.add(panel.id)
    t.same(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, panel.title) // eslint-disable-line no-template-curly-in-string
    t.match(panel.gridPos, { h: Number, w: Number, x: Number, y: Number })
    for (const target of panel.targets) {
      t.match(target.expr, /fastify_panics_total\{job=~"\$job"/, `${panel.title}: filtered by the job variable`)
    }
  }
  const titles = dashboard.panels.map((panel: { title: string }) => panel.title)
  t.ok(titles.includes('Panic rate by route'))
  t.ok(titles.includes('Panic rate by source'))
})
