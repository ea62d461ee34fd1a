import type { FastifyInstance } from 'fastify'
import { realpathSync } from 'node:fs'
import { inspect, types } from 'node:util'
import { register as globalRegistry, type Registry } from 'prom-client'
import type { FastifyRecoveryOptions, MetricsOptions, ProcessOptions, SamplingOptions, StackDedupeOptions } from '../types/index'
import { truncate } from './budget'
import { FST_RECOVERY_INVALID_OPTION, FST_RECOVERY_UNKNOWN_OPTION } from './errors'
import { FRAMING_HEADERS, isHeaderName } from './headers'
import { Secrets } from './secrets'

// Options are defaulted and checked once, at registration: a bad one is a TypeError naming it.
// What the parts are built from is the public options (types/index.d.ts), every default filled in.

type Defaulted = 'message' | 'closeConnection' | 'requestIdHeader' | 'logLevel' | 'handlerTimeout' | 'redact' | 'development'

export type MetricsSettings = Required<MetricsOptions>
export type ProcessSettings = Required<ProcessOptions>

export type Settings = Required<Pick<FastifyRecoveryOptions, Defaulted>> & Pick<FastifyRecoveryOptions, 'handler' | 'context'> & {
  stackDedupe: Required<StackDedupeOptions> | false
  sampling: SamplingOptions | false
  metrics: MetricsSettings | false
  process: ProcessSettings | false
  /** With `development`: the application's root, the real path of the working directory at registration (the page reads no file outside it). */
  root: string
}

const DEFAULTS = {
  message: 'Internal Server Error',
  closeConnection: 'auto',
  // or Fastify's own `requestIdHeader`, when it names one: the id goes back in the header it came in
  requestIdHeader: 'x-request-id',
  logLevel: 'error',
  handlerTimeout: 1000,
  stackDedupe: { max: 10, windowMs: 60_000 },
  process: { unhandledRejection: 'log', uncaughtException: 'exit', shutdownTimeout: 10_000 },
  metricName: 'fastify_panics_total'
} as const

const KNOWN: ReadonlySet<string> = new Set(['message', 'closeConnection', 'requestIdHeader', 'logLevel', 'handler', 'handlerTimeout',
  'stackDedupe', 'sampling', 'metrics', 'process', 'redact', 'context', 'development'] satisfies Array<keyof FastifyRecoveryOptions>)
// Options others add to a registration, theirs and not the plugin's: Fastify's own (`prefix`,
// `logSerializers`), fastify-cli's (`skipOverride`, in the test helper it generates), and what
// @fastify/autoload reads from a plugin's file and passes on (`autoPrefix`, `autoConfig`, ...)
const OTHERS: ReadonlySet<string> = new Set(['prefix', 'logSerializers', 'skipOverride', 'autoPrefix', 'prefixOverride', 'autoConfig',
  'autoload', 'autoHooks', 'cascadeHooks', 'overwriteHooks', 'encapsulate'])
// the id header cannot be one that decides the message's framing, its caching or the connection
const REFUSED_ID_HEADERS: ReadonlySet<string> = new Set([...FRAMING_HEADERS, 'cache-control', 'content-type'])
// key names are compared case-insensitively; a list is for names, not a data set
const MAX_REDACT = 1000
const MAX_KEY = 128
// an option is described in its error as util.inspect shows it, credentials redacted (an option may hold one)
const CREDENTIALS = new Secrets()
const DESCRIPTION_CHARS = 256
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
// setTimeout's limit: a longer delay fires at once
const MAX_TIMEOUT = 2 ** 31 - 1

