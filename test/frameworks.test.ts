import { test } from 'tap'
import { GraphQLError } from 'graphql'
import mercurius from 'mercurius'
import { initTRPC, TRPCError } from '@trpc/server'
import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify'
import type { FastifyRequest } from 'fastify'
import { buildApp } from './helper'

// Frameworks on Fastify that answer their own errors — mercurius resolvers, tRPC procedures (NestJS
// controllers: recipes/nestjs, whose NestJS 12 needs Node 22) — so the plugin never sees them, and mercurius and tRPC send the thrown message (tRPC
// the stack too) to the client. The README's recipes, each with the real package: the failure is
// recorded (`report`: one line, one count, the request's reqId) and its message kept from the client.

const SECRET = 'CANARY-framework-77aa'

test('mercurius: an errorFormatter that reports resolver failures and keeps their message from the client', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  // the README recipe
  await app.register(mercurius, {
    schema: 'type Query { order(id: Int!): String, coupon: String, fine: String }',
    resolvers: {
      Query: {
        order: async () => { throw new Error(`orders db password=${SECRET} unreachable`) },
        coupon: async () => { throw new mercurius.ErrorWithProps('coupon expired', { code: 'EXPIRED' }) },
        fine: async () => 'fine'
      }
    },
    errorFormatter: (execution, context) => {
      const errors = (execution.errors ?? []).map((error) => {
        const failure = error.originalError
        // GraphQL's own errors (validation, syntax: no originalError, or mercurius' own with a 4xx) and
        // those a resolver throws on purpose (mercurius.ErrorWithProps) keep their message
        const status = (failure as { statusCode?: unknown } | undefined)?.statusCode
        if (failure === undefined || failure === null || (typeof status === 'number' && status < 500)) return error
        const info = app.recovery.report(failure, { request: context.reply?.request, name: `graphql ${error.path?.join('.') ?? ''}` })
        return new GraphQLError('Internal Server Error', { nodes: error.nodes, path: error.path, extensions: { requestId: info.requestId } })
      })
      return mercurius.defaultErrorFormatter({ ...execution, errors }, context)
    }
  })
  const ask = async (query: string): Promise<Record<string, any>> => (await app.inject({ method: 'POST', url: '/graphql', payload: { query } })).json()

  const failed = await ask('{ order(id: 7) fine }')
  t.notMatch(JSON.stringify(failed), SECRET)
  t.same(failed, { data: { order: null, fine: 'fine' }, errors: [{ message: 'Internal Server Error', locations: [{ line: 1, column: 3 }], path: ['order'], extensions: { requestId: 'req-1' } }] })
  t.match((await ask('{ coupon }')).errors, [{ message: 'coupon expired', extensions: { code: 'EXPIRED' } }], 'a deliberate error keeps its message')
  t.match((await ask('{ nosuchfield }')).errors, [{ message: /Cannot query field "nosuchfield"/ }], 'a validation error keeps its message')
  t.equal(panics().length, 1)
  t.match(panics()[0], { reqId: 'req-1', err: { message: 'orders db password=[redacted] unreachable' }, panic: { source: 'reported', method: 'POST', route: '/graphql', task: 'graphql order' } })
  t.equal(await count({ source: 'reported', route: '/graphql' }), 1)
})

test('tRPC: onError reports, an errorFormatter keeps the message and the stack from the client', async (t) => {
  const { app, panics, count } = await buildApp()
  t.teardown(() => app.close())
  // the README recipe
  interface Context { request: FastifyRequest }
  const trpc = initTRPC.context<Context>().create({
    isDev: true, // tRPC then sends the stack: the formatter removes it with the message
    errorFormatter: ({ shape, error, ctx }) => error.code !== 'INTERNAL_SERVER_ERROR'
      ? shape
      : { ...shape, message: 'Internal Server Error', data: { ...shape.data, stack: undefined, requestId: ctx?.request.id } }
  })
  const router = trpc.router({
    order: trpc.procedure.query(() => { throw new Error(`orders db token=${SECRET} unreachable`) }),
    coupon: trpc.procedure.query(() => { throw new TRPCError({ code: 'NOT_FOUND', message: 'no such coupon' }) })
  })
  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router,
      createContext: ({ req }: { req: FastifyRequest }) => ({ request: req }),
      onError: ({ error, req, path }: { error: TRPCError, req: FastifyRequest, path?: string }) => {
        if (error.code === 'INTERNAL_SERVER_ERROR') app.recovery.report(error.cause ?? error, { request: req, name: `trpc ${path ?? ''}` })
      }
    }
  })
  const failed = await app.inject('/trpc/order')
  t.equal(failed.statusCode, 500)
  t.notMatch(failed.body, SECRET)
  t.notMatch(failed.body, /"stack"|at .*frameworks\.test/, 'no stack')
  t.match(failed.json(), { error: { message: 'Internal Server Error', data: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-1' } } })
  const missing = await app.inject('/trpc/coupon')
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { error: { message: 'no such coupon' } }, 'a deliberate error keeps its message')
  t.equal(panics().length, 1)
  t.match(panics()[0], { reqId: 'req-1', err: { message: 'orders db token=[redacted] unreachable' }, panic: { source: 'reported', route: '/trpc/:path', task: 'trpc order' } })
  t.equal(await count({ source: 'reported' }), 1)
})
