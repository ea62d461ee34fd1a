import { Counter, type Registry } from 'prom-client'
import { FST_RECOVERY_METRIC_CONFLICT } from './errors'

// Contract §7: one counter, `fastify_panics_total{method, route, source}`, found or created in the
// registry so several Fastify instances (or registrations) in one process share it.

export const DEFAULT_METRIC_NAME = 'fastify_panics_total'
/** The `route` label of panics in the not-found handler. */
export const NOT_FOUND_ROUTE = '__not_found__'

const LABELS = ['method', 'route', 'source'] as const
const HELP = 'Panics recovered by fastify-recovery: failures that reached the client as a generic 500, or broke a response, a background task or the process'
// On a counter created here: the pending counts of every PanicCounter sharing it (global, so
// that two copies of this module share them too).
const kPending = Symbol.for('fastify-recovery.pending-counts')

type PromCounter = Counter<typeof LABELS[number]> & { [kPending]?: Set<PanicCounter> }

/**
 * Counts panics. prom-client's `inc` hashes its labels into a new string on every call; in a panic
 * storm that costs more than the rest of the count. Here a panic is three Map lookups on strings
 * V8 has already hashed (the method, the route template and the source are the same strings each
 * time), and the counts reach prom-client in its `collect()`, which runs before every read: a
 * scrape, `get()`, an aggregation. What Prometheus reads is exact.
 */
export class PanicCounter {
  readonly #counter: PromCounter
  readonly #pending = new Map<string, Map<string, Map<string, number>>>()

  constructor (registry: Registry, name: string) {
    this.#counter = promCounter(registry, name)
    const shared = this.#counter[kPending]
    if (shared !== undefined) shared.add(this)
  }

  inc (method: string, route: string, source: string): void {
    if (this.#counter[kPending] === undefined) {
      // a counter this module did not create: it has no collect() to flush into it
      this.#counter.inc({ method, route, source })
      return
    }
    let byRoute = this.#pending.get(method)
    if (byRoute === undefined) this.#pending.set(method, byRoute = new Map())
    let bySource = byRoute.get(route)
    if (bySource === undefined) byRoute.set(route, bySource = new Map())
    bySource.set(source, (bySource.get(source) ?? 0) + 1)
  }

  /** Creates the series `{method, route, source="request"}` at 0, so alerts see them before the first panic. */
  zero (method: string, route: string): void {
    this.#counter.inc({ method, route, source: 'request' }, 0)
  }

  /** Moves the pending counts into the prom-client counter. */
  flush (): void {
    for (const [method, byRoute] of this.#pending) {
      for (const [route, bySource] of byRoute) {
        for (const [source, count] of bySource) {
          if (count !== 0) this.#counter.inc({ method, route, source }, count)
          bySource.set(source, 0)
        }
      }
    }
  }

  /** Stops sharing the counter (the instance closed); its last counts are kept. */
  detach (): void {
    this.flush()
    this.#counter[kPending]?.delete(this)
  }
}

function promCounter (registry: Registry, name: string): PromCounter {
  const existing = registry.getSingleMetric(name) as (PromCounter & { type: string, labelNames: readonly string[] }) | undefined
  if (existing === undefined) {
    const pending = new Set<PanicCounter>()
    const counter: PromCounter = new Counter({
      name,
      help: HELP,
      labelNames: LABELS,
      registers: [registry],
      collect () {
        for (const source of pending) source.flush()
      }
    })
    counter[kPending] = pending
    return counter
  }
  const labels = [...existing.labelNames].sort().join(',')
  if (existing.type !== 'counter' || labels !== LABELS.join(',')) {
    throw new FST_RECOVERY_METRIC_CONFLICT(name, `${existing.type} with labels ${labels || 'none'}`)
  }
  return existing
}
