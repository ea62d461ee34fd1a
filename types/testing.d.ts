import type { FastifyInstance } from 'fastify'
import type { PanicInfo } from './index'

/** What `capturePanics` collects. */
export interface CapturedPanics {
  /** Every panic the app (and its child scopes) recorded since `capturePanics`, in order, of every source. */
  readonly panics: PanicInfo[]
  /** Empties `panics`. */
  clear (): void
  /** Stops collecting. */
  stop (): void
}

/**
 * Collects the panics `app` records from now on (its child scopes' included, no other instance's),
 * until `stop()` or until the app closes. Works with any test runner. Given no instance (`undefined`,
 * `null`), it captures nothing and throws nothing.
 */
export declare function capturePanics (app: FastifyInstance | undefined | null): CapturedPanics
