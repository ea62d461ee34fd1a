import { channel } from 'node:diagnostics_channel'
import type { PanicMessage } from '../types/index'
import { asSubscribers } from './reentrancy'

// Contract §11: every recorded panic, whatever its source, is published once on
// `fastify-recovery.panic`, for error trackers to subscribe to instead of replacing the error
// handler. Nothing is built while nobody subscribes. A subscriber that throws does not stop the
// recording: Node catches it and raises it again as an uncaught exception on the next tick; what
// the subscribers start is marked as theirs (lib/reentrancy.ts), so nothing they do recurses.

export const PANIC_CHANNEL = 'fastify-recovery.panic'

/**
 * On each message, not enumerable: the Fastify instance whose plugin recorded the panic (the scope
 * that registered it), so that a subscriber such as the test kit can tell instances apart. Global,
 * so that another copy of this module reads it too.
 */
export const kRecordedBy = Symbol.for('fastify-recovery.recorded-by')

const panics = channel(PANIC_CHANNEL)

export function hasPanicSubscribers (): boolean {
  return panics.hasSubscribers
}

export function publishPanic (message: PanicMessage, recordedBy: object): void {
  Object.defineProperty(message, kRecordedBy, { value: recordedBy })
  asSubscribers(() => panics.publish(message))
}
