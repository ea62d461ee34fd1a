'use strict'

// npm run bench [-- --rounds 5 --duration 10 --warmup 3 --connections 50 --generator wrk|autocannon --only happy|error|distinct|storm|memory --no-pin]
// BENCH_PREVIOUS=<path of an earlier build's dist/index.js> adds it to each scenario, so a change is
// measured against what it replaces in the same run.
//
// Each contender runs as its own process on loopback (bench/server.js) and is driven by a load
// generator: wrk when installed (it leaves more of the CPU to the server), else autocannon.
// Contenders of a scenario run alternately, round after round (A B C A B C ...), each after a
// warm-up that is not measured. The table shows the median of the rounds and its ratio to the
// scenario's baseline, for throughput and for the server's CPU time per request (read from /proc:
// on a small shared machine throughput moves by ±20% between rounds, the CPU a request costs much
// less). Ratios, not absolute numbers, are what carries over between machines.

const { execFileSync, fork, spawn } = require('node:child_process')
const { once } = require('node:events')
const os = require('node:os')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { parseArgs } = require('node:util')
const autocannon = require('autocannon')

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    generator: { type: 'string' },
    only: { type: 'string' },
    panics: { type: 'string', default: '100000' },
    // parseArgs has no negated options on Node 20
    'no-pin': { type: 'boolean', default: false }
  }
})

const rounds = Number(args.rounds)
const duration = Number(args.duration)
const warmup = Number(args.warmup)
const connections = Number(args.connections)
const generator = args.generator ?? (hasWrk() ? 'wrk' : 'autocannon')

// an earlier build, measured in the same run as this one
const ifPrevious = (...items) => process.env.BENCH_PREVIOUS === undefined ? [] : items

// targets: the ratio of the contender's throughput to the baseline's, and of the baseline's CPU per
// request to the contender's (≥ 1: the contender costs less)
const scenarios = [
  {
    id: 'happy',
    name: 'happy path, GET /ok',
    path: '/ok',
    baseline: 'bare',
    contenders: ['bare', 'plugin', 'plugin-process', ...ifPrevious('previous')],
    targets: { plugin: 0.98 }
  },
  {
    id: 'error',
    name: 'error path, every stack logged',
    path: '/panic',
    baseline: 'naive',
    contenders: ['naive', 'plugin-nodedupe', 'handwritten-stack', 'default', ...ifPrevious('previous-nodedupe')],
    targets: { 'plugin-nodedupe': 1.0 }
  },
  {
    id: 'distinct',
    name: 'distinct messages, an id in each',
    path: '/order',
    baseline: 'naive',
    contenders: ['naive', 'plugin', ...ifPrevious('previous')],
    targets: { plugin: 1.0 }
  },
  {
    id: 'storm',
    name: 'panic storm, one failure repeated',
    path: '/panic',
    baseline: 'naive',
    contenders: ['naive', 'plugin', 'plugin-sampled', 'handwritten', 'limit', 'plugin-close', ...ifPrevious('previous')],
    targets: { plugin: 1.4, 'plugin-sampled': 1.5 }
  }
]

function hasTaskset () {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function hasWrk () {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (error) {
    return error.status === 1 // wrk --version prints its version and exits with 1
  }
}

// Pinned (the default; --no-pin to leave placement to the scheduler): the server (and its threads)
// on CPU 0, the load generator on CPU 1, so every contender gets the same placement. Unpinned on this
// 2-core machine, a contender sharing a core with wrk read 0.8× bare on the happy path in some runs
// and 1.0× in others, for the same build.
const pin = !args['no-pin'] && process.platform === 'linux' && hasTaskset()

async function startServer (contender) {
  const child = fork(join(__dirname, 'server.js'), [contender], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  if (pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(child.pid)], { stdio: 'ignore' })
  const [message] = await once(child, 'message')
  return { child, port: message.port }
}

async function stopServer ({ child }) {
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

async function load (port, path, seconds) {
  const url = `http://127.0.0.1:${port}${path}`
  if (generator === 'wrk') {
    const command = ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, url]
    const wrk = pin ? spawn('taskset', ['-c', '1', ...command]) : spawn(command[0], command.slice(1))
    let output = ''
    wrk.stdout.on('data', (chunk) => { output += chunk })
    const [code] = await once(wrk, 'exit')
    const rate = /Requests\/sec:\s+([\d.]+)/.exec(output)
    const requests = /(\d+) requests in/.exec(output)
    const errors = /Socket errors: (.*)/.exec(output)
    if (code !== 0 || rate === null || requests === null) throw new Error(`wrk failed:\n${output}`)
    return { rate: Number(rate[1]), requests: Number(requests[1]), errors: errors === null ? 0 : errors[1] }
  }
  const result = await autocannon({ url, connections, duration: seconds })
  return { rate: result.requests.average, requests: result.requests.total, errors: result.errors + result.timeouts }
}

// The server's CPU time so far (user + system, in µs), from /proc: it counts the server's own work,
// whatever the load generator and the rest of the machine do meanwhile.
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100)
function cpuTimeOf (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are the 14th and 15th fields of the line, the 12th and 13th after the name
  return (Number(fields[11]) + Number(fields[12])) * TICK_US
}

