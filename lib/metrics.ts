import type { FastifyInstance } from 'fastify'
import { Counter, type Registry } from 'prom-client'
import type { PanicInfo } from '../types/index'
import { FST_RECOVERY_METRIC_CONFLICT } from './errors'
import type { MetricsSettings } from './options'

// Contract §7: what is counted. One counter, `fastify_panics_total{method, route, source}`, found or
// created in the registry so several Fastify instances (or registrations) in one process share it.
// Its labels are fields of PanicInfo, named once here: a label added to LABEL_NAMES is counted from
// PanicInfo and checked against an existing counter, and every series written by hand (the zero
// series of routes) is a compile error until it has the new label.

export const LABEL_NAMES = ['method', 'route', 'source'] as const satisfies ReadonlyArray<keyof PanicInfo>
type LabelName = typeof LABEL_NAMES[number]
/** What a series is labelled with: every label, `''` for one that is not known (no request). */
export type PanicLabels = Record<LabelName, string>

const HELP = 'Panics recovered by fastify-recovery: failures that reached the client as a generic 500, or broke a response, a background task or the process'

export class PanicCounter {
  readonly #registry: Registry
  readonly #name: string
  #counter: Counter<LabelName>

  constructor (registry: Registry, name: string) {
    this.#registry = registry
    this.#name = name
    this.#counter = counterIn(registry, name)
  }

  /** One panic, labelled with its PanicInfo's fields. */
  inc (panic: Pick<PanicInfo, LabelName>): void {
    this.#counter.inc(labelsOf(panic))
  }

  /** The series of `labels` at 0, so alerts see a route before its first panic. */
  zero (labels: PanicLabels): void {
    this.#counter.inc({ ...labels }, 0)
  }

  /**
   * Puts the counter back into its registry if something cleared it after the plugin registered
   * (fastify-metrics' `clearRegisterOnInit`); its counts survive, a registry only lists metrics.
   */
  ensureRegistered (): void {
    const current = this.#registry.getSingleMetric(this.#name)
    if (current === this.#counter) return
    if (current === undefined) this.#registry.registerMetric(this.#counter)
    else this.#counter = counterIn(this.#registry, this.#name)
  }
}

// prom-client keeps the labels object it is given: a fresh one holding only the labels
function labelsOf (panic: Pick<PanicInfo, LabelName>): PanicLabels {
  const labels = {} as PanicLabels
  for (const name of LABEL_NAMES) labels[name] = panic[name] ?? ''
  return labels
}

function counterIn (registry: Registry, name: string): Counter<LabelName> {
  const existing = registry.getSingleMetric(name) as (Counter<LabelName> & { type: string, labelNames: readonly string[] }) | undefined
  if (existing === undefined) {
    return new Counter({ name, help: HELP, labelNames: LABEL_NAMES, registers: [registry] })
  }
  const labels = [...existing.labelNames].sort().join(',')
  if (existing.type !== 'counter' || labels !== [...LABEL_NAMES].sort().join(',')) {
    throw new FST_RECOVERY_METRIC_CONFLICT(name, LABEL_NAMES.join(', '), `${existing.type} with labels ${labels || 'none'}`)
  }
  return existing
}

/**
 * Wires the counter into Fastify: every route registered from now on gets its zero series when the
 * server is ready (onRoute sees the routes added after the plugin has loaded: `await
 * app.register(...)` first), and `endpoint` serves the registry.
 */
export function mountMetrics (fastify: FastifyInstance, { name, registry, endpoint }: MetricsSettings): PanicCounter {
  const counter = new PanicCounter(registry, name)
  const routes = new Map<string, PanicLabels>()
  fastify.addHook('onRoute', ({ method, url }) => {
    // the plugin's own endpoint is no route of the application's
    if (url === endpoint) return
    for (const verb of [method].flat()) routes.set(`${verb} ${url}`, { method: verb, route: url, source: 'request' })
  })
  fastify.addHook('onReady', async () => {
    counter.ensureRegistered()
    for (const labels of routes.values()) {
      // the HEAD route Fastify adds for each GET route has no zero series of its own (a panic in it is counted)
      if (labels.method === 'HEAD' && routes.has(`GET ${labels.route}`)) continue
      counter.zero(labels)
    }
    routes.clear()
  })
  if (endpoint !== false) {
    fastify.get(endpoint, async (_request, reply) => {
      reply.type(registry.contentType)
      return registry.metrics()
    })
  }
  return counter
}
