import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { types } from 'node:util'
import type { PanicContext, PanicInfo, PanicSource } from '../types/index'
import { hasPanicSubscribers, hasRecordSubscribers, publishPanic, publishRecord } from './channel'
import type { Copier, Normalized } from './copier'
import { Fingerprints } from './fingerprint'
import { markHandled } from './foreign-promise'
import { HANDLER_FAILED_MESSAGE, isLevelEnabled, panicFieldsOf, PANIC_MESSAGE, RECOVERY_FAILED_MESSAGE, SAMPLED_MESSAGE, writeLine, type LineExtras } from './log'
import type { PanicCounter } from './metrics'
import { enterRecord, leaveRecord, rankNow } from './reentrancy'
import { latencyOf, methodOf, requestIdOf, routeOf } from './request'
import type { StackBudget } from './stack-budget'

// What is recorded of a failure, whatever its way in: `read` is the plugin's own reading of it —
// normalised, its request's id, method and route, its fingerprint — and runs no code of the
// application, so the reply can be decided from it (lib/recover.ts) before anything else runs.
// `record` then writes it down and hands it to the application's code: the `context` fields, its one
// line, its one count, the trace, the diagnostics channel. Each of those is isolated: one that fails
// never stops the others. What the application's code is given is a copy of the plugin's PanicInfo,
// so nothing it changes reaches the line, the count or the reply; what it records itself is a nested
// record (lib/reentrancy.ts). One failure, one record (contract §10): an object recorded once is
// never recorded again, whichever way it comes back.

/** A failure as a way in sees it. */
export interface Incident {
  value: unknown
  source: PanicSource
  request?: FastifyRequest
  reply?: FastifyReply
  /** The status the client gets or got; absent where there is no response. */
  statusCode?: number
  task?: string
  /** Overrides the `logLevel` option (uncaught exceptions log at `fatal`). */
  level?: string
  /** The scope whose `app.recovery` recorded it (the test kit tells child scopes apart); by default the plugin's. */
  scope?: object
  /** Set once the panic is counted, so that the last resort counts exactly the panics that were not. */
  counted?: boolean
  /** The least rank of its record: a background task started inside a record stays nested in it. */
  rank?: number
  /** What the application's error handler failed with while handling this panic: written on a second line. */
  handlerFailure?: { failure: unknown }
}

/** The plugin's own reading of one failure. Never handed to the application: it gets copies of `info`. */
export interface Panic {
  /** What the line is written from, and the reply decided from. */
  readonly info: PanicInfo
  readonly normalized: Normalized
  readonly incident: Incident
  /** How deep in other records this one was started (lib/reentrancy.ts): 0 is a record of its own. */
  readonly rank: number
}

/** What a panic's fields are, to log-storm sampling: a fingerprint's panics share them. */
export type SampledPanic = Pick<PanicInfo, 'source' | 'method' | 'route' | 'fingerprint'>

/** Log-storm sampling (the `sampling` option, lib/log-sampling.ts): which lines are written. */
export interface LineSampler {
  /** `undefined`: the line is skipped; `null`: written as usual; a number: written, carrying `sampled.skipped`. */
  take (panic: SampledPanic): number | null | undefined
  /** What fingerprints no longer tracked still carried: written as `panics sampled` lines, then emptied. */
  readonly leftOvers: Array<{ panic: SampledPanic, skipped: number }>
  /** Leaves what every tracked fingerprint still carries in `leftOvers`. */
  flush (): void
}

/** Marks the trace of a request that failed (lib/span.ts, when OpenTelemetry is installed). */
export type SpanMarker = (request: FastifyRequest, errorType: string | undefined) => void

export interface RecorderParts {
  logLevel: string
  stackBudget: StackBudget | undefined
  sampler: LineSampler | undefined
  counter: PanicCounter | undefined
  copier: Copier
  /** The instance's logger: for panics without a request, and when a request's logger cannot be used. */
  log: FastifyBaseLogger
  /** The scope that registered the plugin. */
  scope: object
  /** The `context` option. */
  context: PanicContext | undefined
  markSpan: SpanMarker | undefined
}

// a task name is the application's, but a line is bounded whatever it is given
const TASK_BYTES = 256
// contract §12: the context fields, bounded and redacted like `err`
const CONTEXT_BYTES = 4 * 1024

// One failure, one record: each object recorded carries its records (which recorder, what PanicInfo)
// in a private field of this class, added by a base class whose constructor returns the object itself.
// A private field is seen by no code but this class's — no key is added, no Proxy trap runs — and goes
// with the object: where a WeakMap entry per panic made V8's young-generation collector process an
// ephemeron table at every scavenge (3.6 µs per panic in a storm). A frozen or sealed object keeps its
// records in a WeakMap instead: the TC39 proposal "non-extensible applies to private" (V8's
// --js-nonextensible-applies-to-private, off by default on Node 26) makes adding the field throw there.
// (A Proxy is extensible for a private field whatever its target: asking it would run its trap.)
const Itself = function (object: object) { return object } as unknown as new (object: object) => object

