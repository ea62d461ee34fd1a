import { Generations } from './generations'
import { LastTexts } from './last-texts'

// What counts as a secret in a log line (contract §6), and where it is in a text: the one place
// that answers both. A key named like a credential has its value written as `[redacted]` at any
// depth. Text — the message, every stack header, the cause chain, the strings of the thrown value,
// `panic.task`, `panic.context` — has the credentials it carries redacted whole, in the shapes real
// libraries and careless code put them in (the `RULES` below), looked at before it is cut to its
// budget. Prose keeps its words: a rule needs a credential's name in a credential's place, or a
// credential that names itself. Every rule runs in linear time (no pattern of them backtracks on
// its input), and only when its hint, derived from the rule, is in the text.
//
// A stack's frame lines (`    at fn (file:line:col)`) are most of its text and have a fixed shape:
// no rule that needs a credential's name can match inside one unless it holds one of the characters
// those rules need (`=`, a quote, `{`, `,`, `--`, a percent escape, an auth scheme's word) — then the
// whole text gets every rule. Otherwise the frames are looked at only for what a credential can be
// inside a frame: a URL's `user:password@`, and credentials that name themselves. The text before
// the first frame (the message, which may be anything) always gets every rule.

export const REDACTED = '[redacted]'

// at least these (compared without case, `-`, `_`, `.` or spaces), and any key ending with one of
// the suffixes (`dbPassword`, `x-auth-token`, `clientSecret`, `AWS_SECRET_ACCESS_KEY`)
const SECRET_KEYS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api_key', 'apikey',
  'password', 'passwd', 'pass', 'pwd', 'passphrase', 'secret', 'token', 'access_token', 'refresh_token', 'id_token',
  'client_secret', 'credentials', 'private_key', 'secret_key', 'secretAccessKey', 'aws_secret_access_key']
const SECRET_SUFFIXES = ['password', 'passwd', 'passphrase', 'secret', 'token', 'apikey', 'authorization', 'cookie',
  'privatekey', 'secretkey', 'secretaccesskey', 'credentials']
// the words a credential's name is made of: a text holding none of them names none (the custom names
// of the `redact` option add their longest run of letters)
const NAME_WORDS = ['pass', 'pwd', 'secret', 'token', 'auth', 'cookie', 'key', 'credential']

// a key name is judged by its last characters: a longer key is cut before it is normalised (twenty
// 2 MB keys cost 148–324 ms when normalised whole), and a credential suffix is at its end
const KEY_SCAN = 256
// how far past its budget a text is looked at: a credential the cut runs through is found whole
const OVERLAP = 4 * 1024
// the texts last redacted and what they became: a storm repeats its messages and stacks, and a
// text no longer than this is redacted once while it is among the last RECENT ones (two
// generations, lib/generations.ts: at most RECENT × 2 × RECENT_TEXT characters kept)
const RECENT = 32
const RECENT_TEXT = 8 * 1024
// a name in a credential's place: what key names look like
const NAME = String.raw`[A-Za-z_$][\w.$-]{0,127}`

/** `name` lower-cased without separators, as secret keys are compared. */
export function keyName (name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '')
}

/** The credential names of the contract and of the `redact` option, and how to find them in text. */
export class Secrets {
  readonly #keys: ReadonlySet<string>
  /** Whether a text may name a credential at all. */
  readonly #nameHint: RegExp
  readonly #recent = new Generations<string>(RECENT)
  // the texts redacted last and what they became: a storm's message and stack are the same texts
  // each time, found before the map would hash them again
  readonly #last = new LastTexts<string>(4)

  constructor (extra: readonly string[] = []) {
    this.#keys = new Set([...SECRET_KEYS, ...extra].map(keyName))
    const words = [...NAME_WORDS, ...extra.map((name) => longestWord(name) ?? keyName(name))]
    this.#nameHint = new RegExp([...new Set(words)].map(escapeRegExp).join('|'), 'i')
  }

