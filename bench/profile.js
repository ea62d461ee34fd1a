'use strict'

// node bench/profile.js <contender> <path> [seconds]: runs one contender under load with --cpu-prof
// and prints the functions with the most self time (the .cpuprofile is kept for a closer look).

const { fork, spawn } = require('node:child_process')
const { once } = require('node:events')
const { mkdtempSync, readdirSync, readFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

// node_modules/fastify/lib/reply.js -> fastify/lib/reply.js; the project's own files from its root
function where (url) {
  const modules = url.lastIndexOf('node_modules/')
  if (modules !== -1) return url.slice(modules + 'node_modules/'.length)
  return url.replace(/^(file:\/\/)?.*?\/(dist|bench|example)\//, '$2/')
}

async function main () {
  const [contender = 'plugin', path = '/panic', seconds = '5'] = process.argv.slice(2)
  const dir = mkdtempSync(join(tmpdir(), 'fastify-recovery-profile-'))
  const child = fork(join(__dirname, 'server.js'), [contender], {
    execArgv: ['--expose-gc', '--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval', process.env.PROFILE_INTERVAL_US ?? '1000'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  const [{ port }] = await once(child, 'message')
  const wrk = spawn('wrk', ['-t1', '-c50', `-d${seconds}s`, `http://127.0.0.1:${port}${path}`])
  let output = ''
  wrk.stdout.on('data', (chunk) => { output += chunk })
  await once(wrk, 'exit')
  console.log(`requests/s ${/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1]}`)
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? 1)
  child.send('exit')
  await once(child, 'exit')

  const file = join(dir, readdirSync(dir).find((name) => name.endsWith('.cpuprofile')))
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map()
  const interval = (profile.endTime - profile.startTime) / profile.samples.length
  for (const id of profile.samples) {
    const { callFrame } = byId.get(id)
    const key = `${callFrame.functionName || '(anonymous)'} ${where(callFrame.url)}:${callFrame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + interval)
  }
  const total = [...self.values()].reduce((sum, value) => sum + value, 0)
  // the load ran for part of the profile (start-up and shutdown are in it too): µs per request are
  // of the whole profile, an upper bound; the shares are what compares
  console.log(`\n${contender} ${path}: self time, top 30 (profile: ${file}), µs per request of ${requests} requests`)
  for (const [key, micros] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${(100 * micros / total).toFixed(1).padStart(5)}% ${(micros / requests).toFixed(2).padStart(7)} µs  ${key}`)
  }

  // self time by where the code lives: the plugin's modules, each package, Node, V8's own work
  const groups = new Map()
  for (const id of profile.samples) {
    const { url, functionName } = byId.get(id).callFrame
    const group = url.includes('/dist/lib/') || url.includes('/dist/index')
      ? `plugin ${url.slice(url.lastIndexOf('/dist/') + 6)}`
      : url.includes('node_modules/')
        ? url.slice(url.lastIndexOf('node_modules/') + 13).split('/').slice(0, url.includes('node_modules/@') ? 2 : 1).join('/')
        : url.startsWith('node:') ? 'node (its own modules)' : url === '' ? `(${functionName.replace(/[()]/g, '') || 'native'})` : where(url)
    groups.set(group, (groups.get(group) ?? 0) + interval)
  }
  console.log('\nself time by where the code lives, µs per request')
  for (const [group, micros] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${(micros / requests).toFixed(2).padStart(7)} µs  ${group}`)
  }

  // inclusive time of the plugin's and the server's own functions: where the error path goes
  const hits = new Map(profile.nodes.map((node) => [node.id, 0]))
  for (const id of profile.samples) hits.set(id, hits.get(id) + 1)
  const inclusive = new Map()
  const walk = (node, stack) => {
    const { callFrame } = node
    const key = `${callFrame.functionName || '(anonymous)'} ${where(callFrame.url)}:${callFrame.lineNumber + 1}`
    const own = !stack.includes(key)
    let sum = hits.get(node.id)
    for (const child of node.children ?? []) sum += walk(byId.get(child), own ? [...stack, key] : stack)
    if (own && (/\s(dist|bench)\//.test(key) || focus.test(key))) inclusive.set(key, (inclusive.get(key) ?? 0) + sum)
    return sum
  }
  // also these library functions, for comparisons between contenders
  const focus = /^(LOG|asJson|stringify|inc|incWithoutExemplar|send|Reply\.send|onSendHookRunner|routeOptions|get routeOptions|removeHeader|Reply\.removeHeader|writeHead|_storeHeader|end|writePayload|onSendEnd) /
  walk(profile.nodes[0], [])
  console.log('\ninclusive time of the plugin\'s and the bench server\'s functions')
  for (const [key, count] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${(100 * count / profile.samples.length).toFixed(1).padStart(5)}% ${(count * interval / requests).toFixed(2).padStart(7)} µs  ${key}`)
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
