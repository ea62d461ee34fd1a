import { test } from 'tap'
import { Fingerprints, messageShape } from '../lib/fingerprint'

const fingerprints = new Fingerprints()
const fingerprintOf = (...parts: [string, string, string, string, string]): string => fingerprints.of(...parts)

test('variable parts of a message do not change its shape', async (t) => {
  t.equal(messageShape('user 12 not found'), 'user # not found')
  t.equal(messageShape('user 12 not found'), messageShape('user 7 not found'))
  t.equal(messageShape('order 550e8400-e29b-41d4-a716-446655440000 failed'), messageShape('order 123e4567-e89b-12d3-a456-426614174000 failed'))
  t.equal(messageShape('timeout after 1500ms on 0x1f'), 'timeout after # on #')
  t.not(messageShape('user not found'), messageShape('order not found'))
})

test('only the head of a huge message is shaped', async (t) => {
  t.equal(messageShape('a'.repeat(1_000_000)).length, 200)
})

test('same failure, same fingerprint; other route, type, source or method, another', async (t) => {
  const base = fingerprintOf('request', 'GET', '/users/:id', 'TypeError', 'cannot read id of 12')
  t.match(base, /^[0-9a-f]{12}$/)
  t.equal(fingerprintOf('request', 'GET', '/users/:id', 'TypeError', 'cannot read id of 99'), base)
  t.not(fingerprintOf('request', 'GET', '/orders/:id', 'TypeError', 'cannot read id of 12'), base)
  t.not(fingerprintOf('request', 'GET', '/users/:id', 'RangeError', 'cannot read id of 12'), base)
  t.not(fingerprintOf('background', 'GET', '/users/:id', 'TypeError', 'cannot read id of 12'), base)
  t.not(fingerprintOf('request', 'POST', '/users/:id', 'TypeError', 'cannot read id of 12'), base)
})
