import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRecoveryOptions } from './types/index'
import { createRun } from './lib/background'
import { buildErrorHandler } from './lib/error-handler'
import { FST_RECOVERY_ALREADY_REGISTERED } from './lib/errors'
import { panicCounter, zeroSeries } from './lib/metrics'
import { resolveOptions } from './lib/options'
import { createRecorder } from './lib/record'
import { StackBudget } from './lib/stack-budget'

async function fastifyRecovery (fastify: FastifyInstance, options: FastifyRecoveryOptions): Promise<void> {
  // once per scope chain: the error handler chain would otherwise hold the plugin twice
  if (fastify.hasDecorator('recovery')) throw new FST_RECOVERY_ALREADY_REGISTERED()
  const settings = resolveOptions(options, fastify.log)
  const { metrics, stackDedupe } = settings

  const counter = metrics === false ? undefined : panicCounter(metrics.registry, metrics.name)
  const recorder = createRecorder({
    logLevel: settings.logLevel,
    stackBudget: stackDedupe === false ? undefined : new StackBudget(stackDedupe.max, stackDedupe.windowMs),
    counter
  })

  // Routes capture the error handler of their scope when they are registered: this covers the
  // routes registered after the plugin, in this scope and in every child scope.
  fastify.setErrorHandler(buildErrorHandler({
    settings,
    recorder,
    requestLoggingDisabled: fastify.initialConfig.disableRequestLogging
  }))
  fastify.decorate('recovery', { run: createRun(recorder, fastify.log) })

  if (metrics === false || counter === undefined) return
  const routes = new Map<string, readonly [string, string]>()
  fastify.addHook('onRoute', ({ method, url }) => {
    for (const verb of [method].flat()) routes.set(`${verb} ${url}`, [verb, url])
  })
  fastify.addHook('onReady', async () => {
    zeroSeries(counter, routes.values())
    routes.clear()
  })
  if (metrics.endpoint !== false) {
    const { registry } = metrics
    fastify.get(metrics.endpoint, async (_request, reply) => {
      reply.type(registry.contentType)
      return registry.metrics()
    })
  }
}

const plugin = fp(fastifyRecovery, { fastify: '5.x', name: 'fastify-recovery' })

module.exports = plugin
module.exports.default = plugin
module.exports.fastifyRecovery = plugin
