import { createHash } from 'node:crypto'

// Contract §4: one failure repeated gives one fingerprint; another route or error type gives another.
// Built from the message's shape, never from the stack (reading `stack` makes V8 format it).

const SHAPE_CHARS = 200
// any word holding a digit: ids, counts, hex, uuid parts, timestamps
const VARIABLE_TOKEN = /\b\w*\d\w*\b/g

/** The message with its variable parts replaced, so `user 12 not found` and `user 7 not found` match. */
export function messageShape (message: string): string {
  return message.slice(0, SHAPE_CHARS).replace(VARIABLE_TOKEN, '#')
}

export function fingerprintOf (source: string, method: string, route: string, type: string, message: string): string {
  return createHash('sha1')
    .update(`${source}\n${method}\n${route}\n${type}\n${messageShape(message)}`)
    .digest('hex')
    .slice(0, 12)
}
