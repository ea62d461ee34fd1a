import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRecoveryOptions } from './types/index'
import { createRecovery } from './lib/app-recovery'
import { Copier } from './lib/copier'
import { buildErrorHandler } from './lib/error-handler'
import { installErrorHandler } from './lib/error-handler-chain'
import { FST_RECOVERY_ALREADY_REGISTERED } from './lib/errors'
import { createShield } from './lib/last-resort'
import { listenToLogController } from './lib/log-controller'
import { LogSampler } from './lib/log-sampling'
import { mountMetrics } from './lib/metrics'
import { resolveOptions } from './lib/options'
import { buildDefaultReply } from './lib/default-reply'
import { ProcessNet } from './lib/process'
import { createRecorder } from './lib/record'
import { Secrets } from './lib/secrets'
import { declareRequests } from './lib/request-facts'
import { declareGuard, isGuarded } from './lib/send'
import { StackBudget } from './lib/stack-budget'
import { buildStreamFailure } from './lib/stream-failure'
import { createUncoveredRouteWarning } from './lib/uncovered-routes'
import { coverWebsocketRoutes } from './lib/websocket-routes'

async function fastifyRecovery (fastify: FastifyInstance, options: FastifyRecoveryOptions): Promise<void> {
  // once per scope chain: the error handler chain would otherwise hold the plugin twice
  if (fastify.hasDecorator('recovery')) throw new FST_RECOVERY_ALREADY_REGISTERED()
  const settings = resolveOptions(options, fastify.log)
  const { metrics, stackDedupe, sampling } = settings

  // what is counted, what is logged, what the client gets, and the path every failure of the plugin's own ends in
  const counter = metrics === false ? undefined : mountMetrics(fastify, metrics)
  // how a thrown value is written: the credential names, `redact` included
  const copier = new Copier(new Secrets(settings.redact))
  const recorder = createRecorder({
    logLevel: settings.logLevel,
    stackBudget: stackDedupe === false ? undefined : new StackBudget(stackDedupe.max, stackDedupe.windowMs),
    sampler: sampling === false ? undefined : new LogSampler(sampling),
    counter,
    copier,
    log: fastify.log,
    scope: fastify,
    context: settings.context
  })
  // what log-storm sampling still carries is written when the instance closes: nothing lost
  fastify.addHook('onClose', async () => recorder.close())
  const defaultReply = buildDefaultReply(settings)
  const shield = createShield(recorder, defaultReply)
  declareGuard(fastify)

  // What reaches no error handler, as Fastify reports it: streams broken after their headers, and
  // errors of routes registered before the plugin. No hook runs on a successful request.
  const warnUncoveredRoute = createUncoveredRouteWarning()
  const fastifyReports = listenToLogController(fastify, {
    streamError: buildStreamFailure(recorder, shield),
    // the plugin's double-fault guard is the only other way Fastify's default handler runs here
    defaultErrorLog: (_error, request, reply) => { if (!isGuarded(reply)) warnUncoveredRoute(request) }
  })
  fastify.addHook('onClose', async () => fastifyReports.stop())

  // @fastify/websocket's route handlers fail outside Fastify's error handling: covered where they run
  coverWebsocketRoutes(fastify, recorder, shield)

  // Routes capture the error handler chain of their scope when they are registered: this covers the
  // routes registered after the plugin, in this scope and in every child scope, behind the
  // application's own error handlers (set before the plugin or after it).
  installErrorHandler(fastify, buildErrorHandler({
    handler: settings.handler,
    handlerTimeout: settings.handlerTimeout,
    defaultReply,
    recorder,
    shield,
    copier,
    fastifyErrorLine: fastifyReports.fastifyErrorLine
  }))

  // opt-in: only then does a request run inside an AsyncLocalStorage context
  let net: ProcessNet | undefined
  if (settings.process !== false) {
    const processNet = new ProcessNet({ fastify, settings: settings.process, recorder, shield, defaultReply })
    fastify.addHook('onRequest', processNet.enter)
    fastify.addHook('onReady', async () => processNet.attach())
    fastify.addHook('onClose', async () => processNet.detach())
    net = processNet
  }
  declareRequests(fastify)
  fastify.decorate('recovery', createRecovery(recorder, shield, () => net?.currentRequest()))
}

const plugin = fp(fastifyRecovery, { fastify: '5.x || 6.x', name: 'fastify-recovery' })

module.exports = plugin
module.exports.default = plugin
module.exports.fastifyRecovery = plugin
