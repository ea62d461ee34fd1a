import createError from '@fastify/error'

// The plugin's own errors, created once (as @fastify/under-pressure does).

/** A bad option at registration: a TypeError that names the option and the value. */
export const FST_RECOVERY_INVALID_OPTION = createError<[string, string, string]>(
  'FST_RECOVERY_INVALID_OPTION',
  'fastify-recovery: option "%s" must be %s, got %s',
  500,
  TypeError
)

export const FST_RECOVERY_UNKNOWN_OPTION = createError<[string, string]>(
  'FST_RECOVERY_UNKNOWN_OPTION',
  'fastify-recovery: unknown option "%s" (the options are %s)',
  500,
  TypeError
)

export const FST_RECOVERY_ALREADY_REGISTERED = createError(
  'FST_RECOVERY_ALREADY_REGISTERED',
  'fastify-recovery is already registered in this scope or a parent scope'
)

export const FST_RECOVERY_METRIC_CONFLICT = createError<[string, string, string]>(
  'FST_RECOVERY_METRIC_CONFLICT',
  'fastify-recovery: the registry already holds a metric "%s" that is not a counter with labels %s (%s)',
  500,
  TypeError
)

// No stack is captured: it would only show the plugin's own frames, never where the value was thrown.
// No status either (0 leaves it unset): the plugin, not the value, decides the reply.
export const FST_RECOVERY_NON_ERROR = createError<[string]>(
  'FST_RECOVERY_NON_ERROR',
  'A non-Error value was thrown: %s',
  0,
  Error,
  false
)

export const FST_RECOVERY_HANDLER_TIMEOUT = createError<[number]>(
  'FST_RECOVERY_HANDLER_TIMEOUT',
  'The panic handler did not settle within %d ms'
)

export const FST_RECOVERY_HANDLER_INVALID_REPLY = createError<[string]>(
  'FST_RECOVERY_HANDLER_INVALID_REPLY',
  'The panic handler returned an invalid reply: %s'
)

export const FST_RECOVERY_UNSUPPORTED_FASTIFY = createError<[string]>(
  'FST_RECOVERY_UNSUPPORTED_FASTIFY',
  'fastify-recovery needs Fastify 5.12 or later (it listens to Fastify\'s LogController and joins its error handler chain); this is Fastify %s'
)

export const FST_RECOVERY_HANDLER_SENT = createError(
  'FST_RECOVERY_HANDLER_SENT',
  'The panic handler or a diagnostics channel subscriber sent the failure itself with reply.send; the default reply was sent instead'
)

export const FST_RECOVERY_NOT_RECORDED = createError(
  'FST_RECOVERY_NOT_RECORDED',
  'The failure could not be recorded; a "recovery failed" line says why'
)

export const FST_RECOVERY_UNAWAITABLE = createError(
  'FST_RECOVERY_UNAWAITABLE',
  'A promise was returned that cannot be awaited (its constructor cannot be read); its rejection is ignored'
)
