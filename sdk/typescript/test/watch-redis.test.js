// watch across a server restart on the Redis broker (Redis at
// 127.0.0.1:6379): history survives the restart, so the watch resumes
// from the last offset it delivered and gets each publication once. Stream
// names are unique to the run: other servers may share the Redis.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createClient } from '../src/index.js'
import { SECRET, freePort, startServer, take, uniqueName, within } from './helpers.js'

// No broadcast adapter: the test's server must not take broadcasts meant
// for other servers on the same Redis (nor port 8090).
const REDIS = ['--broker', 'redis', '--pubsub', 'redis', '--redis_url', 'redis://127.0.0.1:6379/0', '--broadcast_adapter=']

let port
let server
let client

before(async () => {
  port = await freePort()
  server = await startServer(REDIS, { port })
  client = createClient({ address: `127.0.0.1:${port}`, secret: SECRET })
})

after(async () => {
  client?.close()
  await server?.stop()
})

test('a watch resumes after the server restarts: each publication once, in order', async () => {
  const stream = uniqueName('ts-watch-restart')
  const w = client.watch(stream)
  try {
    await within('ready', w.ready)
    await client.publish(stream, '1')
    await client.publish(stream, '2')
    const it = w[Symbol.asyncIterator]()
    const before = await take(it, 2)
    assert.deepEqual(before.map(p => [p.offset, p.data]), [[1, '1'], [2, '2']])
    const { epoch } = before[0]
    assert.ok(epoch !== '')

    const next = it.next()
    await server.stop()
    server = await startServer(REDIS, { port })
    // Published right after the restart: the watch may re-open before or
    // after these; either way it gets them once, from history or live.
    await client.publish(stream, '3')
    await client.publish(stream, '4')
    const after = [(await within('publication 3', next, 15000)).value, ...await take(it, 1)]
    assert.deepEqual(after.map(p => [p.epoch, p.offset, p.data]), [[epoch, 3, '3'], [epoch, 4, '4']])

    await client.publish(stream, '5')
    assert.deepEqual((await take(it, 1)).map(p => p.offset), [5])
    assert.deepEqual(w.position, { epoch, offset: 5 })
  } finally {
    w.close()
  }
})

test('a watch after the restart replays from since; history agrees', async () => {
  const stream = uniqueName('ts-watch-since')
  for (let n = 1; n <= 3; n++) await client.publish(stream, String(n))
  const { epoch } = await client.history(stream)
  await server.stop()
  server = await startServer(REDIS, { port })
  const w = client.watch(stream, { epoch, since: 1 })
  try {
    const it = w[Symbol.asyncIterator]()
    assert.deepEqual((await take(it, 2, 15000)).map(p => [p.epoch, p.offset, p.data]), [[epoch, 2, '2'], [epoch, 3, '3']])
    const history = await client.history(stream, { epoch, since: 1 })
    assert.deepEqual(history, { epoch, offset: 3, publications: [{ offset: 2, data: '2' }, { offset: 3, data: '3' }], truncated: false })
  } finally {
    w.close()
  }
})

test('idempotency keys hold across the restart (the Redis window is cluster-wide)', async () => {
  const stream = uniqueName('ts-idem')
  await client.publish(stream, '"a"', { idempotencyKey: 'k' })
  await server.stop()
  server = await startServer(REDIS, { port })
  await client.publish(stream, '"a"', { idempotencyKey: 'k' })
  assert.deepEqual((await client.history(stream)).publications, [{ offset: 1, data: '"a"' }])
})
