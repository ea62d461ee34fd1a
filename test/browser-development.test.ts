import { test } from 'tap'
import { buildApp, launchChromium, requireProgram } from './helper'

// Contract §13 in a real browser: headless Chromium loads a panicking route of a development
// server; the rendered page shows the error type, a source line of this file and the request id,
// and a <script> in the error's message does not run.

test('Chromium renders the developer page, and runs nothing of the error', async (t) => {
  if (!requireProgram(t, 'chromium', 'apt-get install chromium')) return
  const before = process.env.NODE_ENV
  process.env.NODE_ENV = 'development'
  t.teardown(() => { process.env.NODE_ENV = before })
  const { app } = await buildApp({ development: true })
  app.get('/checkout', async () => {
    throw new TypeError('<script>window.ran = true</script><img src=x onerror="window.ran = true">cannot read total')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launchChromium()
  t.teardown(async () => { await browser.close(); await app.close() })
  const page = await browser.newPage()
  const blocked: string[] = []
  page.on('console', (message) => { if (/Content Security Policy/.test(message.text())) blocked.push(message.text()) })
  const response = await page.goto(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/checkout`)
  t.equal(response?.status(), 500)
  const text = await page.innerText('body')
  t.match(text, 'TypeError')
  t.match(text, '<script>window.ran = true</script>', 'the message shows as text')
  t.match(text, "throw new TypeError('<script>", 'a source line of this test file')
  t.match(text, /request id\s+req-1/)
  t.equal(await page.evaluate('window.ran'), undefined, 'nothing of the message ran')
  t.equal(await page.evaluate('document.querySelectorAll("script, img").length'), 0)
  t.equal(await page.evaluate('getComputedStyle(document.querySelector(".message")).borderLeftStyle'), 'solid', 'its own stylesheet applies under the CSP')
})
