import { test } from 'tap'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'

// The benchmark must keep running with one command. This runs it for a moment and checks that it
// measures every contender and prints its tables; the numbers themselves are never asserted.

const run = promisify(execFile)

test('npm run bench runs every scenario and prints its tables', async (t) => {
  const { stdout } = await run(process.execPath, [
    resolve(__dirname, '..', 'bench', 'run.js'), '--rounds', '1', '--duration', '1', '--warmup', '0', '--panics', '2000'
  ], { cwd: resolve(__dirname, '..'), timeout: 120_000 })
  t.match(stdout, /^Node v\d+/)
  for (const contender of ['bare', 'plugin', 'plugin-process', 'naive', 'plugin-nodedupe', 'handwritten-stack', 'default', 'handwritten', 'limit', 'plugin-close']) {
    t.match(stdout, new RegExp(`\\| ${contender} \\| [\\d,]+ \\|`), contender)
  }
  t.match(stdout, /\| happy path, GET \/ok \| plugin \| [\d,]+ \| [^|]+ \| [\d.]+ vs bare \| [\d.]+ \| [\d.]+ vs bare \| ≥ 0\.98: (met|NOT met), CPU (met|NOT met) \|/)
  t.match(stdout, /\| distinct messages, an id in each \| plugin \| [\d,]+ \|/)
  t.match(stdout, /\| panic storm, one failure repeated \| plugin-sampled \| [\d,]+ \|/)
  t.match(stdout, /\| after 2,000 panics, distinct messages \| RSS \(MB\) \| heap used \(MB\) \|/)
  t.match(stdout, /\| naive \| [\d.]+ \| [\d.]+ \|/)
  t.match(stdout, /\| plugin \| [\d.]+ \| [\d.]+ \|/)
})