type RecordList = Array<{ recorder: Recorder, info: PanicInfo }>

class Records extends Itself {
  readonly #records: RecordList = []
  static readonly #aside = new WeakMap<object, RecordList>()

  private constructor (object: object) {
    super(object)
  }

  static #listOf (object: object): RecordList | undefined {
    return #records in object ? (object as Records).#records : Records.#aside.get(object)
  }

  static of (object: object, recorder: Recorder): PanicInfo | undefined {
    const list = Records.#listOf(object)
    if (list === undefined) return undefined
    for (const record of list) if (record.recorder === recorder) return record.info
    return undefined
  }

  static add (object: object, recorder: Recorder, info: PanicInfo): void {
    let list = Records.#listOf(object)
    if (list === undefined) {
      if (types.isProxy(object) || Object.isExtensible(object)) {
        list = (new Records(object) as Records).#records
      } else {
        list = []
        Records.#aside.set(object, list)
      }
    }
    list.push({ recorder, info })
  }
}

export class Recorder {
  readonly #parts: RecorderParts
  readonly #fingerprints = new Fingerprints()

  constructor (parts: RecorderParts) {
    this.#parts = parts
  }

  /** The plugin's reading of a failure; runs no code of the application. Throws only on a bug of the plugin's own. */
  read (incident: Incident): Panic {
    const { value, source, request, reply, task } = incident
    const { copier } = this.#parts
    const normalized = copier.normalize(value)
    const method = methodOf(request)
    const route = routeOf(request)
    const info: PanicInfo = {
      error: normalized.error,
      value,
      source,
      requestId: request === undefined ? undefined : requestIdOf(request),
      method,
      route,
      latencyMs: latencyOf(reply),
      fingerprint: this.#fingerprints.of(source, method, route, normalized.type, normalized.message),
      // often made from the request (its url): redacted like any string of the line
      task: typeof task === 'string' ? copier.copyWithin(task, TASK_BYTES) as string : undefined
    }
    return { info, normalized, incident, rank: Math.max(rankNow(), incident.rank ?? 0) }
  }

  /** The PanicInfo of `value`'s first record, when it is an object recorded already (the plugin's own: copy it for the application). */
  recordOf (value: unknown): PanicInfo | undefined {
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined
    return Records.of(value, this)
  }

  /**
   * Context, line, count, trace, channel, each on its own: one that fails stops none of the others.
   * Returns the panic's PanicInfo, the plugin's own (the application is given copies: `copyOfInfo`).
   */
  record (panic: Panic): PanicInfo {
    const { info, incident, rank } = panic
    const { request, reply, value } = incident
    const { context, markSpan } = this.#parts
    // before any code of the application runs: what it reports of this value is this record
    if (value !== null && (typeof value === 'object' || typeof value === 'function')) Records.add(value, this, info)
    const outer = enterRecord(rank)
    try {
      if (rank === 0 && context !== undefined && request !== undefined) info.context = this.#contextOf(context, request, copyOfInfo(info))
      // a logger that fails keeps it to itself (lib/log.ts, writeLine)
      if (rank < 2) this.#writePanicLine(panic)
      try {
        this.#count(incident, info)
      } catch (failure) {
        this.#integrationFailed(panic, failure)
      }
      // a request that failed: its trace says so (a request that reported and went on did not fail)
      // (a thrown Error is normalised to itself; anything else to an Error that describes it)
      if (markSpan !== undefined && request !== undefined && (info.source === 'request' || info.source === 'response')) {
        try {
          markSpan(request, info.error === info.value ? panic.normalized.type : undefined)
        } catch (failure) {
          this.#integrationFailed(panic, failure)
        }
      }
      // a subscriber that throws is Node's to report (diagnostics_channel catches it)
      if (rank === 0 && hasPanicSubscribers()) publishPanic({ info: copyOfInfo(info), request, reply })
      if (hasRecordSubscribers()) publishRecord({ info: copyOfInfo(info), request, scope: incident.scope ?? this.#parts.scope })
    } finally {
      leaveRecord(outer)
    }
    return info
  }

  /** The second line of a panic whose custom handler, channel subscriber or application error handler failed. */
  handlerFailed (incident: Incident, info: PanicInfo, failure: unknown): void {
    this.#writeFailureLine(incident, info, failure, HANDLER_FAILED_MESSAGE, this.#parts.logLevel)
  }

  /** The plugin's own code failed on `incident`: a `recovery failed` line, and the count if it was not made. Never throws. */
  recoveryFailed (incident: Incident, failure: unknown): void {
    const labels = { source: incident.source, method: '', route: '' }
    try {
      labels.method = methodOf(incident.request)
      labels.route = routeOf(incident.request)
    } catch {
      // a request that cannot even be read: counted without its labels
    }
    try {
      if (incident.counted !== true) this.#count(incident, labels)
    } catch {
      // a registry that throws: the line below still says what happened
    }
    this.#writeFailureLine(incident, labels, failure, RECOVERY_FAILED_MESSAGE, 'error')
  }

  /** The instance closes: what log-storm sampling still carries is written. */
  close (): void {
    const { sampler } = this.#parts
    if (sampler === undefined) return
    sampler.flush()
    this.#writeLeftOvers(sampler)
  }

  // an integration that failed (a tracer, a registry, a logger's hook): on record, and no other stopped
  #integrationFailed (panic: Panic, failure: unknown): void {
    this.#writeFailureLine(panic.incident, panic.info, failure, RECOVERY_FAILED_MESSAGE, 'error')
  }

