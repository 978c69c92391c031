// Authentication and errors: every failure is a CablehubError carrying the
// gRPC status code and the server's message, of the subclass for its code;
// bad options fail at construction; calls after close() fail at once.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import {
  AuthError, CablehubError, ClosedError, Code, InvalidArgumentError, PositionError,
  TimeoutError, UnavailableError, apiToken, createClient
} from '../src/index.js'
import { Cable, SECRET, startServer, within } from './helpers.js'

// The server runs with an explicit --api_secret, so the token derived from
// --secret is not accepted; history keeps 5 publications per stream.
const API_SECRET = 'explicit-api-token'

let server
const clients = []

before(async () => {
  server = await startServer(['--api_secret', API_SECRET, '--history_limit', '5'])
})

after(async () => {
  for (const c of clients) c.close()
  await server?.stop()
})

function client(options) {
  const c = createClient({ address: server.grpcAddr, ...options })
  clients.push(c)
  return c
}

// rejectsWith asserts that `promise` rejects with an instance of `type` (a
// CablehubError) of `code` whose message matches `text`, and returns it.
async function rejectsWith(promise, type, code, codeName, text) {
  let got
  await assert.rejects(promise, err => {
    assert.ok(err instanceof type, `not a ${type.name}: ${err?.name} ${err}`)
    assert.ok(err instanceof CablehubError)
    assert.equal(err.name, type.name)
    assert.equal(err.code, code)
    assert.equal(err.codeName, codeName)
    assert.match(err.message, text)
    got = err
    return true
  })
  return got
}

// watchFails asserts that a watch fails before it is live: its ready
// rejects, and so does its first iteration, with the same error.
async function watchFails(watch, type, code, codeName, text) {
  const err = await rejectsWith(within('ready', watch.ready), type, code, codeName, text)
  const it = watch[Symbol.asyncIterator]()
  assert.equal(await rejectsWith(within('next', it.next()), type, code, codeName, text), err)
  assert.deepEqual(await it.next(), { done: true, value: undefined })
  return err
}

// silentServer accepts TCP connections and never answers: calls to it can
// only time out.
async function silentServer() {
  const sockets = []
  const srv = net.createServer(s => sockets.push(s))
  await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve))
  return {
    address: `127.0.0.1:${srv.address().port}`,
    close: () => { for (const s of sockets) s.destroy(); srv.close() }
  }
}

