import { Counter, type Registry } from 'prom-client'
import { FST_RECOVERY_METRIC_CONFLICT } from './errors'

// Contract §7: one counter, `fastify_panics_total{method, route, source}`, found or created in the
// registry so several Fastify instances (or registrations) in one process share it.

export const DEFAULT_METRIC_NAME = 'fastify_panics_total'
/** The `route` label of panics in the not-found handler. */
export const NOT_FOUND_ROUTE = '__not_found__'

const LABELS = ['method', 'route', 'source'] as const
const HELP = 'Panics recovered by fastify-recovery: failures that reached the client as a generic 500, or broke a response, a background task or the process'

export type PanicCounter = Counter<typeof LABELS[number]>

export function panicCounter (registry: Registry, name: string): PanicCounter {
  const existing = registry.getSingleMetric(name) as (PanicCounter & { type: string, labelNames: readonly string[] }) | undefined
  if (existing === undefined) {
    return new Counter({ name, help: HELP, labelNames: LABELS, registers: [registry] })
  }
  const labels = [...existing.labelNames].sort().join(',')
  if (existing.type !== 'counter' || labels !== LABELS.join(',')) {
    throw new FST_RECOVERY_METRIC_CONFLICT(name, `${existing.type} with labels ${labels || 'none'}`)
  }
  return existing
}

/** Creates the series `{method, route, source="request"}` at 0 for each route, so alerts see them before the first panic. */
export function zeroSeries (counter: PanicCounter, routes: Iterable<readonly [string, string]>): void {
  for (const [method, route] of routes) {
    counter.inc({ method, route, source: 'request' }, 0)
  }
}