export function resolveOptions (opts: FastifyRecoveryOptions, fastify: FastifyInstance): Settings {
  if (typeof opts !== 'object' || opts === null) fail('options', 'an object', opts)
  for (const key of Object.keys(opts)) {
    if (!KNOWN.has(key) && !OTHERS.has(key)) throw new FST_RECOVERY_UNKNOWN_OPTION(key, [...KNOWN].join(', '))
  }
  const { log } = fastify
  const fastifyIdHeader = fastify.initialConfig.requestIdHeader
  const {
    message = DEFAULTS.message,
    closeConnection = DEFAULTS.closeConnection,
    requestIdHeader = typeof fastifyIdHeader === 'string' && isHeaderName(fastifyIdHeader) ? fastifyIdHeader : DEFAULTS.requestIdHeader,
    logLevel = DEFAULTS.logLevel,
    handler,
    handlerTimeout = DEFAULTS.handlerTimeout,
    stackDedupe = DEFAULTS.stackDedupe,
    sampling = false,
    metrics = {},
    process: processOption = false,
    redact = [],
    context,
    development = false
  } = opts

  if (typeof message !== 'string') fail('message', 'a string', message)
  if (closeConnection !== 'auto' && typeof closeConnection !== 'boolean') fail('closeConnection', "'auto', true or false", closeConnection)
  if (requestIdHeader !== false && !isHeaderName(requestIdHeader)) fail('requestIdHeader', 'a header name or false', requestIdHeader)
  if (requestIdHeader !== false && REFUSED_ID_HEADERS.has(requestIdHeader.toLowerCase())) {
    fail('requestIdHeader', `a header that decides neither the framing, the caching nor the connection (not ${[...REFUSED_ID_HEADERS].join(', ')})`, requestIdHeader)
  }
  if (!LOG_LEVELS.has(logLevel) || typeof (log as unknown as Record<string, unknown>)[logLevel] !== 'function') {
    fail('logLevel', `a level of the logger (${[...LOG_LEVELS].join(', ')})`, logLevel)
  }
  if (handler !== undefined && typeof handler !== 'function') fail('handler', 'a function', handler)
  // its fields are needed before the line is written: an async function's would come too late
  if (context !== undefined && (typeof context !== 'function' || types.isAsyncFunction(context))) {
    fail('context', 'a synchronous function of (request, info)', context)
  }
  if (typeof development !== 'boolean') fail('development', 'a boolean', development)
  // the developer page shows the failure: it must not reach production by accident
  if (development && process.env.NODE_ENV !== 'development') {
    fail('development', `false unless NODE_ENV is exactly "development" (it is ${describe(process.env.NODE_ENV)})`, development)
  }
  if (!isPositive(handlerTimeout, MAX_TIMEOUT)) fail('handlerTimeout', `a number of milliseconds in 1..${MAX_TIMEOUT}`, handlerTimeout)

  return {
    message,
    closeConnection,
    requestIdHeader: requestIdHeader === false ? false : requestIdHeader.toLowerCase(),
    logLevel: logLevel as Settings['logLevel'],
    handler,
    handlerTimeout,
    stackDedupe: resolveStackDedupe(stackDedupe),
    sampling: resolveSampling(sampling),
    metrics: resolveMetrics(metrics),
    process: resolveProcess(processOption),
    redact: resolveRedact(redact),
    context,
    development,
    root: development ? realpathSync.native(process.cwd()) : ''
  }
}

function resolveRedact (redact: unknown): string[] {
  const expected = `an array of at most ${MAX_REDACT} key names (non-empty strings of at most ${MAX_KEY} characters)`
  if (!Array.isArray(redact) || redact.length > MAX_REDACT) fail('redact', expected, redact)
  for (const name of redact) {
    if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_KEY) fail('redact', expected, name)
  }
  return redact
}

function resolveStackDedupe (stackDedupe: unknown): Settings['stackDedupe'] {
  if (stackDedupe === false) return false
  if (!isPlainObject(stackDedupe)) fail('stackDedupe', 'false or { max, windowMs }', stackDedupe)
  const { max = DEFAULTS.stackDedupe.max, windowMs = DEFAULTS.stackDedupe.windowMs } = stackDedupe
  if (!Number.isInteger(max) || !isPositive(max, Number.MAX_SAFE_INTEGER)) fail('stackDedupe.max', 'a positive integer', max)
  if (!isPositive(windowMs, Number.MAX_SAFE_INTEGER)) fail('stackDedupe.windowMs', 'a positive number of milliseconds', windowMs)
  return { max, windowMs }
}