test('apiToken is the hex HMAC-SHA256 of "api-cable" keyed with the secret', () => {
  // printf api-cable | openssl dgst -sha256 -hmac sdk-test-secret -r
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

test('a wrong token is an AuthError (UNAUTHENTICATED) on every call', async () => {
  const wrong = client({ secret: 'wrong' })
  const calls = {
    publish: () => wrong.publish('auth', '1'),
    publishBatch: () => wrong.publishBatch([{ stream: 'auth', data: '1' }]),
    presence: () => wrong.presence('auth'),
    presenceStats: () => wrong.presenceStats('auth'),
    history: () => wrong.history('auth'),
    listStreams: () => wrong.listStreams(),
    info: () => wrong.info(),
    disconnect: () => wrong.disconnect('u')
  }
  for (const [name, call] of Object.entries(calls)) {
    await rejectsWith(call(), AuthError, 16, 'UNAUTHENTICATED', /API token/).catch(err => {
      err.message = `${name}: ${err.message}`
      throw err
    })
  }
  await watchFails(wrong.watch('auth'), AuthError, Code.Unauthenticated, 'UNAUTHENTICATED', /API token/)
  // The token derived from the right --secret is not the --api_secret.
  await rejectsWith(client({ secret: SECRET }).presence('auth'), AuthError, 16, 'UNAUTHENTICATED', /API token/)
  await rejectsWith(client({ apiSecret: 'wrong' }).disconnect('u'), AuthError, 16, 'UNAUTHENTICATED', /API token/)
})

test('no secret sends no authorization: AuthError', async () => {
  await rejectsWith(client({}).publishBatch([{ stream: 'auth', data: '1' }]), AuthError, 16, 'UNAUTHENTICATED', /API token/)
})

test('an empty stream or a bad argument is an InvalidArgumentError with the server message', async () => {
  const c = client({ apiSecret: API_SECRET })
  await rejectsWith(c.publish('', '1'), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^stream is required$/)
  await rejectsWith(c.publishBatch([{ stream: 'ok', data: '1' }, { stream: '', data: '2' }]), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^publications\[1\]: stream is required$/)
  await rejectsWith(c.publishBatch([]), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^no publications/)
  await rejectsWith(c.publish('s', '1', { idempotencyKey: 'k'.repeat(129) }), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /idempotency_key/)
  await rejectsWith(c.history(''), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^stream is required$/)
  await rejectsWith(c.presenceStats(''), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^stream is required$/)
  await rejectsWith(c.listStreams({ limit: 1001 }), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /limit/)
  await rejectsWith(c.history('s', { since: 1 }), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^epoch is required with since$/)
  await watchFails(c.watch(''), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^stream is required$/)
  await watchFails(c.watch('s', { since: 1 }), InvalidArgumentError, 3, 'INVALID_ARGUMENT', /^epoch is required with since$/)
})

test('a stale epoch or an evicted offset is a PositionError carrying the stream\'s position', async () => {
  const c = client({ apiSecret: API_SECRET })
  for (let n = 1; n <= 8; n++) await c.publish('pos', String(n))
  const { epoch, offset } = await c.history('pos')
  assert.equal(offset, 8)
  const check = err => {
    assert.equal(err.epoch, epoch)
    assert.equal(err.offset, 8)
  }
  check(await rejectsWith(c.history('pos', { epoch: 'stale-epoch', since: 1 }), PositionError, 9, 'FAILED_PRECONDITION', /./))
  // History keeps 5 (--history_limit): offsets 4..8; after 1 means 2 is needed.
  check(await rejectsWith(c.history('pos', { epoch, since: 1 }), PositionError, 9, 'FAILED_PRECONDITION', /./))
  assert.deepEqual((await c.history('pos', { epoch, since: 3 })).publications.map(p => p.offset), [4, 5, 6, 7, 8])
  check(await watchFails(c.watch('pos', { epoch: 'stale-epoch', since: 1 }), PositionError, 9, 'FAILED_PRECONDITION', /./))
  check(await watchFails(c.watch('pos', { epoch, since: 1 }), PositionError, 9, 'FAILED_PRECONDITION', /./))
})

test('a limit or since that is no unsigned integer is a TypeError before any call', async () => {
  const c = client({ apiSecret: API_SECRET })
  await assert.rejects(c.history('s', { limit: -1 }), TypeError)
  await assert.rejects(c.history('s', { epoch: 'e', since: 1.5 }), TypeError)
  await assert.rejects(c.listStreams({ limit: 'ten' }), TypeError)
  assert.throws(() => c.watch('s', { epoch: 'e', since: -1 }), TypeError)
})

test('an unreachable server is an UnavailableError', async () => {
  // Port 1 on loopback: nothing listens there.
  const c = createClient({ address: '127.0.0.1:1', apiSecret: API_SECRET })
  try {
    await rejectsWith(c.presence('x'), UnavailableError, 14, 'UNAVAILABLE', /ECONNREFUSED/)
    await watchFails(c.watch('x', { resume: false }), UnavailableError, 14, 'UNAVAILABLE', /ECONNREFUSED/)
  } finally {
    c.close()
  }
})

test('no answer within timeoutMs is a TimeoutError', async () => {
  const silent = await silentServer()
  const c = createClient({ address: silent.address, timeoutMs: 300 })
  try {
    const started = Date.now()
    await rejectsWith(c.info(), TimeoutError, 4, 'DEADLINE_EXCEEDED', /./)
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started}ms`)
  } finally {
    c.close()
    silent.close()
  }
})

test('after close() every call is a ClosedError at once; a call in flight too; close twice is fine', async () => {
  const c = createClient({ address: server.grpcAddr, apiSecret: API_SECRET })
  await c.publish('closing', '1')
  c.close()
  c.close()
  const calls = [
    c.publish('closing', '2'), c.publishBatch([{ stream: 'closing', data: '2' }]), c.presence('closing'),
    c.presenceStats('closing'), c.history('closing'), c.listStreams(), c.info(), c.disconnect('u')
  ]
  for (const call of calls) await rejectsWith(within('a closed call', call, 100), ClosedError, 1, 'CANCELLED', /^client is closed$/)
  await watchFails(c.watch('closing'), ClosedError, 1, 'CANCELLED', /^client is closed$/)

  // A call waiting for a server that never answers ends when closed.
  const silent = await silentServer()
  const waiting = createClient({ address: silent.address, timeoutMs: 60000 })
  try {
    const call = waiting.info()
    setTimeout(() => waiting.close(), 100)
    await rejectsWith(within('the call in flight', call, 2000), ClosedError, 1, 'CANCELLED', /^client is closed$/)
  } finally {
    waiting.close()
    silent.close()
  }
})

test('bad options fail at construction', () => {
  const bad = (options, text) => assert.throws(() => createClient(options), err => {
    assert.ok(err instanceof TypeError, `not a TypeError: ${err}`)
    assert.match(err.message, text)
    return true
  })
  bad({ address: '127.0.0.1:1', secret: 's', apiSecret: 't' }, /give secret or apiSecret, not both/)
  bad({}, /address is required/)
  bad({ address: '' }, /address is required/)
  bad({ address: 'grpc://127.0.0.1:8080' }, /scheme grpc:\/\/ is not supported/)
  bad({ address: 'ws://127.0.0.1:8080' }, /scheme ws:\/\/ is not supported/)
  bad({ address: 'http://127.0.0.1:8080/api' }, /no path/)
  bad({ address: '127.0.0.1:8080/api' }, /no path/)
  bad({ address: 'http://127.0.0.1:8080?x=1' }, /no path, query/)
  bad({ address: 'localhost' }, /has no port/)
  bad({ address: '127.0.0.1:1', retries: -1 }, /retries/)
  bad({ address: '127.0.0.1:1', timeoutMs: 0 }, /timeoutMs/)
  bad({ address: '127.0.0.1:1', url: '127.0.0.1:2' }, /give address or url/)
  for (const address of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080', 'http://127.0.0.1:8080', 'http://127.0.0.1:8080/', 'https://example.com', 'https://example.com:8443']) {
    createClient({ address }).close()
  }
})

test('each error class names itself', () => {
  for (const [cls, args] of [[CablehubError, [2, 'x']], [AuthError, [16, 'x']], [UnavailableError, [14, 'x']],
    [InvalidArgumentError, [3, 'x']], [TimeoutError, [4, 'x']], [PositionError, [9, 'x', { epoch: 'e', offset: 3 }]],
    [ClosedError, []]]) {
    const err = new cls(...args)
    assert.equal(err.name, cls.name)
    assert.ok(err instanceof CablehubError)
    assert.match(String(err), new RegExp('^' + cls.name + ': '))
  }
  const pos = new PositionError(9, 'x', { epoch: 'e', offset: 3 })
  assert.equal(pos.epoch, 'e')
  assert.equal(pos.offset, 3)
  assert.equal(new ClosedError().code, Code.Canceled)
})
