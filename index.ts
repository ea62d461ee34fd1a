import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRecoveryOptions, Recovery } from './types/index'
import { responseHookFailure, streamFailure } from './lib/after-response'
import { AppRecovery } from './lib/app-recovery'
import { publishClose } from './lib/channel'
import { Copier } from './lib/copier'
import { DevelopmentPage } from './lib/development-page'
import { joinErrorHandlers } from './lib/error-handler-chain'
import { ErrorHandling } from './lib/error-handler'
import { FST_RECOVERY_ALREADY_REGISTERED } from './lib/errors'
import { listenToLogController } from './lib/log-controller'
import { LogSampler } from './lib/log-sampling'
import { mountMetrics } from './lib/metrics'
import { resolveOptions } from './lib/options'
import { PanicReplies } from './lib/panic-reply'
import { ProcessNet } from './lib/process'
import { Recorder } from './lib/record'
import { Recoverer } from './lib/recover'
import { declareRequests } from './lib/request'
import { coverRouteHandlers } from './lib/route-handlers'
import { Secrets } from './lib/secrets'
import { declareSendState, isGuarded } from './lib/send'
import { markServerSpan } from './lib/span'
import { StackBudget } from './lib/stack-budget'
import { createUncoveredRouteWarning } from './lib/uncovered-routes'

async function fastifyRecovery (fastify: FastifyInstance, options: FastifyRecoveryOptions): Promise<void> {
  // once per scope chain: the error handler chain would otherwise hold the plugin twice
  if (fastify.hasDecorator('recovery')) throw new FST_RECOVERY_ALREADY_REGISTERED()
  const settings = resolveOptions(options, fastify)
  const { metrics, stackDedupe, sampling } = settings

  // what is written of a thrown value (the credential names, `redact` included), what is logged and
  // counted, what the client gets, and the one path every failure takes
  const secrets = new Secrets(settings.redact)
  const copier = new Copier(secrets)
  const recorder = new Recorder({
    logLevel: settings.logLevel,
    stackBudget: stackDedupe === false ? undefined : new StackBudget(stackDedupe.max, stackDedupe.windowMs),
    sampler: sampling === false ? undefined : new LogSampler(sampling),
    counter: metrics === false ? undefined : mountMetrics(fastify, metrics),
    copier,
    log: fastify.log,
    scope: fastify,
    context: settings.context,
    markSpan: markServerSpan
  })
  const replies = new PanicReplies(settings, settings.development ? new DevelopmentPage(settings.root, secrets) : undefined)
  const recoverer = new Recoverer({ recorder, replies, handler: settings.handler, handlerTimeout: settings.handlerTimeout, describe: (value) => copier.describe(value) })
  declareSendState(fastify)
  declareRequests(fastify)
  fastify.addHook('onClose', async () => {
    // what log-storm sampling still carries is written: nothing lost; the test kit's captures stop
    recorder.close()
    publishClose(fastify)
  })

  // Routes capture the error handler chain of their scope when they are registered: this covers the
  // routes registered after the plugin, in this scope and in every child scope, behind the
  // application's own error handlers (set before the plugin or after it), each of which runs inside
  // the plugin's cover.
  const fastifyReports = listenToLogController(fastify, {
    streamError: streamFailure(recoverer),
    responseFailed: responseHookFailure(recoverer),
    // the plugin's double-fault guard is the only other way Fastify's default handler runs here
    defaultErrorLog: (_error, request, reply) => { if (!isGuarded(reply)) warnUncoveredRoute(request) }
  })
  const warnUncoveredRoute = createUncoveredRouteWarning()
  fastify.addHook('onClose', async () => fastifyReports.stop())
  const errorHandling = new ErrorHandling({ recoverer, replies, fastifyErrorLine: fastifyReports.fastifyErrorLine })
  joinErrorHandlers(fastify, errorHandling.handle, (handler) => errorHandling.cover(handler))
  // failures after a reply was sent, and @fastify/websocket's route handlers, outside Fastify's error handling
  coverRouteHandlers(fastify, recoverer)

  // opt-in: only then does a request run inside an AsyncLocalStorage context
  let net: ProcessNet | undefined
  if (settings.process !== false) {
    const processNet = new ProcessNet({ fastify, settings: settings.process, recoverer })
    fastify.addHook('onRequest', processNet.enter)
    fastify.addHook('onReady', async () => processNet.attach())
    fastify.addHook('onClose', async () => processNet.detach())
    net = processNet
  }

  // `app.recovery` of each scope is its own, so that what it records says which scope recorded it
  const recoveries = new WeakMap<object, Recovery>()
  fastify.decorate('recovery', {
    getter (this: FastifyInstance): Recovery {
      let recovery = recoveries.get(this)
      if (recovery === undefined) {
        recovery = new AppRecovery(recoverer, this, () => net?.currentRequest())
        recoveries.set(this, recovery)
      }
      return recovery
    }
  })
}

const plugin = fp(fastifyRecovery, { fastify: '5.x || 6.x', name: 'fastify-recovery' })

module.exports = plugin
module.exports.default = plugin
module.exports.fastifyRecovery = plugin
