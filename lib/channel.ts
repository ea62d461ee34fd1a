import { channel } from 'node:diagnostics_channel'
import type { PanicMessage } from '../types/index'
import { asSubscribers } from './reentrancy'

// Contract §11: every recorded panic, whatever its source, is published once on
// `fastify-recovery.panic`, for error trackers to subscribe to instead of replacing the error
// handler. Nothing is built while nobody subscribes. A subscriber that throws does not stop the
// recording: Node catches it and raises it again as an uncaught exception on the next tick; what
// the subscribers start is marked as theirs (lib/reentrancy.ts), so nothing they do recurses.
//
// The test kit (contract §16) listens on two channels of its own: every record, nested ones
// included (a report made inside the custom handler or a subscriber is not published on the public
// channel, so that nothing recurses, but a test sees it), and the instances that close.

export const PANIC_CHANNEL = 'fastify-recovery.panic'
export const RECORD_CHANNEL = 'fastify-recovery.record'
export const CLOSE_CHANNEL = 'fastify-recovery.close'

/** What the test kit gets for every record: the scope it was recorded through (a child scope's `app.recovery`, or the plugin's). */
export interface RecordMessage {
  info: PanicMessage['info']
  request?: PanicMessage['request']
  scope: object
}

const panics = channel(PANIC_CHANNEL)
const records = channel(RECORD_CHANNEL)
const closes = channel(CLOSE_CHANNEL)

export function hasPanicSubscribers (): boolean {
  return panics.hasSubscribers
}

export function publishPanic (message: PanicMessage): void {
  asSubscribers(() => panics.publish(message))
}

export function hasRecordSubscribers (): boolean {
  return records.hasSubscribers
}

export function publishRecord (message: RecordMessage): void {
  records.publish(message)
}

/** The plugin's scope closes: the test kit stops the captures of that instance. */
export function publishClose (scope: object): void {
  if (closes.hasSubscribers) closes.publish(scope)
}
