import { test, type Test } from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { PassThrough, Readable } from 'node:stream'
import { buildApp, genericBody, rawRequest, sleep, type TestApp } from './helper'

// A stream failing before the headers went out gets the generic 500; after, the connection is
// destroyed (no clean end), and the failure is logged with the reqId and counted once as "response".

function failingNodeStream (chunksBeforeFailure: number): Readable {
  let sent = 0
  return new Readable({
    read () {
      if (sent < chunksBeforeFailure) {
        sent++
        this.push(`chunk ${sent}\n`)
      } else {
        setTimeout(() => this.destroy(new Error('disk read failed: /secret/path')), 10)
      }
    }
  })
}

function failingWebStream (chunksBeforeFailure: number): ReadableStream {
  let sent = 0
  return new ReadableStream({
    async pull (controller) {
      if (sent < chunksBeforeFailure) {
        sent++
        controller.enqueue(new TextEncoder().encode(`chunk ${sent}\n`))
      } else {
        await sleep(10)
        controller.error(new Error('upstream reset: /secret/path'))
      }
    }
  })
}

async function serve (t: Test, setup: (built: TestApp) => void): Promise<{ built: TestApp, port: number }> {
  const built = await buildApp()
  t.teardown(() => built.app.close())
  setup(built)
  built.app.get('/ok', async () => 'ok')
  await built.app.listen({ port: 0, host: '127.0.0.1' })
  return { built, port: (built.app.server.address() as { port: number }).port }
}

const kinds: Array<[string, (chunks: number) => unknown]> = [
  ['Node stream', failingNodeStream],
  ['web ReadableStream', failingWebStream],
  ['Response with a failing body', (chunks) => new Response(failingWebStream(chunks), { status: 200, headers: { 'content-type': 'text/plain' } })]
]

for (const [kind, make] of kinds) {
  test(`${kind} failing before the headers: generic 500, counted once as "request"`, async (t) => {
    const { built, port } = await serve(t, ({ app }) => {
      app.get('/stream', async (_request, reply) => reply.type('text/plain').send(make(0)))
    })
    const res = await rawRequest(port, ['GET /stream HTTP/1.1\r\nHost: x\r\n\r\n'])
    t.equal(res.statusCode, 500)
    t.equal(res.body, genericBody('req-1'))
    t.equal(await built.count({ source: 'request', route: '/stream' }), 1)
    t.equal(await built.total(), 1)
    t.equal(built.panics().length, 1)
  })

  test(`${kind} failing after the headers: connection destroyed, logged and counted once as "response"`, async (t) => {
    const { built, port } = await serve(t, ({ app }) => {
      app.get('/stream', async (_request, reply) => reply.type('text/plain').send(make(2)))
    })
    const res = await rawRequest(port, ['GET /stream HTTP/1.1\r\nHost: x\r\n\r\n'], 1000)
    t.equal(res.statusCode, 200)
    t.ok(res.closed, 'the connection is destroyed')
    t.match(res.body, 'chunk 2')
    t.notMatch(res.body, /0\r\n\r\n$/, 'no terminating chunk: the client sees a broken response')
    t.notMatch(res.body, /secret|Internal Server Error/)
    await sleep(20)
    const lines = built.panics()
    t.equal(lines.length, 1)
    t.equal(lines[0].reqId, 'req-1')
    t.match(lines[0].panic, { source: 'response', route: '/stream', statusCode: 200 })
    t.match(lines[0].err?.message, /secret\/path/, 'the log has the details')
    t.equal(await built.count({ source: 'response', route: '/stream', method: 'GET' }), 1)
    t.equal(await built.total(), 1)
    t.equal((await rawRequest(port, ['GET /ok HTTP/1.1\r\nHost: x\r\n\r\n'])).statusCode, 200, 'still serving')
  })
}

test('streams that end well are left alone', async (t) => {
  const { built, port } = await serve(t, ({ app }) => {
    app.get('/node', async (_request, reply) => reply.type('text/plain').send(Readable.from(['a', 'b'])))
    app.get('/web', async (_request, reply) => reply.type('text/plain').send(new Blob(['web body']).stream()))
    app.get('/response', async () => new Response('from a Response', { headers: { 'content-type': 'text/plain' } }))
    app.get('/empty', async () => new Response(null, { status: 204 }))
  })
  // how Node groups the chunks varies (Node 24 writes 'ab' as one): the decoded body and its last chunk are what matter
  t.same(dechunked((await rawRequest(port, ['GET /node HTTP/1.1\r\nHost: x\r\n\r\n'])).body), { data: 'ab', complete: true })
  t.match((await rawRequest(port, ['GET /web HTTP/1.1\r\nHost: x\r\n\r\n'])).body, 'web body')
  t.match((await rawRequest(port, ['GET /response HTTP/1.1\r\nHost: x\r\n\r\n'])).body, 'from a Response')
  t.equal((await rawRequest(port, ['GET /empty HTTP/1.1\r\nHost: x\r\n\r\n'])).statusCode, 204)
  t.equal(await built.total(), 0)
})

/** A chunked body decoded, and whether it ended with its last (empty) chunk. */
function dechunked (body: string): { data: string, complete: boolean } {
  let data = ''
  for (let at = 0; at < body.length;) {
    const end = body.indexOf('\r\n', at)
    if (end === -1) break
    const size = parseInt(body.slice(at, end), 16)
    if (size === 0) return { data, complete: body.slice(end) === '\r\n\r\n' }
    data += body.slice(end + 2, end + 2 + size)
    at = end + 2 + size + 2
  }
  return { data, complete: false }
}

/** Starts a download, reads its first bytes, and disconnects. */
async function disconnectMidDownload (port: number, path: string): Promise<void> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  await once(socket, 'data')
  socket.destroy()
  await sleep(100)
}

test('a client that disconnects mid-download is not a panic', async (t) => {
  let source: PassThrough | undefined
  const { built, port } = await serve(t, ({ app }) => {
    app.get('/download', async (_request, reply) => {
      source = new PassThrough()
      source.write('x'.repeat(64 * 1024))
      return reply.type('application/octet-stream').send(source)
    })
  })
  await disconnectMidDownload(port, '/download')
  t.ok(source?.destroyed, 'Fastify destroyed the source')
  t.equal(await built.total(), 0)
  t.equal(built.panics().length, 0)
})

test('a client that disconnects mid web-stream download cancels the source, no panic', async (t) => {
  let cancelled: unknown
  const { built, port } = await serve(t, ({ app }) => {
    app.get('/web-download', async (_request, reply) => {
      const source = new ReadableStream({
        pull (controller) { controller.enqueue(new Uint8Array(16 * 1024)) },
        cancel (reason) { cancelled = reason ?? 'cancelled' }
      })
      return reply.type('application/octet-stream').send(source)
    })
  })
  await disconnectMidDownload(port, '/web-download')
  t.ok(cancelled, 'the source was cancelled through the watcher')
  t.equal(await built.total(), 0)
})
