'use strict'

// The README's NestJS recipe with the real NestJS: a global exception filter reports what is not an
// HttpException, and the plugin composes with Nest's own root error handler. The app runs in a
// process of its own (app.js), as an application would.

const { test } = require('node:test')
const assert = require('node:assert')
const { execFileSync } = require('node:child_process')
const { join } = require('node:path')

const SECRET = 'CANARY-framework-77aa'
const genericBody = (requestId) => JSON.stringify({ statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error', requestId })

test('NestJS on platform-fastify: a global exception filter reports, the plugin composes with Nest\'s own error handler', () => {
  const output = execFileSync(process.execPath, [join(__dirname, 'app.js'), SECRET], { encoding: 'utf8' })
  const { failed, missing, hooked, panics, reported, warnings } = JSON.parse(output)
  assert.equal(failed.statusCode, 500)
  assert.equal(failed.body, genericBody('req-1'))
  assert.equal(missing.statusCode, 404)
  assert.equal(JSON.parse(missing.body).message, 'no such coupon')
  assert.equal(hooked.statusCode, 500)
  assert.equal(hooked.body, genericBody('req-3'), 'Nest\'s error handler, in front of the plugin\'s, runs the filter')
  assert.equal(panics.length, 2)
  assert.equal(panics[0].reqId, 'req-1')
  assert.equal(panics[0].err.message, 'orders db secret=[redacted] unreachable')
  assert.deepEqual([panics[0].panic.source, panics[0].panic.task], ['reported', 'nest'])
  assert.equal(panics[1].reqId, 'req-3')
  assert.equal(panics[1].err.message, `hook ${SECRET}`)
  assert.equal(reported, 2)
  assert.deepEqual(warnings.filter((code) => code === 'FSTWRN004'), [], 'Nest\'s setErrorHandler after the plugin: no warning')
  assert.doesNotMatch(failed.body, new RegExp(SECRET))
})
