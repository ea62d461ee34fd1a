// What counts as a secret in a log line (contract §6). A key named like a credential has its value
// written as `[redacted]` at any depth; text (a message, a string inside the thrown value) has the
// same done to the credentials it carries in the shapes HTTP clients and frameworks put them in:
// `name=value` pairs (query strings, form bodies, cookies), JSON `"name": "value"` pairs, the
// password of a URL's `user:password@`, and the credentials of `Bearer …` and `Basic …`.

export const REDACTED = '[redacted]'

// at least these (compared without case, `-`, `_`, `.` or spaces), and any key ending with one of
// the suffixes (`dbPassword`, `x-auth-token`, `clientSecret`)
const SECRET_KEYS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api_key', 'apikey',
  'password', 'passwd', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'credentials',
  'private_key']
const SECRET_SUFFIXES = ['password', 'passwd', 'secret', 'token', 'apikey', 'authorization', 'cookie', 'privatekey', 'credentials']

/** `name` lower-cased without separators, as secret keys are compared. */
export function keyName (name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '')
}

/** The rules' key set: the contract's credential names plus `extra` (the `redact` option). */
export function secretKeys (extra: readonly string[] = []): ReadonlySet<string> {
  return new Set([...SECRET_KEYS, ...extra].map(keyName))
}

// a key name is judged by its last characters: a longer key is cut before it is normalised (twenty
// 2 MB keys cost 148–324 ms when normalised whole), and a credential suffix is at its end
const KEY_SCAN = 256

export function isSecretKey (key: string, secrets: ReadonlySet<string>): boolean {
  const name = keyName(key.length > KEY_SCAN ? key.slice(-KEY_SCAN) : key)
  if (secrets.has(name)) return true
  for (const suffix of SECRET_SUFFIXES) if (name.endsWith(suffix)) return true
  return false
}

// `?token=abc`, `&api_key=abc`, `; session_token=abc`, `password=abc` after a space
const PAIR = /(^|[?&;,\s])([^\s=?&;,#"'<>]{1,128})=([^\s&;,#"'<>]*)/g
// `"password": "abc"`
const JSON_PAIR = /"([^"\\]{1,128})"(\s*:\s*)"(?:[^"\\]|\\.)*"/g
// `//user:abc@`
const USERINFO = /(\/\/[^\s/?#@:]*:)[^\s/?#@]*@/g
// `Bearer abc…`, `Basic abc…=` (RFC 6750's and RFC 7617's credentials; 8 characters at least, so
// that prose such as "a basic test" keeps its words)
const SCHEME = /\b(bearer|basic)(\s+)[\w\-.~+/]{8,}=*/gi
const HAS_SCHEME = /\b(?:bearer|basic)\s/i

/**
 * `text` with the credentials it carries redacted, looked for in its first `limit` characters: the
 * caller keeps no more than that. A longer text is returned as it is when they hold none, else cut
 * there (a value cut at the limit may go on past it).
 */
export function redactText (text: string, secrets: ReadonlySet<string>, limit: number): string {
  const head = text.length > limit ? text.slice(0, limit) : text
  if (!head.includes('=') && !head.includes('"') && !head.includes('//') && !HAS_SCHEME.test(head)) return text
  const redacted = head
    .replace(PAIR, (pair, before: string, name: string) => isSecretKey(decoded(name), secrets) ? `${before}${name}=${REDACTED}` : pair)
    .replace(JSON_PAIR, (pair, name: string, colon: string) => isSecretKey(name, secrets) ? `"${name}"${colon}"${REDACTED}"` : pair)
    .replace(USERINFO, `$1${REDACTED}@`)
    .replace(SCHEME, `$1$2${REDACTED}`)
  if (redacted === head) return text
  return head === text ? redacted : `${redacted}…[truncated, ${text.length} chars]`
}

function decoded (name: string): string {
  if (!name.includes('%')) return name
  try {
    return decodeURIComponent(name)
  } catch {
    return name
  }
}
