'use strict'

// `npm run lint`'s check of the house's imports (issue 27): no circle among the project's own modules,
// and the opt-in features depend on the core, never the core on them — each is wired by index.ts only.
const madge = require('madge')

const OPT_IN = ['lib/process.ts', 'lib/development-page.ts', 'lib/log-sampling.ts', 'lib/span.ts']

async function main () {
  const graph = await madge(['index.ts', 'testing.ts', 'lib'], { fileExtensions: ['ts'] })
  const problems = graph.circular().map((circle) => `an import circle: ${circle.join(' -> ')}`)
  for (const [file, imports] of Object.entries(graph.obj())) {
    if (file === 'index.ts') continue
    for (const imported of imports) {
      if (OPT_IN.includes(imported)) problems.push(`${file} imports ${imported}: an opt-in feature is wired by index.ts only`)
    }
  }
  if (problems.length > 0) {
    console.error(problems.join('\n'))
    process.exit(1)
  }
  console.log(`imports: ${Object.keys(graph.obj()).length} modules, no circle, no core module importing an opt-in feature`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
