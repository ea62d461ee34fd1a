import { test } from 'tap'
import { once } from 'node:events'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import type { PanicMessage } from '../types/index'
import { buildApp, recovery } from './helper'

// Contract §14: a throw (sync or async) in a `{ websocket: true }` route handler is a panic like any
// other — one line (source "request", the route's method and template), one count, the channel —
// and @fastify/websocket still treats the socket as it does (its errorHandler runs). A throw inside a
// socket's message listener reaches neither: the application reports it (the README recipe).

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

test('websocket route handlers that throw or reject are panics; @fastify/websocket\'s errorHandler still runs', async (t) => {
  const { app, panics, count } = await buildApp()
  const handled: string[] = []
  await app.register(websocket, {
    errorHandler: (error, socket) => {
      handled.push((error as Error).message)
      socket.terminate()
    }
  })
  const published: PanicMessage[] = []
  const subscriber = (message: unknown): void => { published.push(message as PanicMessage) }
  subscribe('fastify-recovery.panic', subscriber)
  t.teardown(() => { unsubscribe('fastify-recovery.panic', subscriber) })
  app.get('/sync/:room', { websocket: true }, () => { throw new Error('handler failed after the upgrade') })
  app.get('/async', { websocket: true }, async () => { await new Promise((resolve) => setTimeout(resolve, 5)); throw new TypeError('async handler failed') })
  app.route({ method: 'GET', url: '/both', handler: async () => 'plain http', wsHandler: () => { throw new RangeError('wsHandler failed') } })
  app.get('/fine', { websocket: true }, (socket) => { socket.send('hello') })
  const url = await listen(app)
  t.teardown(() => app.close())

  for (const path of ['/sync/lobby', '/async', '/both']) {
    const socket = new WebSocket(`${url}${path}`)
    await once(socket, 'close')
  }
  const fine = new WebSocket(`${url}/fine`)
  t.equal(String((await once(fine, 'message'))[0]), 'hello', 'a websocket route that does not fail is untouched')
  fine.close()

  t.same(handled, ['handler failed after the upgrade', 'async handler failed', 'wsHandler failed'], '@fastify/websocket\'s errorHandler got each failure, unchanged')
  t.same(panics().map((line) => [line.reqId, line.err?.type, line.panic?.source, line.panic?.method, line.panic?.route]), [
    ['req-1', 'Error', 'request', 'GET', '/sync/:room'],
    ['req-2', 'TypeError', 'request', 'GET', '/async'],
    ['req-3', 'RangeError', 'request', 'GET', '/both']
  ])
  t.notOk('statusCode' in (panics()[0].panic ?? {}), 'nothing was answered: the socket is @fastify/websocket\'s')
  t.equal(await count({ source: 'request', route: '/sync/:room' }), 1)
  t.equal(await count({ source: 'request', route: '/async' }), 1)
  t.equal(published.length, 3, 'each published once')
  t.equal((await app.inject('/both')).body, 'plain http', 'the HTTP handler of a route with a wsHandler is untouched')
})

test('the README recipe: a message listener reports its own failures; the server and other sockets go on', async (t) => {
  const { app, panics, count } = await buildApp()
  await app.register(websocket)
  app.get('/echo', { websocket: true }, (socket, request) => {
    socket.on('message', (data) => {
      try {
        const { text } = JSON.parse(String(data))
        socket.send(text.toUpperCase())
      } catch (error) {
        // the message listener is the application's own: report, answer, keep the socket
        app.recovery.report(error, { request, name: 'echo message' })
        socket.send('error: bad message')
      }
    })
  })
  const url = await listen(app)
  t.teardown(() => app.close())
  const open = async (): Promise<WebSocket> => {
    const socket = new WebSocket(`${url}/echo`)
    await once(socket, 'open')
    return socket
  }
  const next = async (socket: WebSocket): Promise<string> => String((await once(socket, 'message'))[0])
  const alice = await open()
  const bob = await open()
  alice.send(JSON.stringify({ text: 'hello' }))
  t.equal(await next(alice), 'HELLO')
  alice.send('{not json')
  t.equal(await next(alice), 'error: bad message', 'the failing socket is answered and kept')
  bob.send(JSON.stringify({ text: 'still here' }))
  t.equal(await next(bob), 'STILL HERE', 'another socket is unaffected')
  t.match(panics(), [{ panic: { source: 'reported', method: 'GET', route: '/echo', task: 'echo message' }, err: { type: 'SyntaxError' } }])
  t.equal(await count({ source: 'reported' }), 1)
  alice.close()
  bob.close()
  t.equal((await app.inject('/echo')).statusCode, 404, 'plain HTTP still served (a websocket route answers 404 to a non-upgrade request)')
})

test('@fastify/websocket registered before the plugin: a warning that names the fix', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(websocket)
  await app.register(recovery, { metrics: false })
  t.match(lines, [{ level: 40, msg: /register fastify-recovery before @fastify\/websocket/ }])
})
