import { test } from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { buildApp, listenOnLoopback, sleep } from './helper'

// The client disconnects, then the handler throws: logged and counted once, nothing written, no crash.

test('a client gone before the panic', async (t) => {
  const { app, panics, total } = await buildApp()
  t.teardown(() => app.close())
  let thrown: () => void = () => {}
  const done = new Promise<void>((resolve) => { thrown = resolve })
  app.get('/slow', async (request) => {
    await once(request.raw.socket, 'close')
    setImmediate(thrown)
    throw new Error('too late to tell anyone')
  })
  app.get('/ok', async () => 'ok')
  const port = await listenOnLoopback(app)

  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk) => { received += chunk })
  await once(socket, 'connect')
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(50)
  socket.destroy()
  await done
  await sleep(20)

  t.equal(received, '', 'nothing written')
  t.equal(panics().length, 1)
  t.equal(panics()[0].reqId, 'req-1')
  t.equal(await total(), 1)
  t.equal((await app.inject('/ok')).statusCode, 200, 'no crash, still serving')
})
