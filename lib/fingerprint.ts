// Contract §4: one failure repeated gives one fingerprint; another route or error type gives another.
// Built from the message's shape, never from the stack (reading `stack` makes V8 format it).

const SHAPE_CHARS = 200
// any word holding a digit: ids, counts, hex, uuid parts, timestamps
const VARIABLE_TOKEN = /\b\w*\d\w*\b/g

/** The message with its variable parts replaced, so `user 12 not found` and `user 7 not found` match. */
export function messageShape (message: string): string {
  return message.slice(0, SHAPE_CHARS).replace(VARIABLE_TOKEN, '#')
}

/**
 * 12 hex characters: a 48-bit FNV-1a hash of the failure's identity. One per recorder: a storm is one
 * failure repeated, and the same strings as last time give the same fingerprint without shaping the
 * message or hashing again.
 */
export class Fingerprints {
  #last = { source: '', method: '', route: '', type: '', message: '', fingerprint: '' }

  of (source: string, method: string, route: string, type: string, message: string): string {
    const last = this.#last
    if (message === last.message && route === last.route && type === last.type && method === last.method && source === last.source) {
      return last.fingerprint
    }
    const fingerprint = hashOf(source, method, route, type, message)
    this.#last = { source, method, route, type, message, fingerprint }
    return fingerprint
  }
}

function hashOf (source: string, method: string, route: string, type: string, message: string): string {
  // FNV-1a in two 32-bit lanes with different offsets, over each part and a separator: cheap,
  // stable, and no native object per panic (a crypto Hash costs more in a panic storm than the rest)
  const lanes = [0x811c9dc5, 0x050c5d1f]
  hash(lanes, source)
  hash(lanes, method)
  hash(lanes, route)
  hash(lanes, type)
  hash(lanes, messageShape(message))
  return (lanes[0] >>> 0).toString(16).padStart(8, '0') + ((lanes[1] >>> 16) & 0xffff).toString(16).padStart(4, '0')
}

function hash (lanes: number[], text: string): void {
  let a = lanes[0]
  let b = lanes[1]
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    a = Math.imul(a ^ unit, 0x01000193)
    b = Math.imul(b ^ unit, 0x01000193)
  }
  // the separator: parts cannot run into each other ("ab"+"c" differs from "a"+"bc")
  lanes[0] = Math.imul(a ^ 0xffff, 0x01000193)
  lanes[1] = Math.imul(b ^ 0xffff, 0x01000193)
}
