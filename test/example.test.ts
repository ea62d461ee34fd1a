import { test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'

// The README's `npm start` runs this demo; it must work as described.

test('the demo server', async (t) => {
  const server = spawn(process.execPath, [resolve(__dirname, '..', 'example', 'server.js')], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { server.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  let buffered = ''
  const listening = new Promise<string>((resolve) => {
    server.stdout.setEncoding('utf8')
    server.stdout.on('data', (chunk: string) => {
      buffered += chunk
      let newline
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = JSON.parse(buffered.slice(0, newline))
        buffered = buffered.slice(newline + 1)
        lines.push(line)
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line.msg)
        if (match) resolve(match[1])
      }
    })
  })
  const base = await listening

  const expectations: Array<[string, number]> = [
    ['/', 200], ['/ok', 200], ['/users/1', 200], ['/users/2', 404],
    ['/panic/sync', 500], ['/panic/async', 500], ['/panic/not-an-error', 500], ['/panic/hook', 500],
    ['/panic/serialize', 500], ['/panic/background', 202]
  ]
  for (const [path, status] of expectations) {
    const res = await fetch(base + path)
    t.equal(res.status, status, path)
    const body = await res.text()
    if (status === 500) t.notMatch(body, /hunter2|quota|BigInt|threw a string|undefined/, `${path} leaks nothing`)
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  const metrics = await (await fetch(base + '/metrics')).text()
  t.match(metrics, 'fastify_panics_total{method="GET",route="/panic/sync",source="request"} 1')
  t.match(metrics, 'fastify_panics_total{method="GET",route="/panic/background",source="background"} 1')
  t.match(metrics, 'fastify_panics_total{method="GET",route="/users/:id",source="request"} 0')
  t.equal(lines.filter((line) => line.msg === 'panic recovered').length, 6)

  server.kill('SIGTERM')
  const [code] = await once(server, 'exit')
  t.equal(code, 0, 'shuts down cleanly')
})

test('the demo with NODE_ENV=development: the developer page is on and says so', async (t) => {
  const server = spawn(process.execPath, [resolve(__dirname, '..', 'example', 'server.js')], {
    env: { ...process.env, PORT: '0', NODE_ENV: 'development' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { server.kill('SIGKILL') })
  let output = ''
  const base = await new Promise<string>((resolve) => {
    server.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match) resolve(match[1])
    })
  })
  const index = await (await fetch(base + '/')).json() as { developerPage: string }
  t.match(index.developerPage, /^on \(NODE_ENV=development\)/)
  const page = await fetch(base + '/panic/sync', { headers: { accept: 'text/html' } })
  t.equal(page.status, 500)
  t.match(await page.text(), '<span class="type">TypeError</span>')
  // the page shows the message, credentials redacted as on the line
  const secret = await fetch(base + '/panic/async', { headers: { accept: 'text/html' } })
  const html = await secret.text()
  t.match(html, 'database connection lost: postgres://orders:[redacted]@db:5432/orders')
  t.notMatch(html, 'hunter2', 'the demo\'s password is not on the developer page')
  const json = await (await fetch(base + '/panic/async')).text()
  t.notMatch(json, 'hunter2')
})