  /** Whether the value of a key of this name is a credential. */
  isSecretKey (key: string): boolean {
    const name = keyName(key.length > KEY_SCAN ? key.slice(-KEY_SCAN) : key)
    if (this.#keys.has(name)) return true
    for (const suffix of SECRET_SUFFIXES) if (name.endsWith(suffix)) return true
    return false
  }

  /**
   * Whether a string names a credential where lists of names and values hold one: a header name in
   * `rawHeaders` or `[...headers]`, a flag in `spawnargs` (`--password`). The string that follows it is its value.
   */
  isSecretName (text: string): boolean {
    if (text.length === 0 || text.length > 128 || /\s/.test(text)) return false
    return this.isSecretKey(text.replace(/^-{1,2}/, ''))
  }

  /**
   * `text` with the credentials it carries redacted whole, looked for in its first `limit` characters
   * and as far again as a credential there may run (OVERLAP): the caller keeps no more than `limit`.
   * A longer text comes back cut there, marked; one without credentials comes back as it is.
   */
  redact (text: string, limit: number): string {
    // a text looked at whole is redacted the same under every limit
    const whole = text.length <= limit + OVERLAP
    if (whole && text.length <= RECENT_TEXT) {
      const last = this.#last.get(text)
      if (last !== undefined) return last
      const redacted = this.#recent.get(text) ?? this.#redact(text, text)
      // kept as the most recent
      this.#recent.renew(text, redacted)
      this.#last.set(text, redacted)
      return redacted
    }
    return this.#redact(text, whole ? text : text.slice(0, limit + OVERLAP))
  }

  #redact (text: string, window: string): string {
    let redacted = this.#apply(window)
    // percent-encoded, in a URL or a form body (`next=%2Freset%3Ftoken%3DC`): what the rules find
    // once it is decoded is redacted there, and the text is written decoded
    if (ENCODED.test(redacted)) {
      const decoded = percentDecoded(redacted)
      const again = decoded === redacted ? decoded : this.#apply(decoded)
      if (again !== decoded) redacted = again
    }
    if (redacted === window) return text
    return window === text ? redacted : `${redacted}…[truncated, ${text.length} chars]`
  }

  #apply (text: string): string {
    const frames = text.indexOf(FRAME)
    if (frames === -1 || NOT_PLAIN_FRAMES.test(text.slice(frames))) return this.#applyRules(text, RULES)
    const header = text.slice(0, frames)
    const rest = text.slice(frames)
    const redactedHeader = this.#applyRules(header, RULES)
    const redactedRest = this.#applyRules(rest, FRAME_RULES)
    return redactedHeader === header && redactedRest === rest ? text : redactedHeader + redactedRest
  }

  #applyRules (text: string, rules: readonly Rule[]): string {
    // each hint is looked for once, in the text as it came
    const named = rules === RULES && this.#nameHint.test(text)
    let redacted = text
    for (const rule of rules) {
      if (rule.hint === NAMED ? named : rule.hint.test(text)) redacted = rule.redact(redacted, this)
    }
    return redacted
  }
}

interface Rule {
  /** What the text must hold for the rule to find anything (NAMED: a credential's name). */
  hint: RegExp
  redact: (text: string, secrets: Secrets) => string
}

// the hint of the rules that look for a credential's name
const NAMED = /(?:)/

// A value as it follows a name: quoted (with its escapes, or up to the end of the text when the
// quote is never closed: the cut ran through it), or bare up to a separator.
const QUOTED = String.raw`"(?:[^"\\]|\\.)*(?:"|$)|'(?:[^'\\]|\\.)*(?:'|$)`