function resolveSampling (sampling: unknown): Settings['sampling'] {
  if (sampling === false) return false
  if (!isPlainObject(sampling)) fail('sampling', 'false or { first, every, windowMs }', sampling)
  const { first, every, windowMs } = sampling
  for (const [name, value] of [['first', first], ['every', every], ['windowMs', windowMs]] as const) {
    if (!Number.isInteger(value) || !isPositive(value, Number.MAX_SAFE_INTEGER)) fail(`sampling.${name}`, `a positive integer${name === 'windowMs' ? ' of milliseconds' : ''}`, value)
  }
  return { first, every, windowMs } as SamplingOptions
}

function resolveMetrics (metrics: unknown): Settings['metrics'] {
  if (metrics === false) return false
  if (!isPlainObject(metrics)) fail('metrics', 'false or { name, registry, endpoint }', metrics)
  const { name = DEFAULTS.metricName, registry = globalRegistry, endpoint = false } = metrics
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) fail('metrics.name', 'a Prometheus metric name', name)
  if (!isRegistry(registry)) fail('metrics.registry', 'a prom-client Registry', registry)
  if (endpoint !== false && (typeof endpoint !== 'string' || !endpoint.startsWith('/'))) {
    fail('metrics.endpoint', "false or a path starting with '/'", endpoint)
  }
  return { name, registry, endpoint }
}

function resolveProcess (value: unknown): Settings['process'] {
  if (value === false) return false
  if (value === true) return { ...DEFAULTS.process }
  if (!isPlainObject(value)) fail('process', 'true, false or { unhandledRejection, uncaughtException, shutdownTimeout }', value)
  const {
    unhandledRejection = DEFAULTS.process.unhandledRejection,
    uncaughtException = DEFAULTS.process.uncaughtException,
    shutdownTimeout = DEFAULTS.process.shutdownTimeout
  } = value
  if (unhandledRejection !== 'log' && unhandledRejection !== 'exit') fail('process.unhandledRejection', "'log' or 'exit'", unhandledRejection)
  if (uncaughtException !== 'log' && uncaughtException !== 'exit') fail('process.uncaughtException', "'exit' or 'log'", uncaughtException)
  if (!isPositive(shutdownTimeout, MAX_TIMEOUT)) fail('process.shutdownTimeout', `a number of milliseconds in 1..${MAX_TIMEOUT}`, shutdownTimeout)
  return { unhandledRejection, uncaughtException, shutdownTimeout }
}

function fail (option: string, expected: string, value: unknown): never {
  throw new FST_RECOVERY_INVALID_OPTION(option, expected, describe(value))
}

function describe (value: unknown): string {
  const shown = typeof value === 'string'
    ? JSON.stringify(value.slice(0, DESCRIPTION_CHARS))
    : inspect(value, { depth: 1, breakLength: Infinity, maxArrayLength: 8, maxStringLength: DESCRIPTION_CHARS })
  return truncate(CREDENTIALS.redact(shown, DESCRIPTION_CHARS * 4), DESCRIPTION_CHARS * 2)
}

function isPositive (value: unknown, max: number): value is number {
  return typeof value === 'number' && value > 0 && value <= max
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// duck-typed: a registry from another copy of prom-client works as well
function isRegistry (value: unknown): value is Registry {
  const registry = value as Registry
  return typeof registry === 'object' && registry !== null &&
    typeof registry.getSingleMetric === 'function' &&
    typeof registry.registerMetric === 'function' &&
    typeof registry.metrics === 'function' &&
    typeof registry.contentType === 'string'
}
