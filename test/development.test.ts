import { test, type Test } from 'tap'
import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { buildApp, genericBody, recovery } from './helper'
import { DevelopmentPage, escape } from '../lib/development-page'
import type { PanicView } from '../lib/panic-reply'
import { Secrets } from '../lib/secrets'
import Fastify from 'fastify'

// Contract §13: the developer page, refused unless NODE_ENV is exactly "development".

function developmentEnv (t: Test, value: string | null = 'development'): void {
  const before = process.env.NODE_ENV
  if (value === null) delete process.env.NODE_ENV
  else process.env.NODE_ENV = value
  t.teardown(() => { if (before === undefined) delete process.env.NODE_ENV; else process.env.NODE_ENV = before })
}

// the application's root, as the plugin takes it at registration: only files inside it are read
const ROOT = realpathSync.native(process.cwd())
const page = new DevelopmentPage(ROOT, new Secrets())
const developmentPage = (panic: PanicView): { html: string, csp: string } => page.page(panic)

/** A directory inside the application's root, removed when the test ends. */
function sourceDir (t: Test, prefix: string): string {
  const dir = mkdtempSync(join(ROOT, `.tmp-${prefix}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } // a browser's

test('refused at registration unless NODE_ENV is exactly "development"', async (t) => {
  for (const value of ['production', 'test', 'Development', 'development ', '', null]) {
    developmentEnv(t, value)
    const app = Fastify()
    const error = await app.register(recovery, { development: true, metrics: false }).then(() => undefined, (err: unknown) => err)
    t.ok(error instanceof TypeError, `NODE_ENV=${JSON.stringify(value)}: a TypeError`)
    t.match((error as Error).message, /option "development" must be false unless NODE_ENV is exactly "development"/)
    await app.close()
  }
  const app = Fastify()
  await t.rejects(async () => { await app.register(recovery, { development: 'yes' as never, metrics: false }) }, /option "development" must be a boolean, got "yes"/)
  await app.close()
})

test('a browser gets the page: type, message, cause chain, source lines of the application, request id; escaped, no script', async (t) => {
  developmentEnv(t)
  const { app, panics, total } = await buildApp({ development: true })
  t.teardown(() => app.close())
  app.get('/orders/:id', async () => {
    const cause = new RangeError('<b>inner</b> cause')
    throw new TypeError('total of <script>alert(1)</script> "undefined"', { cause })
  })
  const res = await app.inject({ url: '/orders/7', headers: HTML })
  t.equal(res.statusCode, 500)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['x-request-id'], 'req-1')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  const csp = res.headers['content-security-policy'] as string
  t.match(csp, /^default-src 'none'; style-src 'nonce-[A-Za-z0-9+/=]+'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/)
  const page = res.body
  t.notMatch(page, /<script/i, 'no script element at all')
  t.match(page, 'total of &lt;script&gt;alert(1)&lt;/script&gt; &quot;undefined&quot;')
  t.match(page, '<span class="type">TypeError</span>')
  t.match(page, 'Caused by <span class="type">RangeError</span>')
  t.match(page, '&lt;b&gt;inner&lt;/b&gt; cause')
  t.match(page, '<dd id="request-id">req-1</dd>')
  t.match(page, '<dd>/orders/:id</dd>')
  t.match(page, /<span class="line current"><span class="number">\d+<\/span>\s+throw new TypeError\(/, 'the source line of this test file, highlighted')
  t.match(page, /frames? of node_modules and Node<\/summary>/, 'library frames collapsed')
  t.equal(panics().length, 1, 'logged as always')
  t.equal(await total(), 1, 'counted as always')
})

test('a JSON client gets the generic body plus development: { type, message, stack }', async (t) => {
  developmentEnv(t)
  const { app } = await buildApp({ development: true })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('db down') })
  for (const accept of [undefined, 'application/json', '*/*']) {
    const res = await app.inject({ url: '/boom', headers: accept === undefined ? {} : { accept } })
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    const body = res.json()
    t.match(body, { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error', requestId: /^req-/ })
    t.match(body.development, { type: 'Error', message: 'db down', stack: /^Error: db down\n {4}at / })
  }
  const problem = await app.inject({ url: '/boom', headers: { accept: 'application/problem+json' } })
  t.equal(problem.headers['content-type'], 'application/problem+json')
  t.match(problem.json(), { type: 'about:blank', status: 500, development: { message: 'db down' } })
})

test('HEAD, double faults, custom handlers and client errors are unchanged', async (t) => {
  developmentEnv(t)
  const { app, total } = await buildApp({ development: true })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  app.get('/double', { onSend: async (_request, reply) => { if (reply.statusCode === 500) throw new Error('hook') } }, async () => { throw new Error('route') })
  app.get('/missing', async () => { throw Object.assign(new Error('no such order'), { statusCode: 404 }) })
  const head = await app.inject({ method: 'HEAD', url: '/boom', headers: HTML })
  t.equal(head.statusCode, 500)
  t.equal(head.body, '')
  t.equal(head.headers['content-type'], 'text/html; charset=utf-8')
  const double = await app.inject({ url: '/double', headers: HTML })
  t.equal(double.statusCode, 500)
  t.match(double.body, '<span class="type">Error</span>', 'the page, written straight to the socket')
  t.ok(double.headers['content-security-policy'])
  t.same((await app.inject('/missing')).json(), { statusCode: 404, error: 'Not Found', message: 'no such order' })
  t.equal(await total(), 2, 'HEAD and the double fault; the 404 is no panic')

  const handled = await buildApp({ development: true, handler: () => ({ statusCode: 503, body: { maintenance: true } }) })
  t.teardown(() => handled.app.close())
  handled.app.get('/boom', async () => { throw new Error('x') })
  t.same((await handled.app.inject({ url: '/boom', headers: HTML })).json(), { maintenance: true }, 'a custom handler\'s reply wins')
})

test('development off (the default): a browser gets the generic JSON', async (t) => {
  developmentEnv(t)
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('db down') })
  const res = await app.inject({ url: '/boom', headers: HTML })
  t.equal(res.body, genericBody('req-1'))
})

test('the page of hostile values: non-Errors, accessors, frames of files that cannot be read', async (t) => {
  const info = (error: Error) => ({ error, source: 'request' as const, requestId: '<id>', method: 'GET', route: '/r', fingerprint: 'f' })
  const getter = Object.defineProperty(new Error('x'), 'stack', { get () { throw new Error('never run') } })
  t.match(developmentPage(info(getter)).html, 'No stack.', 'an accessor stack is not run: no frames')
  const unformattable = new Error('y')
  Object.defineProperty(unformattable, 'message', { get () { throw new Error('formatting runs me') } })
  t.match(developmentPage(info(unformattable)).html, '[Getter]')
  const frames = new Error('z')
  frames.stack = 'Error: z\n    at eval (eval at <anonymous> (file.js:1:1), <anonymous>:1:1)\n    at /nonexistent/app.js:3:4\n    at file:///also/missing.mjs:2:2\n    at file://%invalid:1:1\n    at node:internal/x:1:1'
  const page = developmentPage(info(frames)).html
  t.match(page, '/nonexistent/app.js:3:4')
  t.match(page, '&lt;id&gt;', 'the request id is escaped too')
  t.equal(escape('<a href="x" title=\'y\'>&</a>'), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
})

test('source files are read once each, and at most 64 are kept', async (t) => {
  const fs = require('node:fs') as typeof import('node:fs')
  const { writeFileSync } = fs
  const dir = sourceDir(t, 'dev')
  const files = Array.from({ length: 70 }, (_, i) => { const file = `${dir}/f${i}.js`; writeFileSync(file, `line one\nline two ${i}\n`); return file })
  const huge = `${dir}/huge.js`
  writeFileSync(huge, 'x'.repeat(2 * 1024 * 1024))
  const read = fs.readFileSync
  let reads = 0
  ;(fs as { readFileSync: unknown }).readFileSync = (...args: unknown[]) => { reads++; return (read as (...a: unknown[]) => unknown)(...args) }
  t.teardown(() => { (fs as { readFileSync: unknown }).readFileSync = read })
  const pageFor = (file: string): string => {
    const error = new Error('e')
    error.stack = `Error: e\n    at fn (${file}:2:1)`
    return developmentPage({ error, source: 'request', fingerprint: 'f' }).html
  }
  t.match(pageFor(files[0]), 'line two 0')
  pageFor(files[0])
  t.equal(reads, 1, 'read once')
  for (const file of files) pageFor(file)
  t.equal(reads, 70)
  pageFor(files[0])
  t.equal(reads, 71, 'the oldest was dropped to keep 64')
  t.notMatch(pageFor(huge), 'xxxx', 'a file over 1 MiB is not shown')
})

test('odd Accept headers, odd frames, long source lines, errors without a stack', async (t) => {
  developmentEnv(t)
  const { app } = await buildApp({ development: true })
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('x') })
  for (const accept of ['image/png, text/html;q=0', 'application/problem+json;q=0, image/png']) {
    const res = await app.inject({ url: '/boom', headers: { accept } })
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', `${accept}: nothing offered is acceptable, JSON it is`)
  }
  const { writeFileSync } = await import('node:fs')
  const dir = sourceDir(t, 'long')
  const file = `${dir}/long.js`
  writeFileSync(file, `const short = 1\nconst long = '${'y'.repeat(800)}'\n`)
  const error = new Error('odd')
  error.stack = `Error: odd\n    at <anonymous>\n    at fn (${file}:2:1)`
  const page = developmentPage({ error, source: 'request', fingerprint: 'f' }).html
  t.match(page, '<code>at &lt;anonymous&gt;</code>')
  // 500 characters of the line, then an ellipsis: "const long = '" and 486 of the y
  t.match(page, `const long = &#39;${'y'.repeat(486)}…</span>`)
  t.notMatch(page, 'y'.repeat(487))
  const stackless = Object.create(Error.prototype, { message: { value: 'no stack here' } })
  t.match(developmentPage({ error: stackless, source: 'reported', fingerprint: 'f' }).html, 'No stack.')
})

test('a message that holds frame-like lines never makes the page read a file', async (t) => {
  developmentEnv(t)
  const { writeFileSync } = await import('node:fs')
  const dir = sourceDir(t, 'inject')
  writeFileSync(`${dir}/config.js`, 'module.exports = { key: "SECRET-IN-SOURCE" }\n')
  writeFileSync(`${dir}/.env`, 'API_KEY=SECRET-IN-ENV\n')
  const { app } = await buildApp({ development: true })
  t.teardown(() => app.close())
  app.get('/users', async (request) => {
    throw new Error(`no user ${(request.query as { name: string }).name}`) // the input is the attacker's
  })
  const name = `x\n    at load (${dir}/config.js:1:1)\n    at env (${dir}/.env:1:1)`
  const res = await app.inject({ url: `/users?name=${encodeURIComponent(name)}`, headers: HTML })
  t.equal(res.statusCode, 500)
  t.notMatch(res.body, 'SECRET-IN', 'no line of either file is shown')
  t.match(res.body, 'throw new Error(`no user', 'the real frame still shows its source')

  // hand-made stacks: a frame of a file that is not source code is never read; a stack whose first
  // line does not hold the message (changed after the stack was captured) gets no source at all
  const page = (message: string, stack: string): string => {
    const error = new Error(message)
    error.stack = stack
    return developmentPage({ error, source: 'request', fingerprint: 'f' }).html
  }
  t.notMatch(page('e', `Error: e\n    at env (${dir}/.env:1:1)`), 'SECRET-IN-ENV')
  t.match(page('e', `Error: e\n    at load (${dir}/config.js:1:1)`), 'SECRET-IN-SOURCE', 'a source file named by a real frame is shown')
  t.notMatch(page('changed since', `Error: e\n    at load (${dir}/config.js:1:1)`), 'SECRET-IN-SOURCE')
  t.match(page('changed since', `Error: e\n    at load (${dir}/config.js:1:1)`), 'config.js:1:1', 'its frames are still listed')
  t.notMatch(page('e', `Error: x\n    at load (${dir}/config.js:1:1) e`), 'SECRET-IN-SOURCE', 'the message found only after the first line')
  t.match(page('', `Error\n    at load (${dir}/config.js:1:1)`), 'SECRET-IN-SOURCE', 'no message: the frames begin on the second line')
  t.match(page('', 'Error'), 'No stack.')
})

// Contract §13, bounded like the line: frames parsed in linear time; a file is read only when V8's
// part of the stack names it, it lies inside the application's root and outside node_modules, and
// it is at most 1 MiB by its size on disk, told before it is read.
test('crafted frame-like lines are parsed in one pass (a pattern for them backtracked: 0.8–1.4 s a panic)', async (t) => {
  const crafted = `no user x${'\n    at ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ( ('.repeat(70 * 1024 / 48)}`
  const error = new Error(crafted, { cause: new Error(crafted, { cause: new Error(crafted) }) })
  const started = performance.now()
  const { html } = developmentPage({ error, source: 'request', fingerprint: 'f' })
  t.comment(`the page of a 70 KB crafted message and its two causes: ${(performance.now() - started).toFixed(1)} ms`)
  t.match(html, '<code>at ( ( (', 'the crafted lines are shown as frames, escaped')
  const { writeFileSync } = await import('node:fs')
  const dir = sourceDir(t, 'frames')
  writeFileSync(join(dir, 'app.js'), 'one\ntwo\nthree\n')
  const parsed = new Error('e')
  parsed.stack = [
    'Error: e',
    `    at Object.handler (${dir}/app.js:2:5)`,
    '    at async Promise.all (index 0)',
    `    at eval (eval at compile (${dir}/app.js:1:1), <anonymous>:3:7)`,
    `    at new Widget (file://${dir}/app.js:3:1)`,
    '    at node:internal/process/task_queues:95:5',
    '    at unbalanced)',
    `    at empty (${dir}/app.js::1)`,
    `    at ${dir}/app.js:1:1`
  ].join('\n')
  const page = developmentPage({ error: parsed, source: 'request', fingerprint: 'f' }).html
  t.equal(page.split('<pre class="source">').length - 1, 3, 'the three frames in app.js get their source; eval, node: and malformed frames do not')
  t.match(page, '<code>at unbalanced)</code>', 'a malformed frame is still listed')
})

test('a file outside the root, a link out of it, node_modules, a 32 MB bundle: never read', async (t) => {
  const fs = require('node:fs') as typeof import('node:fs')
  const inside = sourceDir(t, 'root')
  const outside = mkdtempSync(join(require('node:os').tmpdir(), 'recovery-outside-'))
  t.teardown(() => rmSync(outside, { recursive: true, force: true }))
  fs.writeFileSync(join(outside, 'other.js'), 'const key = "SECRET-OUTSIDE"\n')
  fs.symlinkSync(join(outside, 'other.js'), join(inside, 'linked.js'))
  fs.mkdirSync(join(inside, 'node_modules', 'dep'), { recursive: true })
  fs.writeFileSync(join(inside, 'node_modules', 'dep', 'index.js'), 'const key = "SECRET-DEPENDENCY"\n')
  fs.writeFileSync(join(inside, 'bundle.js'), `const key = "SECRET-BUNDLE"\n${'x'.repeat(32 * 1024 * 1024)}\n`)
  const read = fs.readFileSync
  const reads: string[] = []
  ;(fs as { readFileSync: unknown }).readFileSync = (...args: unknown[]) => { reads.push(String(args[0])); return (read as (...a: unknown[]) => unknown)(...args) }
  t.teardown(() => { (fs as { readFileSync: unknown }).readFileSync = read })
  const pageFor = (file: string): string => {
    const error = new Error('e')
    error.stack = `Error: e\n    at fn (${file}:1:1)` // a stack set by hand: a deserialized remote error
    return developmentPage({ error, source: 'request', fingerprint: 'f' }).html
  }
  for (const file of [join(outside, 'other.js'), join(inside, 'linked.js'), join(inside, 'node_modules', 'dep', 'index.js'), join(inside, 'bundle.js')]) {
    const started = performance.now()
    t.notMatch(pageFor(file), 'SECRET', `${file.slice(inside.length - 12)}: not shown`)
    t.comment(`${(performance.now() - started).toFixed(1)} ms`)
  }
  t.same(reads, [], 'nothing was read')
})

test('a first line with many ": " before the message: where the frames begin cannot be told, no source is read', async (t) => {
  const dir = sourceDir(t, 'header')
  require('node:fs').writeFileSync(join(dir, 'app.js'), 'const shown = "SOURCE-SHOWN"\n')
  const error = new Error('the message')
  error.stack = `A: B: C: D: E: F: G: H: I: J: the message\n    at fn (${dir}/app.js:1:1)`
  t.notMatch(developmentPage({ error, source: 'request', fingerprint: 'f' }).html, 'SOURCE-SHOWN')
  error.stack = `Error [ERR_X]: the message\n    at fn (${dir}/app.js:1:1)`
  t.match(developmentPage({ error, source: 'request', fingerprint: 'f' }).html, 'SOURCE-SHOWN', 'Node\'s `name [code]: message` header')
})
