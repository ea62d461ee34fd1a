import { channel } from 'node:diagnostics_channel'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { PanicInfo } from '../types/index'

// Contract §11: every recorded panic, whatever its source, is published once on
// `fastify-recovery.panic`, for error trackers to subscribe to instead of replacing the error
// handler. Nothing is built while nobody subscribes. A subscriber that throws does not stop the
// recording: Node catches it and raises it again as an uncaught exception on the next tick.

export const PANIC_CHANNEL = 'fastify-recovery.panic'

const panics = channel(PANIC_CHANNEL)

export function publishPanic (info: PanicInfo, request: FastifyRequest | undefined, reply: FastifyReply | undefined): void {
  if (panics.hasSubscribers) panics.publish({ info, request, reply })
}