// a line may start with a YAML list's `- `, or a diff's `+ `/`- ` (assert's failures: `+   password: 'C',`)
const HEADER_LINE = new RegExp(String.raw`((?:^|\n)[ \t]*(?:[-+][ \t]+)?(?:[\w$.]{0,64}(?:Error|Exception)(?: \[[\w.-]{1,64}\])?:[ \t]+)?["']?(${NAME})["']?[ \t]*:)([ \t]*)([^\r\n]*)`, 'g')
const INSPECTED_NAME = new RegExp(String.raw`([{,][ \t]*|\n[ \t]*(?:[-+][ \t]+)?)(["'\x60]?)(${NAME})\2([ \t]*:[ \t]*)`, 'g')
const FLAG = new RegExp(String.raw`(^|[\s'"\[,])(--(${NAME}))(=|[ \t]+)(${QUOTED}|[^\s"']+)`, 'g')
// the name and `=` only: the value is found by hand, so that the value of a name that is no
// credential's is looked into too (`next=/reset?token=C`)
const PAIR_NAME = /(?<=^|[?&;,#\s"'([{|/=])([^\s=?&;,#"'<>()[\]{}|/]{1,128})[ \t]*=[ \t]*/g
const ENCODED = /%[0-9A-Fa-f]{2}/

const USERINFO: Rule = { hint: /\/\//, redact: (text) => redactUserinfo(text) }

const RULES: Rule[] = [
  // PEM private keys, whole (to the end of the text when the cut ran through the block)
  {
    hint: /-----BEGIN /,
    redact: (text) => text.replace(/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g, REDACTED)
  },
  // credentials that name themselves (the prefixes secret scanners know them by): JWTs; Stripe,
  // GitHub, GitLab, Slack, AWS access key ids, Google API keys, npm, OpenAI and Anthropic keys
  {
    hint: /eyJ|_live_|_test_|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|AKIA|ASIA|AIza|npm_|sk-|whsec_|hooks\.slack\.com/,
    redact: (text) => text.replace(SELF_NAMED, REDACTED)
  },
  // `//user:password@`: the password of a URL's userinfo
  USERINFO,
  // the credentials of an Authorization scheme: `Bearer …`, `Basic …` (8 characters or more, not a
  // plain word, so that "bearer authentication failed" keeps its words), `Token …` (Django REST's: 20 or more)
  {
    hint: /bearer|basic|token/i,
    redact: (text) => text
      .replace(/\b(bearer|basic)(\s+)([\w\-.~+/]{8,}=*)/gi, (match, scheme: string, space: string, credential: string) => isPlainWord(credential) ? match : `${scheme}${space}${REDACTED}`)
      .replace(/\b(Token)(\s+)[\w\-.~+/]{20,}=*/g, `$1$2${REDACTED}`)
  },
  // `Name: value` header and YAML lines, at the start of a line (or after an error's `Name: `):
  // `X-Api-Key: …`, `Authorization: Token …`, `Cookie: a=…; b=…`, `password: …` — the rest of the line
  {
    hint: NAMED,
    redact: (text, secrets) => text.replace(HEADER_LINE,
      (match, head: string, name: string, space: string, value: string) => value !== '' && secrets.isSecretKey(name) ? `${head}${space === '' ? ' ' : space}${REDACTED}` : match)
  },
  // util.inspect and object literals: `{ password: 'C' }`, `, token: 123` (assert's failures print these)
  {
    hint: NAMED,
    redact: (text, secrets) => replaceValues(text, INSPECTED_NAME, 3, secrets)
  },
  // JSON pairs, in JSON escaped inside a JSON string too: `"password": "…"`, `\"token\":\"…\"`,
  // `"password": 734912650`, `"credentials": { … }` — the value whole, the JSON kept valid
  {
    hint: NAMED,
    redact: (text, secrets) => replaceJsonValues(text, secrets)
  },
  // `--password C`, `--api-key="C"`: arguments of a command line (a child process's message)
  {
    hint: NAMED,
    redact: (text, secrets) => text.replace(FLAG,
      (match, before: string, flag: string, name: string, separator: string) => secrets.isSecretKey(name) ? `${before}${flag}${separator}${REDACTED}` : match)
  },
  // `name=value` pairs: query strings, form bodies, cookies, `password = "C"`, an OAuth fragment
  // `#access_token=C`, pairs inside quotes
  {
    hint: NAMED,
    redact: (text, secrets) => replaceValues(text, PAIR_NAME, 1, secrets, (name) => decoded(name), bareEnd)
  }
]

// what a plain frame line can carry (the self-naming formats are the second rule)
const FRAME_RULES: readonly Rule[] = [RULES[1], USERINFO]

// where a stack's frames begin, and what a frame line must not hold to be looked at for URLs and
// self-naming credentials only (a line that is no frame — another error's header — is not plain)
const FRAME = '\n    at '
const NOT_PLAIN_FRAMES = /[="'`{,]|--|%[0-9A-Fa-f]{2}|\n(?! {4}at )|\b(?:bearer|basic|token)\s/i

const SELF_NAMED = new RegExp([
  String.raw`\beyJ[\w-]{10,}(?:\.[\w-]*){0,2}`, // a JWT: base64url of '{"', up to two more segments
  String.raw`\b(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{10,}`, // Stripe secret and restricted keys
  String.raw`\bwhsec_[0-9a-zA-Z]{20,}`, // Stripe webhook secrets
  String.raw`\bgh[pousr]_[A-Za-z0-9]{30,}`, // GitHub tokens
  String.raw`\bgithub_pat_[A-Za-z0-9_]{40,}`, // GitHub fine-grained tokens
  String.raw`\bglpat-[\w-]{20,}`, // GitLab
  String.raw`\bxox[abposr]-[A-Za-z0-9-]{10,}`, // Slack tokens
  String.raw`hooks\.slack\.com/services/[\w/]+`, // Slack webhooks
  String.raw`\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`, // AWS access key ids
  String.raw`\bAIza[\w-]{35}`, // Google API keys
  String.raw`\bnpm_[A-Za-z0-9]{36}`, // npm tokens
  String.raw`\bsk-(?:proj-|ant-[\w]{2,6}-)?[\w-]{32,}` // OpenAI, Anthropic
].join('|'), 'g')

// a Bearer/Basic "credential" that is an ordinary word of prose: letters only, capitalised at most
function isPlainWord (text: string): boolean {
  return /^[A-Za-z][a-z]*$/.test(text)
}

/**
 * Finds `pattern` (its group `nameGroup` a name) and, where the name is a credential's, replaces the
 * value that follows the match (by default a quoted string, a number, a balanced `{…}`/`[…]`, or a
 * bare word). The value of any other name is looked into, as the rest of the text is.
 */
function replaceValues (text: string, pattern: RegExp, nameGroup: number, secrets: Secrets,
  nameOf: (name: string) => string = (name) => name, endOf: (text: string, start: number) => number = (text, start) => valueEnd(text, start, '')): string {
  let out = ''
  let from = 0
  for (const match of text.matchAll(pattern)) {
    const start = (match.index as number) + match[0].length
    if (start < from || !secrets.isSecretKey(nameOf(match[nameGroup]))) continue
    const end = endOf(text, start)
    if (end === -1) continue
    const quote = text[start] === '"' || text[start] === "'" || text[start] === '`' ? text[start] : ''
    out += `${text.slice(from, start)}${quote}${REDACTED}${quote}`
    from = end
  }
  return from === 0 ? text : out + text.slice(from)
}

// A URL's userinfo, found by hand: the pattern `//user:password@` backtracks on a long run of
// colons after `//` (quadratic: 75 ms for 8 KiB). Each `//` is followed to the first character that
// ends an authority; a password is what follows the first `:` when that character is `@`.
const AUTHORITY = /[^\s/?#@]*/y

function redactUserinfo (text: string): string {
  let out = ''
  let from = 0
  for (let at = text.indexOf('//'); at !== -1; at = text.indexOf('//', at)) {
    const start = at + 2
    AUTHORITY.lastIndex = start
    const end = start + (AUTHORITY.exec(text) as RegExpExecArray)[0].length
    const colon = text[end] === '@' ? text.slice(start, end).indexOf(':') : -1
    if (colon !== -1) {
      out += `${text.slice(from, start + colon + 1)}${REDACTED}@`
      from = end + 1
    }
    at = Math.max(end, start)
  }
  return from === 0 ? text : out + text.slice(from)
}

// `"name":` with its quotes escaped as many times as the JSON holding it was nested
const JSON_NAME = new RegExp(String.raw`(\\{0,7})"(${NAME})\1"[ \t\r\n]*:[ \t\r\n]*`, 'g')

function replaceJsonValues (text: string, secrets: Secrets): string {
  let out = ''
  let from = 0
  for (const match of text.matchAll(JSON_NAME)) {
    const start = (match.index as number) + match[0].length
    if (start < from || !secrets.isSecretKey(match[2])) continue
    const escapes = match[1]
    const end = valueEnd(text, start, escapes)
    if (end === -1) continue
    out += `${text.slice(from, start)}${escapes}"${REDACTED}${escapes}"`
    from = end
  }
  return from === 0 ? text : out + text.slice(from)
}

/**
 * Where the value starting at `start` ends, in one pass: a string (in `escapes`-escaped quotes, or
 * single quotes or backticks), a number, an object or array (to its balanced end), a bare word; the
 * end of the text when the cut ran through it. -1 when no value is there (`null`, `true`: not credentials).
 */
function valueEnd (text: string, start: number, escapes: string): number {
  const first = text[start]
  if (text.startsWith(`${escapes}"`, start)) return quotedEnd(text, start + escapes.length + 1, '"', escapes.length)
  if (escapes === '' && (first === "'" || first === '`')) return quotedEnd(text, start + 1, first, 0)
  if (first === '{' || first === '[') return balancedEnd(text, start)
  const word = /^-?[\w.+/~=-]+/.exec(text.slice(start, start + 4096))
  if (word === null || /^(?:null|true|false|undefined)$/.test(word[0])) return -1
  return start + word[0].length
}

// a pair's value: quoted, or bare up to a separator (`&`, `;`, `,`, `#`, a space, a quote)
function bareEnd (text: string, start: number): number {
  const first = text[start]
  if (first === '"' || first === "'") return quotedEnd(text, start + 1, first, 0)
  let end = start
  while (end < text.length && !'&;,#"\'<> \t\r\n'.includes(text[end])) end++
  return end
}

// the quote that closes a string whose quotes are escaped `depth` times: preceded by exactly
// `depth` backslashes (an escaped quote inside it has more)
function quotedEnd (text: string, from: number, quote: string, depth: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] !== quote) continue
    let backslashes = 0
    while (backslashes < i - from && text[i - 1 - backslashes] === '\\') backslashes++
    if (backslashes === depth) return i + 1
  }
  return text.length
}

function balancedEnd (text: string, start: number): number {
  let depth = 0
  for (let i = start; i < text.length; i++) {
    const char = text[i]
    if (char === '{' || char === '[') depth++
    else if ((char === '}' || char === ']') && --depth === 0) return i + 1
  }
  return text.length
}

// each run of escapes decoded on its own: one that is not UTF-8 stays as it is
function percentDecoded (text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (escapes) => decoded(escapes))
}

function decoded (name: string): string {
  if (!name.includes('%')) return name
  try {
    return decodeURIComponent(name)
  } catch {
    return name
  }
}

// the longest run of letters of a name (`X-Tenant-Key`: tenant), as it appears whatever the separators
function longestWord (name: string): string | undefined {
  const words = name.match(/[A-Za-z]+/g)
  return words?.reduce((longest, word) => word.length > longest.length ? word : longest).toLowerCase()
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
