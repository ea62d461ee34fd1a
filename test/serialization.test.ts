import { test } from 'tap'
import { buildApp, genericBody } from './helper'

// A reply that cannot be serialized fails after the handler returned: the error reaches the
// plugin with the serializer's message (which names the data), and must not reach the client.

const cases: Array<[string, () => unknown, object?]> = [
  ['a circular object', () => { const o: Record<string, unknown> = { name: 'x' }; o.self = o; return o }],
  ['a BigInt', () => ({ total: 10n })],
  ['a toJSON that throws', () => ({ toJSON () { throw new Error('toJSON secret') } })],
  ['a response schema the data does not meet', () => ({ id: 'x' }), { response: { 200: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } }]
]

for (const [name, reply, schema] of cases) {
  test(`serialization failure: ${name}`, async (t) => {
    const { app, panics, count } = await buildApp()
    t.teardown(() => app.close())
    app.get('/data', { schema }, async () => reply())
    const res = await app.inject('/data')
    t.equal(res.statusCode, 500)
    t.equal(res.body, genericBody('req-1'))
    t.equal(panics().length, 1)
    t.equal(await count({ route: '/data', source: 'request' }), 1)
  })
}

test('a custom reply serializer that throws', async (t) => {
  const { app, total } = await buildApp()
  t.teardown(() => app.close())
  app.setReplySerializer(() => { throw new Error('serializer secret') })
  app.get('/data', async () => ({ ok: true }))
  const res = await app.inject('/data')
  t.equal(res.statusCode, 500)
  t.equal(res.body, genericBody('req-1'), 'the panic reply does not go through the failing serializer')
  t.equal(await total(), 1)
})
