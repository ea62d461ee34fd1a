import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants, readdirSync, statSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { delimiter, join, resolve } from 'node:path'
import type { Test } from 'tap'
import { chromium, type Browser } from 'playwright-core'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Registry } from 'prom-client'
import type { FastifyRecoveryOptions } from '../types/index'
import { isIgnored } from '../lib/foreign-promise'

// The Fastify deprecations (FSTDEP023/024) and FSTWRN004 some tests provoke on purpose are not
// printed: Node's own printer of warnings is taken off (the tests that expect a warning listen for it).
for (const listener of process.listeners('warning')) {
  if (listener.name === 'onWarning') process.removeListener('warning', listener)
}

// index.ts ends with the CommonJS trio (module.exports = plugin); its public types are the
// hand-written ones in types/, so the tests see the plugin exactly as users do.

export const recovery: typeof import('../types/index') = require('../index')

/** The major version of the Fastify the tests run against (CI runs the suite on Fastify 5 and 6). */
export const FASTIFY_MAJOR = Number((require('fastify/package.json') as { version: string }).version.split('.')[0])

/**
 * Server options that set the LogController's `disableRequestLogging` / `requestIdLogLabel`, in every
 * form the Fastify under test takes: the `logController` option (Fastify 5.12 and 6), and on Fastify 5
 * also the top-level options it deprecates (Fastify 6 dropped them).
 */
export function logControllerForms (options: ConstructorParameters<typeof LogController>[0]): FastifyServerOptions[] {
  const forms: FastifyServerOptions[] = [{ logController: new LogController(options) }]
  if (FASTIFY_MAJOR === 5) forms.push(options as FastifyServerOptions)
  return forms
}

export interface LogLine {
  level: number
  msg: string
  reqId?: string
  err?: Record<string, unknown> & { type?: string, message?: string, stack?: string }
  panic?: Record<string, unknown> & { source?: string, fingerprint?: string, stackSuppressed?: boolean }
  [key: string]: unknown
}

export interface TestApp {
  app: FastifyInstance
  registry: Registry
  lines: LogLine[]
  /** The `panic recovered` lines so far. */
  panics: () => LogLine[]
  /** The counter's value for these labels (0 when the series does not exist). */
  count: (labels: { method?: string, route?: string, source?: string }) => Promise<number>
  /** The sum over every series of the counter. */
  total: () => Promise<number>
}

/**
 * A Fastify instance with the plugin registered, logging JSON lines into `lines` and counting into
 * its own registry. Routes are added by the test after this resolves (they must come after the plugin).
 */
export async function buildApp (
  options: FastifyRecoveryOptions = {},
  fastifyOptions: FastifyServerOptions = {},
  /** What the application does before it registers the plugin (an error handler of its own). */
  before?: (app: FastifyInstance) => void
): Promise<TestApp> {
  const lines: LogLine[] = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line)) } }
  const app = Fastify({ logger: { level: 'info', stream }, ...fastifyOptions })
  before?.(app)
  const registry = new Registry()
  const metrics = options.metrics === false ? false : { registry, ...options.metrics }
  await app.register(recovery, { ...options, metrics })
  return {
    app,
    registry,
    lines,
    panics: () => lines.filter((line) => line.msg === 'panic recovered'),
    count: (labels) => counterValue(registry, labels),
    total: () => counterValue(registry, {})
  }
}

export async function counterValue (registry: Registry, labels: Record<string, string>, name = 'fastify_panics_total'): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) return 0
  const { values } = await metric.get()
  return values
    .filter((value) => Object.entries(labels).every(([key, label]) => value.labels[key] === label))
    .reduce((sum, value) => sum + value.value, 0)
}

/** The body of a default panic reply for `requestId`. */
export function genericBody (requestId: string, message = 'Internal Server Error'): string {
  return JSON.stringify({ statusCode: 500, error: 'Internal Server Error', message, requestId })
}

export interface RawResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
  /** The status line and headers as they came (a header sent twice appears twice). */
  head: string
  /** Whether the server closed the connection within the wait. */
  closed: boolean
}

/**
 * Sends `chunks` over a fresh TCP connection (a number in between is a pause in ms) and reads for
 * `waitMs`: enough to see whether the server closes a connection it answered.
 */
