import fastify from 'fastify'
import { expectError, expectType } from 'tsd'
import { capturePanics, type CapturedPanics } from './testing'
import type { PanicInfo } from '.'

const app = fastify()
const captured = capturePanics(app)
expectType<CapturedPanics>(captured)
expectType<PanicInfo[]>(captured.panics)
expectType<void>(captured.clear())
expectType<void>(captured.stop())
expectError(capturePanics())
expectError(capturePanics({}))
// a test that captures before its app exists: nothing captured, nothing thrown
expectType<CapturedPanics>(capturePanics(undefined))
expectType<CapturedPanics>(capturePanics(null))