function median (numbers) {
  const sorted = [...numbers].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

async function measure (scenario) {
  const rates = Object.fromEntries(scenario.contenders.map((name) => [name, []]))
  const cpus = Object.fromEntries(scenario.contenders.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    // A B C, then B C A, ...: alternate, and let no contender always go first
    const order = scenario.contenders.map((_, i) => scenario.contenders[(i + round) % scenario.contenders.length])
    for (const name of order) {
      const server = await startServer(name)
      if (warmup > 0) await load(server.port, scenario.path, warmup)
      const before = cpuTimeOf(server.child.pid)
      const { rate, requests, errors } = await load(server.port, scenario.path, duration)
      const cpu = (cpuTimeOf(server.child.pid) - before) / requests
      await stopServer(server)
      if (errors !== 0) process.stderr.write(`  ${name}: socket errors ${errors}\n`)
      rates[name].push(rate)
      cpus[name].push(cpu)
      process.stderr.write(`  ${scenario.id} round ${round + 1}/${rounds} ${name}: ${Math.round(rate)} req/s, ${cpu.toFixed(1)} µs CPU/request\n`)
    }
  }
  return Object.fromEntries(scenario.contenders.map((name) => [name, { median: median(rates[name]), list: rates[name], cpu: median(cpus[name]), cpus: cpus[name] }]))
}

async function measureMemory (contender, panics) {
  const server = await startServer(contender)
  const url = `http://127.0.0.1:${server.port}`
  await autocannon({ url: `${url}/distinct`, connections, amount: panics })
  // the asynchronous log destination may still hold a backlog of lines right after the burst:
  // measure what stays, once it has drained
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const memory = await (await fetch(`${url}/__memory`)).json()
  await stopServer(server)
  return memory
}

function row (cells) {
  return `| ${cells.join(' | ')} |`
}

async function main () {
  const started = new Date()
  const lines = []
  lines.push(`Node ${process.version}, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'} × ${os.availableParallelism()}, ` +
    `${os.platform()} ${os.release()}, ${started.toISOString().slice(0, 10)}; ${generator} -c${connections}, ` +
    `${rounds} rounds of ${duration} s after ${warmup} s of warm-up, each contender in its own process${pin ? ', the server pinned to CPU 0 and the load generator to CPU 1' : ''}.`)
  const measured = scenarios.filter((scenario) => args.only === undefined || args.only === scenario.id)
  if (measured.length > 0) {
    lines.push('')
    lines.push(row(['scenario', 'contender', 'req/s (median)', 'rounds', 'ratio', 'CPU µs/request (median)', 'CPU ratio', 'target']))
    lines.push(row(['---', '---', '---:', '---', '---:', '---:', '---:', '---']))
  }

  for (const scenario of measured) {
    process.stderr.write(`${scenario.name}\n`)
    const results = await measure(scenario)
    const { median: base, cpu: baseCpu } = results[scenario.baseline]
    for (const name of scenario.contenders) {
      const { median: value, list, cpu } = results[name]
      const target = scenario.targets[name]
      const ratio = value / base
      const cpuRatio = baseCpu / cpu
      const verdict = target === undefined ? '' : `≥ ${target.toFixed(2)}: ${ratio >= target ? 'met' : 'NOT met'}, CPU ${cpuRatio >= target ? 'met' : 'NOT met'}`
      lines.push(row([
        scenario.name,
        name,
        Math.round(value).toLocaleString('en-US'),
        list.map((rate) => Math.round(rate / 100) / 10 + 'k').join(' '),
        name === scenario.baseline ? '1.00 (baseline)' : `${ratio.toFixed(2)} vs ${scenario.baseline}`,
        cpu.toFixed(1),
        name === scenario.baseline ? '1.00 (baseline)' : `${cpuRatio.toFixed(2)} vs ${scenario.baseline}`,
        verdict
      ]))
    }
  }

  if (args.only === undefined || args.only === 'memory') {
    const panics = Number(args.panics)
    process.stderr.write(`memory after ${panics} panics with distinct messages\n`)
    lines.push('')
    lines.push(row([`after ${panics.toLocaleString('en-US')} panics, distinct messages`, 'RSS (MB)', 'heap used (MB)']))
    lines.push(row(['---', '---:', '---:']))
    for (const name of ['naive', 'plugin']) {
      const memory = await measureMemory(name, panics)
      lines.push(row([name, (memory.rss / 1048576).toFixed(1), (memory.heapUsed / 1048576).toFixed(1)]))
    }
  }

  process.stdout.write(lines.join('\n') + '\n')
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
