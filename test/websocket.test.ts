import { test } from 'tap'
import { once } from 'node:events'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import { buildApp } from './helper'

// The README recipe: a @fastify/websocket route whose message handler and plugin errorHandler
// report through app.recovery.report. A throw there reaches neither Fastify's error handler nor
// onError, so without it the failure is neither in the panic lines nor in the counter.

test('a websocket handler that fails reports it: one line, one count, the server and other sockets go on', async (t) => {
  const { app, panics, count } = await buildApp()
  await app.register(websocket, {
    // errors thrown by the route handler once the connection is established
    errorHandler: (error, socket, request) => {
      app.recovery.report(error, { request, name: 'websocket' })
      socket.terminate()
    }
  })
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
  app.get('/broken', { websocket: true }, () => { throw new Error('handler failed after the upgrade') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const open = async (path: string): Promise<WebSocket> => {
    const socket = new WebSocket(`${url}${path}`)
    await once(socket, 'open')
    return socket
  }
  const next = async (socket: WebSocket): Promise<string> => String((await once(socket, 'message'))[0])

  const alice = await open('/echo')
  const bob = await open('/echo')
  alice.send(JSON.stringify({ text: 'hello' }))
  t.equal(await next(alice), 'HELLO')
  alice.send('{not json')
  t.equal(await next(alice), 'error: bad message', 'the failing socket is answered and kept')
  bob.send(JSON.stringify({ text: 'still here' }))
  t.equal(await next(bob), 'STILL HERE', 'another socket is unaffected')
  alice.send(JSON.stringify({ text: 'again' }))
  t.equal(await next(alice), 'AGAIN')

  const broken = new WebSocket(`${url}/broken`)
  await once(broken, 'close')
  t.equal(panics().length, 2)
  t.match(panics()[0], { panic: { source: 'reported', method: 'GET', route: '/echo', task: 'echo message' }, err: { type: 'SyntaxError' } })
  t.match(panics()[1], { panic: { source: 'reported', route: '/broken', task: 'websocket' }, err: { message: 'handler failed after the upgrade' } })
  t.equal(await count({ source: 'reported' }), 2)
  alice.close()
  bob.close()
  t.equal((await app.inject('/echo')).statusCode, 404, 'plain HTTP still served (a websocket route answers 404 to a non-upgrade request)')
})