export async function rawRequest (port: number, chunks: Array<string | number>, waitMs = 300): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1')
  let data = ''
  let closed = false
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { data += chunk })
  socket.on('error', () => {})
  const ended = new Promise<void>((resolve) => socket.on('close', () => { closed = true; resolve() }))
  await once(socket, 'connect')
  for (const chunk of chunks) {
    if (typeof chunk === 'number') await sleep(chunk)
    else if (!socket.destroyed) socket.write(chunk)
  }
  await Promise.race([ended, sleep(waitMs)])
  socket.destroy()
  const split = data.indexOf('\r\n\r\n')
  const [statusLine = '', ...headerLines] = data.slice(0, split === -1 ? data.length : split).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { statusCode: Number(statusLine.split(' ')[1]), headers, body: split === -1 ? '' : data.slice(split + 4), head: data.slice(0, split === -1 ? data.length : split), closed }
}

/** Starts `app` on a free port of the loopback interface; its port. */
export async function listenOnLoopback (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/** A port nothing listens on now (for programs that need to be told their port). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Whether `program` is installed. Under CI=true a missing program fails the test (CI installs it);
 * elsewhere the test is skipped with a message saying how to install it.
 */
export function requireProgram (t: Test, program: string, install: string): boolean {
  const found = process.env.PATH?.split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK)
      return true
    } catch {
      return false
    }
  }) ?? false
  if (found) return true
  if (process.env.CI === 'true') t.fail(`${program} is not installed; .ci/run installs it (${install})`)
  else t.plan(0, `skipped: ${program} is not installed (${install})`)
  return false
}

/**
 * Debian's Chromium, headless, driven by playwright-core (which downloads no browser of its own).
 * As root it needs --no-sandbox; the network flags keep it from calling out of this machine.
 */
export function launchChromium (): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
}

/**
 * Watches for rejections left for Node to report (by default, a crash) while a test runs; the
 * returned check asserts there were none, after the turn in which Node reports them. A rejection the
 * plugin's own listener swallows (it runs after this one) does not count.
 */
export function watchUnhandledRejections (t: Test): () => Promise<void> {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown, promise: Promise<unknown>): void => { if (!isIgnored(promise)) unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => process.removeListener('unhandledRejection', onUnhandled))
  return async () => {
    await new Promise((resolve) => setImmediate(resolve))
    t.same(unhandled, [], 'no rejection unhandled')
  }
}

/** A rejected promise whose `constructor` getter throws: `await` and `Promise.resolve` throw on it. */
export function hostileRejection (message: string, configurable = true): Promise<never> {
  return Object.defineProperty(Promise.reject(new Error(message)), 'constructor', { get () { throw new Error('constructor getter') }, configurable })
}

/** A promise class whose species throws: `then` on its instances throws. */
export class HostileSpecies extends Promise<never> {
  static override get [Symbol.species] (): never { throw new Error('species getter') }
}

/**
 * The built plugin (dist/index.js), for child processes: they run plain `node` (0.3 s each) rather
 * than the TypeScript sources through tap's loaders (3 s each). `npm test` builds before the suite;
 * a build older than the sources is refused with what to run, rather than tested.
 */
export const BUILT_PLUGIN = resolve(__dirname, '..', 'dist', 'index.js')

export function builtPlugin (): string {
  const root = resolve(__dirname, '..')
  const sources = ['index.ts', 'testing.ts', ...readdirSync(join(root, 'lib')).map((name) => join('lib', name))]
  const newest = Math.max(...sources.map((file) => statSync(join(root, file)).mtimeMs))
  let built = 0
  try {
    built = statSync(BUILT_PLUGIN).mtimeMs
  } catch {
    // not built
  }
  if (built < newest) throw new Error('dist/ is older than the sources: run `npm run build` (npm test does) before the tests that run child processes')
  return BUILT_PLUGIN
}

/**
 * Runs `script` in a plain `node -e` child, with `recovery` (the built plugin) and `Fastify` in scope.
 * `covered`: the sources, through the test's own loaders, so that the child reports its coverage —
 * for the few lines only a child can run (a crash of the whole process); ten times slower.
 */
export async function runScript (script: string, { covered = false } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const plugin = covered ? resolve(__dirname, '..', 'index.ts') : builtPlugin()
  return runNode([...(covered ? process.execArgv : []), '-e', `
    const Fastify = require('fastify')
    const recovery = require(${JSON.stringify(plugin)})
    ${script}
  `], resolve(__dirname, '..'))
}

/** Runs `node` with `args` to its exit: its exit code and what it printed. */
export async function runNode (args: string[], cwd?: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}
