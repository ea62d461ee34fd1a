import { validateHeaderName, validateHeaderValue } from 'node:http'

// Which headers a reply of the plugin may carry: one place for the rules of RFC 9110 and 9113.

/** Headers that describe a body: a panic reply replaces the body, so these go (contract §3). */
export const BODY_HEADERS: readonly string[] = ['content-type', 'content-length', 'content-disposition', 'content-encoding',
  'content-language', 'content-location', 'content-range', 'etag', 'last-modified', 'transfer-encoding']

/** RFC 9113 §8.2.2: connection-specific headers, never sent on HTTP/2. */
export const CONNECTION_HEADERS: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']

/** Contract §4: what a custom handler may not decide, the message's framing and the connection. */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive',
  'proxy-connection', 'upgrade', 'trailer', 'te'])

/** Whether `name` can be a header's name. Never throws. */
export function isHeaderName (name: unknown): name is string {
  try {
    validateHeaderName(name as string)
    return typeof name === 'string'
  } catch {
    return false
  }
}

/** Whether `name: value` can be written (what Node checks in writeHead). Never throws. */
export function isSendable (name: string, value: unknown): boolean {
  try {
    validateHeaderName(name)
    if (Array.isArray(value)) {
      for (const item of value) {
        if (typeof item !== 'string') return false
        validateHeaderValue(name, item)
      }
      return value.length > 0
    }
    if (typeof value !== 'string' && typeof value !== 'number') return false
    validateHeaderValue(name, String(value))
    return true
  } catch {
    return false
  }
}

export type HeaderValue = string | number | string[]

/** The headers of `headers` that a panic reply keeps: not describing the body, sendable, none connection-specific on HTTP/2. */
export function keptHeaders (headers: Record<string, unknown>, http2: boolean): Record<string, HeaderValue> {
  const kept: Record<string, HeaderValue> = Object.create(null)
  for (const [name, value] of Object.entries(headers)) {
    if (BODY_HEADERS.includes(name) || (http2 && CONNECTION_HEADERS.includes(name))) continue
    if (isSendable(name, value)) kept[name] = value as HeaderValue
  }
  return kept
}
