import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import type { CapturedPanics } from './types/testing'
import type { PanicInfo, PanicMessage } from './types/index'
import { kRecordedBy, PANIC_CHANNEL } from './lib/channel'

// Contract §16, the test kit (`fastify-recovery/testing`): Rails' `assert_error_reported` for Fastify.
// `capturePanics(app)` collects, in order, every panic that app (and its child scopes) records from
// now on, whatever its source, through the diagnostics channel — and nothing of any other instance.
// It throws nothing, needs no globals, and adds nothing to an app that does not call it.

export function capturePanics (app: FastifyInstance): CapturedPanics {
  const panics: PanicInfo[] = []
  const listener = (message: unknown): void => {
    const { info, request } = message as PanicMessage
    const recordedBy = (message as { [kRecordedBy]?: object })[kRecordedBy]
    if (isScopeOf(app, recordedBy) || isScopeOf(app, request?.server)) panics.push({ ...info })
  }
  subscribe(PANIC_CHANNEL, listener)
  return {
    panics,
    clear: () => { panics.length = 0 },
    stop: () => { unsubscribe(PANIC_CHANNEL, listener) }
  }
}

// a child scope is made from its parent's instance: the parent is on its prototype chain
function isScopeOf (app: FastifyInstance, instance: object | undefined): boolean {
  return instance !== undefined && (instance === app || Object.prototype.isPrototypeOf.call(app, instance))
}
