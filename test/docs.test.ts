import { test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, normalize, resolve } from 'node:path'
import { builtPlugin, runNode, sleep } from './helper'

// Every code block of the README and of docs/ is run, or says why it is not: the line before each
// fence is a marker.
//   <!-- run: serves URL -->   a whole program that listens: started, asked for URL, and each
//                              `<!-- output: ... -->` block after it compared with what it answers
//   <!-- run: in an app -->    a snippet about an app with the plugin registered (`app` in scope)
//   <!-- run: with an app -->  a snippet that registers the plugin itself (`app`, `recovery` in scope)
//   <!-- run: PromQL ... -->   each expression evaluated by a live Prometheus (test/prometheus-live.test.ts)
//   <!-- output: ... -->       what something prints (checked by the block it follows, when it can be)
//   <!-- fragment: why -->     not run, and why
// And the package is self-sufficient: every relative link of its README and docs resolves to a file
// the packed package contains, at an anchor that file has.

const ROOT = resolve(__dirname, '..')
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => join('docs', name))]

interface Block { file: string, line: number, marker: string, language: string, code: string }

function blocksOf (file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('```')) continue
    const start = i
    const language = lines[i].slice(3).trim()
    const code: string[] = []
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) code.push(lines[i])
    let before = start - 1
    while (before >= 0 && lines[before].trim() === '') before--
    const marker = /^<!-- (.*) -->$/.exec(lines[before] ?? '')?.[1] ?? ''
    blocks.push({ file, line: start + 1, marker, language, code: code.join('\n') })
  }
  return blocks
}

const blocks = DOCS.flatMap(blocksOf)

test('every code block is run or says why it is not', async (t) => {
  for (const block of blocks) {
    t.match(block.marker, /^(run: (serves \S+|in an app|with an app|PromQL.*)|output: .+|fragment: .+)$/, `${block.file}:${block.line} has a marker`)
  }
  t.ok(blocks.filter((block) => block.marker.startsWith('run')).length >= 10, 'most examples run')
})

// the blocks run in a folder inside the project, so that `fastify-recovery` resolves to it (the
// package's own name: its build) and `fastify` to its devDependency, as in an application
function scratch (): string {
  return mkdtempSync(join(ROOT, '.tmp-docs-'))
}

test('the snippets run against an app', async (t) => {
  builtPlugin()
  const dir = scratch()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [i, block] of blocks.entries()) {
    if (block.marker !== 'run: in an app' && block.marker !== 'run: with an app') continue
    const registered = block.marker === 'run: in an app' ? 'await app.register(recovery, { metrics: false })' : ''
    const file = join(dir, `snippet-${i}.cjs`)
    writeFileSync(file, `
      const Fastify = require('fastify')
      const recovery = require('fastify-recovery')
      ;(async () => {
        const app = Fastify()
        ${registered}
        ${block.code}
        await app.ready()
        await app.close()
        console.log('ran')
      })().catch((error) => { console.error(error); process.exit(1) })
    `)
    const { code, stdout, stderr } = await runNode([file], ROOT)
    t.equal(code, 0, `${block.file}:${block.line} runs: ${stderr}`)
    t.match(stdout, 'ran')
  }
})

test('the first example runs as pasted, and answers, logs and counts what the README shows', async (t) => {
  builtPlugin()
  const dir = scratch()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const serving = blocks.filter((block) => block.marker.startsWith('run: serves'))
  t.equal(serving.length, 2, 'CommonJS and ESM')
  for (const block of serving) {
    const url = block.marker.slice('run: serves '.length)
    const file = join(dir, /^import /m.test(block.code) ? 'server.mjs' : 'server.cjs')
    writeFileSync(file, block.code)
    const child = spawn(process.execPath, [file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { child.kill('SIGKILL') })
    let log = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { log += chunk })
    const started = Date.now()
    while (!log.includes('Server listening') && Date.now() - started < 10_000) await sleep(50)
    const res = await fetch(url)
    const body = await res.text()
    // the outputs that follow this block in its file (the same program's in another form between), up to the next snippet
    const following = blocks.filter((other) => other.file === block.file && other.line > block.line)
    const outputs = following.slice(0, following.findIndex((other) => /^run: (in|with) an app/.test(other.marker)) >>> 0)
    for (const output of outputs.filter((other) => other.marker.startsWith('output'))) {
      if (/curl -i /.test(output.marker)) {
        const [status, ...rest] = output.code.split('\n')
        const blank = rest.indexOf('')
        t.equal(`HTTP/1.1 ${res.status} ${res.statusText}`, status, 'the status line')
        for (const header of rest.slice(0, blank)) {
          const [name, value] = header.split(': ')
          t.equal(res.headers.get(name), value, header)
        }
        t.equal(body, rest.slice(blank + 1).join('\n').trim(), 'the body')
      } else if (/curl .*\/metrics/.test(output.marker)) {
        const metrics = await (await fetch(new URL('/metrics', url))).text()
        for (const line of output.code.split('\n')) t.ok(metrics.split('\n').includes(line), line)
      } else if (/log line/.test(output.marker)) {
        await sleep(50)
        const shown = JSON.parse(output.code)
        const line = log.split('\n').filter(Boolean).map((text) => JSON.parse(text)).find((entry) => entry.msg === 'panic recovered')
        t.same(
          { reqId: line?.reqId, type: line?.err?.type, message: line?.err?.message, panic: { ...line?.panic, latencyMs: 0, fingerprint: '' } },
          { reqId: shown.reqId, type: shown.err.type, message: shown.err.message, panic: { ...shown.panic, latencyMs: 0, fingerprint: '' } },
          'the line, but its times and fingerprint')
        t.match(line?.err?.stack, /^TypeError: Cannot read properties of undefined \(reading 'total'\)\n {4}at /)
      }
    }
    t.ok(outputs.length >= 3, `${block.file}:${block.line}: its outputs were compared`)
    child.kill('SIGTERM')
    await once(child, 'exit')
  }
})

// GitHub's anchors: lower case, punctuation but `-` and `_` dropped, spaces as `-`
function anchorsOf (file: string): Set<string> {
  const anchors = new Set<string>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const heading = /^#{1,6} (.*)$/.exec(line)
    if (heading !== null) anchors.add(heading[1].toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'))
  }
  return anchors
}

test('the package is self-sufficient: every relative link of its README and docs resolves inside it', async (t) => {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })) as Array<{ files: Array<{ path: string }> }>
  const packed = new Set(pack.files.map((entry) => entry.path))
  for (const doc of ['README.md', 'CHANGELOG.md', ...DOCS]) t.ok(packed.has(doc), `${doc} ships`)
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue // https:, mailto:
      const [path, anchor] = target.split('#')
      const file = path === '' ? doc : normalize(join(dirname(doc), path))
      t.ok(packed.has(file), `${doc}: ${target} is in the package`)
      if (anchor !== undefined && file.endsWith('.md')) t.ok(anchorsOf(join(ROOT, file)).has(anchor), `${doc}: ${target} has its anchor`)
    }
  }
})
