'use strict'

// node bench/instructions.js [--warm 5000] [--requests 2000] <path> <contender...>
// Instructions per request, counted by valgrind's callgrind: the same count for the same build and
// input whatever else the machine is doing, where throughput on a small shared VM moves by ±20%.
// Each contender serves `requests` injected requests after `warm` unmeasured ones (so that V8 has
// compiled what it will), in a process run once with and once without them: the difference,
// divided by `requests`, is what a request costs. V8 runs single-threaded (its compilers too), so
// the count is repeatable; light-my-request's own work is in every contender's count alike.
// BENCH_PREVIOUS works as in bench/run.js (the `previous` contenders).

const { execFileSync, spawnSync } = require('node:child_process')
const { mkdtempSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { parseArgs } = require('node:util')

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    warm: { type: 'string', default: '5000' },
    requests: { type: 'string', default: '2000' },
    child: { type: 'boolean', default: false }
  }
})

async function child () {
  const { build } = require('./server')
  const [path, name, count] = positionals
  const app = await build(name, { dest: '/dev/null', sync: true })
  await app.ready()
  for (let i = 0; i < Number(args.warm) + Number(count); i++) await app.inject(path)
  await app.close()
}

function instructions (path, name, count) {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-recovery-callgrind-'))
  try {
    const run = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'out')}`,
      process.execPath, '--single-threaded', __filename, '--child', '--warm', args.warm, path, name, String(count)], { encoding: 'utf8' })
    const collected = /Collected : (\d+)/.exec(run.stderr)
    if (run.status !== 0 || collected === null) throw new Error(`valgrind failed for ${name}: ${run.stderr.slice(-2000)}`)
    return Number(collected[1])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function main () {
  const [path, ...names] = positionals
  if (path === undefined || names.length === 0) throw new Error('usage: node bench/instructions.js [--warm N] [--requests N] <path> <contender...>')
  execFileSync('valgrind', ['--version'])
  const requests = Number(args.requests)
  const results = []
  for (const name of names) {
    const per = (instructions(path, name, requests) - instructions(path, name, 0)) / requests
    results.push([name, per])
    console.log(`${name.padEnd(20)} ${Math.round(per).toLocaleString('en-US').padStart(10)} instructions per request  ${(per / results[0][1]).toFixed(3)}× ${results[0][0]}`)
  }
}

if (args.child) {
  child().catch((error) => {
    console.error(error)
    process.exit(1)
  })
} else {
  main()
}
