import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRecoveryOptions } from './types/index'
import { createRun } from './lib/background'
import { buildErrorHandler } from './lib/error-handler'
import { FST_RECOVERY_ALREADY_REGISTERED } from './lib/errors'
import { PanicCounter } from './lib/metrics'
import { resolveOptions } from './lib/options'
import { ProcessNet } from './lib/process'
import { createRecorder } from './lib/record'
import { buildPanicReply } from './lib/reply'
import { StackBudget } from './lib/stack-budget'
import { buildStreamWatch } from './lib/stream-watch'
import { buildUncoveredRouteWarning } from './lib/uncovered-routes'

async function fastifyRecovery (fastify: FastifyInstance, options: FastifyRecoveryOptions): Promise<void> {
  // once per scope chain: the error handler chain would otherwise hold the plugin twice
  if (fastify.hasDecorator('recovery')) throw new FST_RECOVERY_ALREADY_REGISTERED()
  const settings = resolveOptions(options, fastify.log)
  const { metrics, stackDedupe } = settings

  const counter = metrics === false ? undefined : new PanicCounter(metrics.registry, metrics.name)
  const recorder = createRecorder({
    logLevel: settings.logLevel,
    stackBudget: stackDedupe === false ? undefined : new StackBudget(stackDedupe.max, stackDedupe.windowMs),
    counter
  })

  const panicReply = buildPanicReply(settings)

  // Routes capture the error handler of their scope when they are registered: this covers the
  // routes registered after the plugin, in this scope and in every child scope.
  fastify.setErrorHandler(buildErrorHandler({
    handler: settings.handler,
    handlerTimeout: settings.handlerTimeout,
    panicReply,
    recorder,
    requestLoggingDisabled: fastify.initialConfig.disableRequestLogging
  }))
  // a stream failing after the headers went out never reaches the error handler
  fastify.addHook('onSend', buildStreamWatch(recorder.brokenResponse))
  fastify.addHook('onError', buildUncoveredRouteWarning())

  // opt-in: only then does a request run inside an AsyncLocalStorage context
  let net: ProcessNet | undefined
  if (settings.process !== false) {
    const processNet = new ProcessNet({ fastify, settings: settings.process, recorder, panicReply })
    fastify.addHook('onRequest', processNet.enter)
    fastify.addHook('onReady', async () => processNet.attach())
    fastify.addHook('onClose', async () => processNet.detach())
    net = processNet
  }
  fastify.decorate('recovery', { run: createRun(recorder, fastify.log, () => net?.currentRequest()) })

  if (metrics !== false && counter !== undefined) {
    // every route registered from now on gets its zero series when the server is ready (onRoute
    // sees the routes added after the plugin has loaded: `await app.register(...)` first)
    const routes = new Map<string, readonly [string, string]>()
    fastify.addHook('onRoute', ({ method, url }) => {
      for (const verb of [method].flat()) routes.set(`${verb} ${url}`, [verb, url])
    })
    fastify.addHook('onReady', async () => {
      for (const [method, url] of routes.values()) counter.zero(method, url)
      routes.clear()
    })
    fastify.addHook('onClose', async () => counter.detach())

    const { endpoint, registry } = metrics
    if (endpoint !== false) {
      fastify.get(endpoint, async (_request, reply) => {
        reply.type(registry.contentType)
        return registry.metrics()
      })
    }
  }
}

const plugin = fp(fastifyRecovery, { fastify: '5.x', name: 'fastify-recovery' })

module.exports = plugin
module.exports.default = plugin
module.exports.fastifyRecovery = plugin
