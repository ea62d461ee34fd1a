import { randomBytes } from 'node:crypto'
import { readFileSync, realpathSync, statSync } from 'node:fs'
import { isAbsolute, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { truncate } from './budget'
import type { Explainer, PanicView } from './panic-reply'
import { causeChainOf, errorMessageOf, errorTypeOf, GETTER, stackOf } from './safe-read'
import type { Secrets } from './secrets'

// Contract §13: what a developer sees (option `development`, refused unless NODE_ENV is
// "development"): the error type, message, `cause` chain and stack, with the source lines around
// each frame of the application. Everything taken from the thrown value is escaped, the page runs
// no script, and its content-security-policy allows only its own stylesheet. Credentials in the
// message, the stack and the source lines shown are redacted as on the log line (a page is shown on shared screens
// and pasted into bug reports). The request's headers,
// body and query are not shown.

// a page shows more than a line: the whole message and stack a developer may need
const PAGE_MESSAGE_BYTES = 16 * 1024
const PAGE_STACK_BYTES = 64 * 1024
const CONTEXT_LINES = 3
const LINE_CHARS = 500
// source files are read once each, at most this many kept, none larger than this (stat first)
const MAX_FILES = 64
const MAX_FILE_BYTES = 1024 * 1024
// a stack set by hand may hold any number of lines: the page lists this many frames
const MAX_FRAMES = 200

/** The `development` field of a JSON reply. */
export interface DevelopmentFields { type: string, message: string, stack: string }

interface Described {
  type: string
  message: string
  stack: string
  /** Where the stack's frames begin, after the `name: message` header; -1 when it cannot be told. */
  framesFrom: number
}

/** Where the page reads source files from, and what it has read. */
interface Sources {
  /** The application's root (the working directory at registration, its real path): no file outside it is read. */
  root: string
  read: Map<string, string[] | null>
  /** Source lines are shown with their credentials redacted too (a literal connection string). */
  redact: (line: string) => string
}

export class DevelopmentPage implements Explainer {
  readonly #sources: Sources
  readonly #secrets: Secrets

  constructor (root: string, secrets: Secrets) {
    this.#sources = { root, read: new Map(), redact: (line) => secrets.redact(line, LINE_CHARS) }
    this.#secrets = secrets
  }

  fields (error: Error): DevelopmentFields {
    const { type, message, stack } = this.#describe(error)
    return { type, message, stack }
  }

  /** The page, and the content-security-policy it must be sent with. */
  page (info: PanicView): { html: string, csp: string } {
    const nonce = randomBytes(16).toString('base64')
    const chain = causeChainOf(info.error).map((error) => this.#describe(error))
    const [top] = chain
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>500 · ${escape(top.type)}: ${escape(truncate(top.message, 200))}</title>
<style nonce="${nonce}">${STYLE}</style></head>
<body><main>
<p class="notice">fastify-recovery development page — shown because the option <code>development</code> is on and NODE_ENV is "development". Clients get the generic 500 in production.</p>
<h1><span class="type">${escape(top.type)}</span></h1>
<pre class="message">${escape(top.message)}</pre>
<dl class="request">
<dt>request id</dt><dd id="request-id">${escape(info.requestId ?? '')}</dd>
<dt>method</dt><dd>${escape(info.method ?? '')}</dd>
<dt>route</dt><dd>${escape(info.route ?? '')}</dd>
<dt>source</dt><dd>${escape(info.source)}</dd>
<dt>fingerprint</dt><dd>${escape(info.fingerprint)}</dd>
</dl>
${chain.map((error, i) => section(error, i, this.#sources)).join('\n')}
</main></body></html>
`
    const csp = `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
    return { html, csp }
  }

  // the message and the stack, credentials redacted: the stack's header and its frames each on its own,
  // so that where the frames begin is still known
  #describe (error: Error): Described {
    const stack = stackOf(error)
    const message = errorMessageOf(error)
    const text = stack === GETTER ? '[Getter]' : typeof stack === 'string' ? truncate(stack, PAGE_STACK_BYTES) : ''
    const from = framesFrom(text, message)
    const redact = (part: string, limit: number): string => this.#secrets.redact(part, limit)
    const header = from === -1 ? redact(text, PAGE_STACK_BYTES) : redact(text.slice(0, from), PAGE_STACK_BYTES)
    return {
      type: errorTypeOf(error),
      message: truncate(redact(message, PAGE_MESSAGE_BYTES), PAGE_MESSAGE_BYTES),
      stack: from === -1 ? header : header + redact(text.slice(from), PAGE_STACK_BYTES),
      framesFrom: from === -1 ? -1 : header.length
    }
  }
}

function section (error: Described, index: number, sources: Sources): string {
  // a message's own lines may look like frames (`throw new Error('no user ' + input)` with a line
  // "at x (/etc/passwd:1:1)" in the input): only frames after the header get their source read
  const trusted = error.framesFrom !== -1
  const frames = framesOf(trusted ? error.stack.slice(error.framesFrom) : error.stack)
  const parts: string[] = []
  let hidden: Frame[] = []
  const flush = (): void => {
    if (hidden.length === 0) return
    parts.push(`<details class="library"><summary>${hidden.length} frame${hidden.length === 1 ? '' : 's'} of node_modules and Node</summary><ol>${hidden.map((frame) => `<li><code>${escape(frame.text)}</code></li>`).join('')}</ol></details>`)
    hidden = []
  }
  for (const frame of frames) {
    if (frame.file === undefined || !isApplicationFile(frame.file)) {
      hidden.push(frame)
      continue
    }
    flush()
    parts.push(`<div class="frame"><p><code>${escape(frame.text)}</code></p>${trusted ? snippet(frame.file, frame.line, sources) : ''}</div>`)
  }
  flush()
  const heading = index === 0 ? '<h2>Stack</h2>' : `<h2>Caused by <span class="type">${escape(error.type)}</span></h2><pre class="message">${escape(error.message)}</pre>`
  return `<section>${heading}${parts.join('\n')}${frames.length === 0 ? '<p>No stack.</p>' : ''}</section>`
}

interface Frame { text: string, file?: string, line: number }

// V8's frames: "at fn (file:line:col)", "at file:line:col", "at async fn (file:line:col)",
// "at eval (eval at fn (file:line:col), <anonymous>:line:col)". Read by hand, in one pass over each
// line: a pattern for them backtracks on crafted lines (`at ( ( ( …`, quadratic).
function framesOf (stack: string): Frame[] {
  const frames: Frame[] = []
  for (const line of stack.split('\n')) {
    const text = line.trim()
    if (!text.startsWith('at ')) continue
    frames.push({ text, ...locationOf(text.slice(3)) })
    if (frames.length === MAX_FRAMES) break
  }
  return frames
}

function locationOf (rest: string): { file?: string, line: number } {
  let location = rest
  if (location.endsWith(')')) {
    // the innermost place is in the last balanced parentheses
    let depth = 0
    let open = -1
    for (let i = location.length - 1; i >= 0 && open === -1; i--) {
      const code = location.charCodeAt(i)
      if (code === 41) depth++
      else if (code === 40 && --depth === 0) open = i
    }
    if (open === -1) return { line: 0 }
    location = location.slice(open + 1, -1)
    // an eval frame: where the evaluated code ran is after the last ", "
    const comma = location.lastIndexOf(', ')
    if (comma !== -1) location = location.slice(comma + 2)
  }
  const column = location.lastIndexOf(':')
  const line = location.lastIndexOf(':', column - 1)
  if (line <= 0 || !isDigits(location, line + 1, column) || !isDigits(location, column + 1, location.length)) return { line: 0 }
  let file: string | undefined = location.slice(0, line)
  if (file.startsWith('file://')) {
    try {
      file = fileURLToPath(file)
    } catch {
      file = undefined
    }
  }
  return { file, line: Number(location.slice(line + 1, column)) }
}

function isDigits (text: string, from: number, to: number): boolean {
  if (from >= to) return false
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i)
    if (code < 48 || code > 57) return false
  }
  return true
}

function isApplicationFile (file: string): boolean {
  return isAbsolute(file) && !file.includes('/node_modules/') && !file.includes('\\node_modules\\')
}

// source code only: a frame naming any other file (`.env`, a key) never has it read
const SOURCE_FILE = /\.[cm]?[jt]sx?$/

// Read only when it is a source file inside the application's root (after links are resolved) and
// outside node_modules, and at most MAX_FILE_BYTES by its size on disk, told before anything is read.
function sourceOf (file: string, { root, read }: Sources): string[] | null {
  if (read.has(file)) return read.get(file) as string[] | null
  let lines: string[] | null = null
  try {
    const real = realpathSync.native(file)
    const inside = real.startsWith(root + sep) && !real.slice(root.length).split(sep).includes('node_modules')
    if (inside && SOURCE_FILE.test(real)) {
      const stat = statSync(real)
      if (stat.isFile() && stat.size <= MAX_FILE_BYTES) lines = readFileSync(real, 'utf8').split(/\r?\n/)
    }
  } catch {
    // not a readable file (eval, a deleted file): the frame is shown without its source
  }
  if (read.size >= MAX_FILES) read.delete(read.keys().next().value as string)
  read.set(file, lines)
  return lines
}

function snippet (file: string, line: number, sources: Sources): string {
  const lines = SOURCE_FILE.test(file) ? sourceOf(file, sources) : null
  if (lines === null || line < 1 || line > lines.length) return ''
  const first = Math.max(1, line - CONTEXT_LINES)
  const last = Math.min(lines.length, line + CONTEXT_LINES)
  const rows: string[] = []
  for (let n = first; n <= last; n++) {
    const text = lines[n - 1].length > LINE_CHARS ? `${lines[n - 1].slice(0, LINE_CHARS)}…` : lines[n - 1]
    rows.push(`<span class="${n === line ? 'line current' : 'line'}"><span class="number">${n}</span>${escape(sources.redact(text))}</span>`)
  }
  return `<pre class="source">${rows.join('\n')}</pre>`
}

// V8 writes `name: message` (the message as it was when the stack was captured), then the frames;
// Node's own errors write `name [code]: message`. The message must follow a ": " of the stack's first
// line (the first few are tried, each in one comparison); when it does not (changed since, or the
// stack set by hand without it), where the frames begin cannot be told.
const HEADER_TRIES = 8

function framesFrom (stack: string, message: string): number {
  const firstLine = stack.indexOf('\n')
  if (message === '') return firstLine === -1 ? stack.length : firstLine
  let at = -1
  for (let tries = 0; tries < HEADER_TRIES; tries++) {
    at = stack.indexOf(': ', at + 1)
    if (at === -1 || (firstLine !== -1 && at > firstLine)) return -1
    if (stack.startsWith(message, at + 2)) return at + 2 + message.length
  }
  return -1
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text for HTML content or a quoted attribute. */
export function escape (text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character])
}

const STYLE = `
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: #1c1c1c; background: #f6f6f4; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
.notice { font-size: 13px; color: #6b6b6b; }
h1 { margin: 8px 0; font-size: 22px; color: #b3261e; }
h2 { font-size: 17px; margin: 28px 0 8px; }
pre { white-space: pre-wrap; word-break: break-word; }
.message { font-size: 16px; background: #fff; border-left: 4px solid #b3261e; padding: 12px; margin: 0; }
.request { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 16px 0; }
.request dt { color: #6b6b6b; } .request dd { margin: 0; font-family: ui-monospace, monospace; }
.frame p { margin: 12px 0 4px; }
.source { background: #1e1e1e; color: #ddd; padding: 8px 0; margin: 0; font: 13px/1.45 ui-monospace, monospace; overflow-x: auto; }
.source .line { display: block; padding: 0 12px; } .source .current { background: #5a1d1d; }
.source .number { display: inline-block; width: 4em; color: #888; user-select: none; }
details.library { color: #6b6b6b; margin: 8px 0; } details.library ol { font-size: 13px; }
`
