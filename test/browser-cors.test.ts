import { test } from 'tap'
import Fastify from 'fastify'
import cors from '@fastify/cors'
import { buildApp, launchChromium, requireProgram } from './helper'

// Contract §3, in a real browser: a page on one origin fetches a panicking route and a
// double-fault route on another origin through @fastify/cors, and reads the requestId from the
// JSON. Without the CORS headers on the 500 the browser reports "Failed to fetch" instead.

test('a browser reads the requestId of a panic and of a double fault, cross-origin', async (t) => {
  if (!requireProgram(t, 'chromium', 'apt-get install chromium')) return
  const { app: api, panics } = await buildApp()
  await api.register(cors, { origin: /^http:\/\/127\.0\.0\.1:\d+$/, exposedHeaders: ['x-request-id'] })
  api.get('/boom', async () => { throw new Error('SECRET') })
  api.get('/double', { onSend: async (_request, reply) => { if (reply.statusCode === 500) throw new Error('SECRET hook') } }, async () => { throw new Error('SECRET route') })
  await api.listen({ port: 0, host: 'localhost' })
  const apiOrigin = `http://localhost:${(api.server.address() as { port: number }).port}`

  const site = Fastify()
  site.get('/', async (_request, reply) => reply.type('text/html').send(`<!doctype html><pre id="out">pending</pre><script>
    (async () => {
      const results = {}
      for (const path of ['/boom', '/double']) {
        try {
          const res = await fetch(${JSON.stringify(apiOrigin)} + path)
          const body = await res.json()
          results[path] = { status: res.status, requestId: body.requestId, header: res.headers.get('x-request-id'), message: body.message }
        } catch (error) {
          results[path] = { error: String(error) }
        }
      }
      document.getElementById('out').textContent = JSON.stringify(results)
    })()
  </script>`))
  await site.listen({ port: 0, host: '127.0.0.1' })
  const siteOrigin = `http://127.0.0.1:${(site.server.address() as { port: number }).port}`

  const browser = await launchChromium()
  t.teardown(async () => { await browser.close(); await site.close(); await api.close() })
  const page = await browser.newPage()
  await page.goto(`${siteOrigin}/`)
  await page.waitForFunction('document.getElementById("out").textContent !== "pending"')
  const read = JSON.parse(await page.textContent('#out') as string)
  const ids = panics().map((line) => line.reqId)
  t.equal(ids.length, 2)
  t.same(read['/boom'], { status: 500, requestId: ids[0], header: ids[0], message: 'Internal Server Error' })
  t.same(read['/double'], { status: 500, requestId: ids[1], header: ids[1], message: 'Internal Server Error' })
})
