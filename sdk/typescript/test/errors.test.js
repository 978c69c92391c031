// Authentication and errors: every failure is a CablehubError carrying the
// gRPC status code and the server's message.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { CablehubError, Code, apiToken, createClient } from '../src/index.js'
import { Cable, SECRET, startServer } from './helpers.js'

// The server runs with an explicit --api_secret, so the token derived from
// --secret is not accepted.
const API_SECRET = 'explicit-api-token'

let server
const clients = []

before(async () => {
  server = await startServer(['--api_secret', API_SECRET])
})

after(async () => {
  for (const c of clients) c.close()
  await server?.stop()
})

function client(options) {
  const c = createClient({ url: server.grpcAddr, ...options })
  clients.push(c)
  return c
}

// rejectsWith asserts that `promise` rejects with a CablehubError of `code`
// whose message contains `text`.
async function rejectsWith(promise, code, codeName, text) {
  await assert.rejects(promise, err => {
    assert.ok(err instanceof CablehubError, `not a CablehubError: ${err}`)
    assert.equal(err.code, code)
    assert.equal(err.codeName, codeName)
    assert.match(err.message, text)
    return true
  })
}

test('apiToken is the hex HMAC-SHA256 of "api-cable" keyed with the secret', () => {
  // echo -n api-cable | openssl dgst -sha256 -hmac sdk-test-secret
  assert.equal(apiToken(SECRET), 'b8c38284f9362b510caeb78856b00c8810b3518f8de91ecd37d817e6638d3d3a')
})

test('apiSecret is sent as the bearer token as is', async () => {
  const cable = await Cable.connect(server.wsUrl)
  try {
    await cable.subscribe('auth')
    await client({ apiSecret: API_SECRET }).publish('auth', '"ok"')
    assert.deepEqual((await cable.next()).message, 'ok')
  } finally {
    cable.close()
  }
})

test('a wrong secret gets UNAUTHENTICATED (16)', async () => {
  await rejectsWith(client({ secret: 'wrong' }).publish('auth', '1'), 16, 'UNAUTHENTICATED', /API token/)
  // The derived token is not the server's --api_secret either.
  await rejectsWith(client({ secret: SECRET }).presence('auth'), Code.Unauthenticated, 'UNAUTHENTICATED', /API token/)
  await rejectsWith(client({ apiSecret: 'wrong' }).disconnect('u'), 16, 'UNAUTHENTICATED', /API token/)
})

test('no secret sends no authorization: UNAUTHENTICATED', async () => {
  await rejectsWith(client({}).publishBatch([{ stream: 'auth', data: '1' }]), 16, 'UNAUTHENTICATED', /API token/)
})

test('an empty stream gets INVALID_ARGUMENT (3) with the server message', async () => {
  const c = client({ apiSecret: API_SECRET })
  await rejectsWith(c.publish('', '1'), 3, 'INVALID_ARGUMENT', /^stream is required$/)
  await rejectsWith(c.publishBatch([{ stream: 'ok', data: '1' }, { stream: '', data: '2' }]), 3, 'INVALID_ARGUMENT', /^publications\[1\]: stream is required$/)
  await rejectsWith(c.publishBatch([]), 3, 'INVALID_ARGUMENT', /^no publications/)
})

test('an unreachable server gets UNAVAILABLE (14)', async () => {
  // Port 1 on loopback: nothing listens there.
  const c = createClient({ url: '127.0.0.1:1', apiSecret: API_SECRET })
  try {
    await rejectsWith(c.presence('x'), 14, 'UNAVAILABLE', /ECONNREFUSED/)
  } finally {
    c.close()
  }
})