  #writePanicLine ({ info, normalized, incident }: Panic): void {
    const { sampler, stackBudget, copier } = this.#parts
    const level = incident.level ?? this.#parts.logLevel
    const log = this.#logOf(incident)
    if (!isLevelEnabled(log, level)) return
    let sampled: number | null | undefined = null
    if (sampler !== undefined) {
      sampled = sampler.take(info)
      this.#writeLeftOvers(sampler)
    }
    if (sampled === undefined) return
    // the budget is spent only by lines that are written
    const withStack = stackBudget === undefined || stackBudget.take(info.fingerprint)
    const fields = panicFieldsOf(info, { statusCode: incident.statusCode, stackSuppressed: !withStack, skipped: sampled ?? undefined })
    writeLine([log, this.#parts.log], level, (bytes) => copier.lineError(normalized, withStack, bytes), fields, PANIC_MESSAGE)
  }

  // what sampling carried for a fingerprint it stopped tracking: one line, no err (nothing of those
  // panics is kept), so that lines plus what they carry still equal the panics
  #writeLeftOvers (from: LineSampler): void {
    while (from.leftOvers.length > 0) {
      const { panic, skipped } = from.leftOvers.shift() as { panic: SampledPanic, skipped: number }
      writeLine([this.#parts.log], this.#parts.logLevel, undefined, panicFieldsOf(panic, { skipped }), SAMPLED_MESSAGE)
    }
  }

  #writeFailureLine (incident: Incident, info: Partial<PanicInfo>, failure: unknown, message: string, level: string): void {
    const log = this.#logOf(incident)
    if (!isLevelEnabled(log, level)) return
    const { copier } = this.#parts
    const facts: LineExtras = { statusCode: incident.reply === undefined ? undefined : incident.statusCode ?? 500 }
    // the copy never throws, and writeLine keeps a failing logger to itself
    writeLine([log, this.#parts.log], level, (bytes) => copier.lineError(copier.normalize(failure), true, bytes), panicFieldsOf(info, facts), message)
  }

  // a panic of a request is written through its logger, so it carries the reqId binding; a request
  // whose logger cannot even be read has its lines written through the instance's
  #logOf ({ request }: Incident): FastifyBaseLogger {
    if (request === undefined) return this.#parts.log
    try {
      return request.log ?? this.#parts.log
    } catch {
      return this.#parts.log
    }
  }

  // the application's function: if it throws or answers something that is not an object, the
  // panic goes on without its fields
  #contextOf (context: PanicContext, request: FastifyRequest, info: PanicInfo): Record<string, unknown> | undefined {
    let fields: unknown
    try {
      fields = context(request, info)
    } catch {
      return undefined
    }
    // a promise is something else; left alone, its rejection would end the process
    if (types.isPromise(fields)) {
      markHandled(fields)
      return undefined
    }
    const copy = this.#parts.copier.copyWithin(fields, CONTEXT_BYTES)
    return copy !== null && typeof copy === 'object' && !Array.isArray(copy) ? copy as Record<string, unknown> : undefined
  }

  #count (incident: Incident, labels: Pick<PanicInfo, 'source' | 'method' | 'route'>): void {
    this.#parts.counter?.inc(labels)
    incident.counted = true
  }
}

/** What the application's code is given: its own copy, so that what it changes stays its own. */
export function copyOfInfo (info: PanicInfo): PanicInfo {
  const copy = { ...info }
  if (info.context !== undefined) copy.context = structuredClone(info.context)
  return copy
}
