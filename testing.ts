import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import type { CapturedPanics } from './types/testing'
import type { PanicInfo } from './types/index'
import { CLOSE_CHANNEL, RECORD_CHANNEL, type RecordMessage } from './lib/channel'

// Contract §16, the test kit (`fastify-recovery/testing`): Rails' `assert_error_reported` for Fastify.
// `capturePanics(app)` collects, in order, every panic that app (and its child scopes) records from
// now on, whatever its source — nested records included (a report made inside the custom handler) —
// and nothing of any other instance. A capture stops by itself when its instance closes, so a
// forgotten `stop()` keeps no closed app alive. It throws nothing, needs no globals, and adds nothing
// to an app that does not call it; given no Fastify instance, it captures nothing.

export function capturePanics (app: FastifyInstance | undefined | null): CapturedPanics {
  const panics: PanicInfo[] = []
  if (app === null || (typeof app !== 'object' && typeof app !== 'function')) {
    return { panics, clear: () => {}, stop: () => {} }
  }
  const onRecord = (message: unknown): void => {
    const { info, request, scope } = message as RecordMessage
    if (isScopeOf(app, scope) || isScopeOf(app, request?.server)) panics.push({ ...info })
  }
  // the app, a scope above it or one below it closes: the instance is closing
  const onClose = (closed: unknown): void => {
    if (isScopeOf(app, closed) || isScopeOf(closed, app)) stop()
  }
  const stop = (): void => {
    unsubscribe(RECORD_CHANNEL, onRecord)
    unsubscribe(CLOSE_CHANNEL, onClose)
  }
  subscribe(RECORD_CHANNEL, onRecord)
  subscribe(CLOSE_CHANNEL, onClose)
  return {
    panics,
    clear: () => { panics.length = 0 },
    stop
  }
}

// a child scope is made from its parent's instance: the parent is on its prototype chain
function isScopeOf (scope: unknown, instance: unknown): boolean {
  if (scope === null || typeof scope !== 'object' || instance === null || typeof instance !== 'object') return false
  return instance === scope || Object.prototype.isPrototypeOf.call(scope, instance)
}
