import { test } from 'tap'
import { buildApp } from './helper'
import { isSecretKey, redactText, secretKeys } from '../lib/secrets'

// Contract §6, in text: the credentials a string carries in the shapes HTTP clients and frameworks
// put them in are redacted like the values of credential keys.

const secrets = secretKeys(['ssn'])

test('name=value pairs, JSON pairs, URL passwords, Bearer and Basic credentials: only the credentials go', async (t) => {
  const cases: Array<[string, string]> = [
    ['https://api.example/v1/users?api_key=K1&page=2', 'https://api.example/v1/users?api_key=[redacted]&page=2'],
    ['GET /login?token=T1#top', 'GET /login?token=[redacted]#top'],
    ['/x?a=1&access_token=T2&b=2', '/x?a=1&access_token=[redacted]&b=2'],
    ['/x?api%5Fkey=K2', '/x?api%5Fkey=[redacted]'],
    ['/x?bad%E0name=v&token=T3', '/x?bad%E0name=v&token=[redacted]'],
    ['sid=1; session_token=T4; theme=dark', 'sid=1; session_token=[redacted]; theme=dark'],
    ['login failed for password=hunter2 now', 'login failed for password=[redacted] now'],
    ['username=ada&password=P1', 'username=ada&password=[redacted]'],
    ['{"user":"ada","password":"P2","nested":{"clientSecret" : "P3"}}', '{"user":"ada","password":"[redacted]","nested":{"clientSecret" : "[redacted]"}}'],
    ['{"password":"with \\"quotes\\" inside"}', '{"password":"[redacted]"}'],
    ['postgres://app:DBPASS@db:5432/orders', 'postgres://app:[redacted]@db:5432/orders'],
    ['request to https://u:UP@api.example/x?token=T5 failed', 'request to https://u:[redacted]@api.example/x?token=[redacted] failed'],
    ['ssn=123-45-6789', 'ssn=[redacted]'],
    ['nothing to see: a=b, "k": "v", //host/path', 'nothing to see: a=b, "k": "v", //host/path'],
    ['select * from t where a = ? and b = ?', 'select * from t where a = ? and b = ?'],
    ['token=', 'token=[redacted]'],
    ['upstream rejected Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-_~+/ as expired', 'upstream rejected Authorization: Bearer [redacted] as expired'],
    ['BASIC dXNlcjpwYXNz==, then', 'BASIC [redacted], then'],
    ['a basic test with bearer\tT6T6T6T6', 'a basic test with bearer\t[redacted]'],
    ['basically fine; the bearers left', 'basically fine; the bearers left']
  ]
  for (const [text, expected] of cases) t.equal(redactText(text, secrets, 1024), expected, text)
  t.ok(isSecretKey('pageToken', secrets), 'a suffix counts, as for keys')
})

test('only the first `limit` characters are looked at; a pair cut there is redacted in what is kept', async (t) => {
  const long = `${'x'.repeat(2000)}?token=LATE`
  t.equal(redactText(long, secrets, 1024), long, 'past the limit: left for the caller to cut')
  const straddling = `${'x'.repeat(1000)}?token=${'S'.repeat(100)}`
  const redacted = redactText(straddling, secrets, 1024)
  t.equal(redacted, `${'x'.repeat(1000)}?token=[redacted]…[truncated, 1107 chars]`, 'cut where it was looked at')
  const huge = `${'a=b&'.repeat(2_000_000)}token=HUGE`
  const start = process.hrtime.bigint()
  const result = redactText(huge, secrets, 4096)
  t.comment(`8 MB of pairs, 4 KiB looked at: ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(2)} ms`)
  t.ok(result === huge, 'nothing in the first 4 KiB: returned as it is, for the caller to cut')
})

test('in the line: an HTTP client error\'s URL, body and message, a URL in a stack header; the rest kept', async (t) => {
  const { app, panics } = await buildApp()
  t.teardown(() => app.close())
  app.get('/call', async () => {
    throw Object.assign(new Error('request to https://svc:USERINFOSECRET@api.example/v1?api_key=QUERYSECRET failed'), {
      headers: ['Authorization: Bearer SCHEMESECRET'],
      // axios: the request's URL and body
      config: { url: 'https://api.example/v1/users?access_token=URLSECRET&page=2', data: '{"username":"ada","password":"BODYSECRET"}' },
      cause: new Error('upstream said: password=CAUSESECRET')
    })
  })
  app.get('/stackless', async () => {
    const error = new Error('x')
    error.stack = 'Error: connect to postgres://app:STACKSECRET@db/orders refused'
    throw error
  })
  t.equal((await app.inject('/call')).statusCode, 500)
  t.equal((await app.inject('/stackless')).statusCode, 500)
  const text = JSON.stringify(panics())
  t.notMatch(text, /USERINFOSECRET|QUERYSECRET|URLSECRET|BODYSECRET|CAUSESECRET|STACKSECRET|SCHEMESECRET/)
  const [line, stackless] = panics()
  t.match(line.err?.message, 'request to https://svc:[redacted]@api.example/v1?api_key=[redacted] failed')
  t.match(line.err?.stack, /^Error: request to https:\/\/svc:\[redacted\]@api\.example\/v1\?api_key=\[redacted\] failed\n {4}at /)
  t.match(text, 'page=2', 'what is not a credential stays')
  t.match(text, '\\"username\\":\\"ada\\"')
  t.equal(stackless.err?.stack, 'Error: connect to postgres://app:[redacted]@db/orders refused')
})
