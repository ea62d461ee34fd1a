'use strict'

// node bench/cpu.js <path> <contender...>: server CPU time per request under a fixed load, a steadier
// measure than throughput on a small machine (the load generator competes for the same cores).

const { fork, spawn } = require('node:child_process')
const { once } = require('node:events')
const { join } = require('node:path')

async function cpuPerRequest (contender, path, seconds) {
  const child = fork(join(__dirname, 'server.js'), [contender], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const [{ port }] = await once(child, 'message')
  const run = async (s) => {
    const wrk = spawn('wrk', ['-t1', '-c50', `-d${s}s`, `http://127.0.0.1:${port}${path}`])
    let out = ''
    wrk.stdout.on('data', (chunk) => { out += chunk })
    await once(wrk, 'exit')
    return Number(/(\d+) requests in/.exec(out)[1])
  }
  await run(2)
  child.send('cpu')
  const [before] = await once(child, 'message')
  const requests = await run(seconds)
  child.send('cpu')
  const [after] = await once(child, 'message')
  child.kill('SIGKILL')
  return (after - before) / requests
}

async function main () {
  const [path, ...contenders] = process.argv.slice(2)
  const results = Object.fromEntries(contenders.map((name) => [name, []]))
  for (let round = 0; round < 3; round++) {
    for (const name of contenders) results[name].push(await cpuPerRequest(name, path, 4))
  }
  for (const [name, list] of Object.entries(results)) {
    console.log(`${name.padEnd(16)} ${list.map((us) => us.toFixed(1)).join(' ')} µs CPU per request`)
  }
}

main()
