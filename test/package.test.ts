import { test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

// Contract §1: the tarball of a clean checkout works when installed next to the Fastify under test
// (5, and 6 in CI's Fastify 6 run), from CommonJS, ESM, and TypeScript consumers of both kinds; and
// arethetypeswrong finds nothing in it for node10, node16 (CJS and ESM) and bundler resolution.

const run = promisify(execFile)
const root = resolve(__dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const attw = join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js')
const fastifyVersion = (require('fastify/package.json') as { version: string }).version

const cjs = `
const assert = require('node:assert')
const recovery = require('fastify-recovery')
assert.equal(typeof recovery, 'function')
assert.equal(recovery.default, recovery)
assert.equal(recovery.fastifyRecovery, recovery)
const app = require('fastify')()
app.register(recovery, { metrics: false })
app.after(() => app.get('/boom', async () => { throw new Error('x') }))
const { capturePanics } = require('fastify-recovery/testing')
app.ready().then(() => {
  const captured = capturePanics(app)
  return app.inject('/boom').then((res) => { console.log('cjs', res.statusCode, res.json().requestId, captured.panics.length) })
})
`

const esm = `
import recovery, { fastifyRecovery } from 'fastify-recovery'
import { capturePanics } from 'fastify-recovery/testing'
import Fastify from 'fastify'
if (recovery !== fastifyRecovery) throw new Error('default and named differ')
const app = Fastify()
await app.register(recovery, { metrics: false })
app.get('/boom', async () => { throw new Error('x') })
const captured = capturePanics(app)
const res = await app.inject('/boom')
console.log('esm', res.statusCode, res.json().requestId, captured.panics.length)
`

const typed = `
import Fastify from 'fastify'
import type { FastifyRecoveryOptions, PanicInfo, PanicReply } from 'fastify-recovery'
const app = Fastify()
const options: FastifyRecoveryOptions = {
  closeConnection: 'auto',
  handler: (info: PanicInfo): PanicReply => ({ statusCode: 503, body: { id: info.requestId } })
}
app.register(recovery, options)
app.register(fastifyRecovery, { metrics: false })
// @ts-expect-error closeConnection is 'auto' or a boolean
app.register(recovery, { closeConnection: 'sometimes' })
app.after(async () => {
  const result: number | undefined = await app.recovery.run(() => 1, { name: 'typed' })
  const reported: PanicInfo = app.recovery.report(new Error('caught'), { name: 'typed' })
  const captured: CapturedPanics = capturePanics(app)
  const first: PanicInfo | undefined = captured.panics[0]
  console.log(result, reported.source, first?.source)
})
`

test(`the packed tarball works next to fastify@${fastifyVersion}: CJS, ESM, .cts and .mts; its types are right`, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-recovery-pack-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  await run(npm, ['pack', '--pack-destination', dir], { cwd: root })
  const [tarball] = (await readdir(dir)).filter((name) => name.endsWith('.tgz'))
  t.ok(tarball, 'npm pack made a tarball')
  const { stdout: listing } = await run('tar', ['-tzf', join(dir, tarball)])
  const files = listing.trim().split('\n').sort()
  t.ok(files.includes('package/dist/index.js'))
  t.ok(files.includes('package/dist/lib/error-handler.js'))
  t.ok(files.includes('package/types/index.d.ts'))
  t.ok(files.includes('package/types/testing.d.ts'))
  t.ok(files.includes('package/dist/testing.js'))
  t.ok(files.includes('package/README.md'))
  t.notOk(files.some((file) => /\.test\.(ts|js)$|\.map$|package\/(lib|test|bench|recipes)\//.test(file)), 'no sources, tests or maps')
  // self-sufficient: the docs the README links to, and the files they link to, ship
  for (const file of ['docs/reference.md', 'docs/log-line.md', 'prometheus/alerts.yml', 'prometheus/grafana-dashboard.json', 'example/cluster.js']) {
    t.ok(files.includes(`package/${file}`), file)
  }

  // exit code 0: no problem in any resolution mode
  const { stdout: report } = await run(process.execPath, [attw, join(dir, tarball), '--format', 'ascii'])
  t.match(report, 'No problems found', 'arethetypeswrong: no problems')

  const consumer = join(dir, 'consumer')
  await run('mkdir', ['-p', consumer])
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball), `fastify@${fastifyVersion}`, '@types/node@20'], { cwd: consumer })

  // what is shipped points at nothing that is not shipped
  const installed = join(consumer, 'node_modules', 'fastify-recovery', 'dist')
  const shipped = (await readdir(installed, { recursive: true })).filter((name) => name.endsWith('.js'))
  for (const name of shipped) t.notMatch(await readFile(join(installed, name), 'utf8'), 'sourceMappingURL', `${name}: no reference to a source map`)

  await writeFile(join(consumer, 'cjs.cjs'), cjs)
  await writeFile(join(consumer, 'esm.mjs'), esm)
  t.equal((await run(process.execPath, ['cjs.cjs'], { cwd: consumer })).stdout.trim(), 'cjs 500 req-1 1')
  t.equal((await run(process.execPath, ['esm.mjs'], { cwd: consumer })).stdout.trim(), 'esm 500 req-1 1')

  await writeFile(join(consumer, 'typed.cts'), `import recovery = require('fastify-recovery')\nimport testing = require('fastify-recovery/testing')\nconst { fastifyRecovery } = recovery\nconst { capturePanics } = testing\ntype CapturedPanics = testing.CapturedPanics\n${typed}`)
  await writeFile(join(consumer, 'typed.mts'), `import recovery, { fastifyRecovery } from 'fastify-recovery'\nimport { capturePanics, type CapturedPanics } from 'fastify-recovery/testing'\n${typed}`)
  await writeFile(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'es2022', strict: true, noEmit: true, types: ['node'] },
    files: ['typed.cts', 'typed.mts']
  }))
  await t.resolves(run(process.execPath, [tsc, '-p', consumer]), 'both consumers type-check')
})
