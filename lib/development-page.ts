import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { PanicInfo } from '../types/index'
import { truncate } from './bounded-copy'
import { dataOf, errorMessageOf, errorTypeOf, GETTER, isError, stackOf } from './safe-read'

// Contract §13: what a developer sees (option `development`, refused unless NODE_ENV is
// "development"): the error type, message, `cause` chain and stack, with the source lines around
// each frame of the application. Everything taken from the thrown value is escaped, the page runs
// no script, and its content-security-policy allows only its own stylesheet. The request's headers,
// body and query are not shown.

const MAX_CAUSES = 8
const MESSAGE_BYTES = 16 * 1024
const STACK_BYTES = 64 * 1024
const CONTEXT_LINES = 3
const LINE_CHARS = 500
// source files are read once each, at most this many kept, none larger than this
const MAX_FILES = 64
const MAX_FILE_BYTES = 1024 * 1024

/** The `development` field of a JSON reply. */
export interface DevelopmentFields { type: string, message: string, stack: string }

interface Described {
  type: string
  message: string
  stack: string
  /** Where the stack's frames begin, after the `name: message` header; -1 when it cannot be told. */
  framesFrom: number
}

export function developmentFields (error: Error): DevelopmentFields {
  const { type, message, stack } = describeError(error)
  return { type, message, stack }
}

/** The page, and the content-security-policy it must be sent with. */
export function developmentPage (info: PanicInfo): { html: string, csp: string } {
  const nonce = randomBytes(16).toString('base64')
  const chain = causeChain(info.error).map(describeError)
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
${chain.map((error, i) => section(error, i)).join('\n')}
</main></body></html>
`
  const csp = `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
  return { html, csp }
}

function section (error: Described, index: number): string {
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
    parts.push(`<div class="frame"><p><code>${escape(frame.text)}</code></p>${trusted ? snippet(frame.file, frame.line) : ''}</div>`)
  }
  flush()
  const heading = index === 0 ? '<h2>Stack</h2>' : `<h2>Caused by <span class="type">${escape(error.type)}</span></h2><pre class="message">${escape(error.message)}</pre>`
  return `<section>${heading}${parts.join('\n')}${frames.length === 0 ? '<p>No stack.</p>' : ''}</section>`
}

interface Frame { text: string, file?: string, line: number }

// V8's frames: "    at fn (file:line:col)", "    at file:line:col", "    at async fn (file:line:col)"
const FRAME = /^\s*at (?:.*? \()?(.+?):(\d+):\d+\)?$/

function framesOf (stack: string): Frame[] {
  const frames: Frame[] = []
  for (const line of stack.split('\n')) {
    if (!/^\s*at /.test(line)) continue
    const match = FRAME.exec(line)
    let file = match?.[1]
    if (file?.startsWith('file://') === true) {
      try {
        file = fileURLToPath(file)
      } catch {
        file = undefined
      }
    }
    frames.push({ text: line.trim(), file, line: Number(match?.[2] ?? 0) })
  }
  return frames
}

function isApplicationFile (file: string): boolean {
  return isAbsolute(file) && !file.includes('/node_modules/') && !file.includes('\\node_modules\\')
}

const sources = new Map<string, string[] | null>()

// source code only: a frame naming any other file (`.env`, a key) never has it read
const SOURCE_FILE = /\.[cm]?[jt]sx?$/

function sourceOf (file: string): string[] | null {
  if (sources.has(file)) return sources.get(file) as string[] | null
  let lines: string[] | null = null
  try {
    const text = readFileSync(file, 'utf8')
    if (Buffer.byteLength(text) <= MAX_FILE_BYTES) lines = text.split(/\r?\n/)
  } catch {
    // not a readable file (eval, a deleted file): the frame is shown without its source
  }
  if (sources.size >= MAX_FILES) sources.delete(sources.keys().next().value as string)
  sources.set(file, lines)
  return lines
}

function snippet (file: string, line: number): string {
  const lines = SOURCE_FILE.test(file) ? sourceOf(file) : null
  if (lines === null || line < 1 || line > lines.length) return ''
  const first = Math.max(1, line - CONTEXT_LINES)
  const last = Math.min(lines.length, line + CONTEXT_LINES)
  const rows: string[] = []
  for (let n = first; n <= last; n++) {
    const text = lines[n - 1].length > LINE_CHARS ? `${lines[n - 1].slice(0, LINE_CHARS)}…` : lines[n - 1]
    rows.push(`<span class="${n === line ? 'line current' : 'line'}"><span class="number">${n}</span>${escape(text)}</span>`)
  }
  return `<pre class="source">${rows.join('\n')}</pre>`
}

function causeChain (error: Error): Error[] {
  const chain = [error]
  for (let current = error; chain.length <= MAX_CAUSES;) {
    const cause = dataOf(current, 'cause')
    if (!isError(cause) || chain.includes(cause)) break
    chain.push(cause)
    current = cause
  }
  return chain
}

function describeError (error: Error): Described {
  const stack = stackOf(error)
  const message = errorMessageOf(error)
  const text = stack === GETTER ? '[Getter]' : typeof stack === 'string' ? truncate(stack, STACK_BYTES) : ''
  return { type: errorTypeOf(error), message: truncate(message, MESSAGE_BYTES), stack: text, framesFrom: framesFrom(text, message) }
}

// V8 writes `name: message` (the message as it was when the stack was captured), then the frames.
// The message must be found on the stack's first line; when it is not (changed since, or the stack
// set by hand without it), where the frames begin cannot be told.
function framesFrom (stack: string, message: string): number {
  if (message === '') return stack.indexOf('\n') === -1 ? stack.length : stack.indexOf('\n')
  const at = stack.indexOf(message)
  if (at === -1) return -1
  const firstLine = stack.indexOf('\n')
  return firstLine !== -1 && firstLine < at ? -1 : at + message.length
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
