// watch against the built binary on the memory broker: live publications,
// replay from a position, stopping (break, close(), a signal, the client's
// close()), and what a server restart does to a watch when history does
// not survive it (the Redis case is watch-redis.test.js).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { ClosedError, PositionError, UnavailableError, createClient } from '../src/index.js'
import { SECRET, freePort, startServer, take, waitFor, within } from './helpers.js'

let server
let client

before(async () => {
  server = await startServer()
  client = createClient({ address: server.grpcAddr, secret: SECRET })
})

after(async () => {
  client?.close()
  await server?.stop()
})

// watchers is how many subscribers `stream` has on the node: a watch is
// one while its call is open.
async function watchers(c, stream) {
  const { streams } = await c.listStreams({ prefix: stream })
  return streams.find(s => s.name === stream)?.subscribers ?? 0
}

test('watch delivers live publications as published, transient ones with offset 0', async () => {
  const w = client.watch('live')
  try {
    await within('the watch to be live', w.ready)
    await client.publish('live', '{"n":1}')
    await client.publish('live', 'plain text', { transient: true })
    await client.publishBatch([{ stream: 'live', data: '{"n":2}' }, { stream: 'elsewhere', data: '0' }, { stream: 'live', data: '[3]' }])
    const it = w[Symbol.asyncIterator]()
    assert.deepEqual(await take(it, 4), [
      { stream: 'live', epoch: server.epoch, offset: 1, data: '{"n":1}' },
      { stream: 'live', epoch: '', offset: 0, data: 'plain text' },
      { stream: 'live', epoch: server.epoch, offset: 2, data: '{"n":2}' },
      { stream: 'live', epoch: server.epoch, offset: 3, data: '[3]' }
    ])
    assert.deepEqual(w.position, { epoch: server.epoch, offset: 3 })
  } finally {
    w.close()
  }
})

test('watch with since replays what came after it, then goes on live', async () => {
  for (let n = 1; n <= 3; n++) await client.publish('replay', String(n))
  const { epoch } = await client.history('replay')
  const w = client.watch('replay', { epoch, since: 1 })
  try {
    const it = w[Symbol.asyncIterator]()
    assert.deepEqual((await take(it, 2)).map(p => [p.offset, p.data]), [[2, '2'], [3, '3']])
    await within('ready', w.ready)
    await client.publish('replay', '4')
    assert.deepEqual((await take(it, 1)).map(p => [p.offset, p.data]), [[4, '4']])
  } finally {
    w.close()
  }
})

test('breaking out of the loop ends the watch: the call is cancelled on the server', async () => {
  const w = client.watch('brk')
  await within('ready', w.ready)
  await waitFor('the watch counted as a subscriber', async () => (await watchers(client, 'brk')) === 1)
  await client.publish('brk', '"first"')
  await client.publish('brk', '"second"')
  const got = []
  for await (const p of w) {
    got.push(p.data)
    break
  }
  assert.deepEqual(got, ['"first"'])
  assert.deepEqual(await w[Symbol.asyncIterator]().next(), { done: true, value: undefined })
  assert.equal(w.position.offset, 1)
  await waitFor('the server to drop the watch', async () => (await watchers(client, 'brk')) === 0)
  // The client's connection is still good.
  assert.equal((await client.history('brk')).offset, 2)
})

test('close() and an aborted signal end a waiting loop quietly', async () => {
  const w = client.watch('stop')
  const ac = new AbortController()
  const w2 = client.watch('stop', { signal: ac.signal })
  await within('ready', Promise.all([w.ready, w2.ready]))
  const loop = async watch => {
    const got = []
    for await (const p of watch) got.push(p.data)
    return got
  }
  const loops = [loop(w), loop(w2)]
  await client.publish('stop', '"one"')
  await waitFor('two watchers', async () => (await watchers(client, 'stop')) === 2)
  w.close()
  ac.abort()
  // Each got "one" unless it was stopped before: either way it ends without an error.
  for (const got of await within('the loops to end', Promise.all(loops))) {
    assert.ok(got.length <= 1 && got.every(d => d === '"one"'), JSON.stringify(got))
  }
  await waitFor('the server to drop both', async () => (await watchers(client, 'stop')) === 0)
  // A signal aborted before the watch starts: it never opens.
  const w3 = client.watch('stop', { signal: ac.signal })
  await assert.rejects(w3.ready, ClosedError)
  assert.deepEqual(await w3[Symbol.asyncIterator]().next(), { done: true, value: undefined })
})

test('the client\'s close() ends a watch with ClosedError', async () => {
  const c = createClient({ address: server.grpcAddr, secret: SECRET })
  const w = c.watch('closed')
  await within('ready', w.ready)
  const it = w[Symbol.asyncIterator]()
  const next = it.next()
  c.close()
  await assert.rejects(within('the watch to end', next), err => err instanceof ClosedError && err.message === 'client is closed')
  assert.deepEqual(await it.next(), { done: true, value: undefined })
  await waitFor('the server to drop the watch', async () => (await watchers(client, 'closed')) === 0)
})

test('a server restart: the watch resumes, and a lost position ends it with PositionError', async () => {
  // On the memory broker history dies with the server, so the resumed
  // watch asks for a position of an epoch that is no more.
  const port = await freePort()
  let s = await startServer([], { port })
  const c = createClient({ address: `127.0.0.1:${port}`, secret: SECRET })
  const w = c.watch('restart')
  const nope = c.watch('restart', { resume: false })
  try {
    await within('ready', Promise.all([w.ready, nope.ready]))
    await c.publish('restart', '"before"')
    const it = w[Symbol.asyncIterator]()
    assert.deepEqual((await take(it, 1)).map(p => p.data), ['"before"'])
    const nit = nope[Symbol.asyncIterator]()
    assert.deepEqual((await take(nit, 1)).map(p => p.data), ['"before"'])

    // What each iteration ends with, settled as soon as it is.
    const next = it.next().then(() => null, e => e)
    const nnext = nit.next().then(() => null, e => e)
    await s.kill()
    // Without resume the break is the iteration's error.
    const broke = await within('the watch without resume to fail', nnext)
    assert.ok(broke instanceof UnavailableError, `not an UnavailableError: ${broke}`)

    s = await startServer([], { port })
    const err = await within('the resumed watch to fail', next, 15000)
    assert.ok(err instanceof PositionError, `not a PositionError: ${err}`)
    // The stream's position on the new server: unknown there ("" and 0),
    // as history says.
    const now = await c.history('restart')
    assert.deepEqual([err.epoch, err.offset], [now.epoch, now.offset])
    assert.deepEqual([err.epoch, err.offset], ['', 0])
    assert.deepEqual(await it.next(), { done: true, value: undefined })
  } finally {
    w.close()
    nope.close()
    c.close()
    await s.stop()
  }
})

test('a server restart before any publication: the watch re-opens from the start and gets what comes', async () => {
  const port = await freePort()
  let s = await startServer([], { port })
  const c = createClient({ address: `127.0.0.1:${port}`, secret: SECRET })
  const w = c.watch('fresh')
  try {
    await within('ready', w.ready)
    const it = w[Symbol.asyncIterator]()
    const next = it.next()
    await s.stop()
    s = await startServer([], { port })
    // Publish until the re-opened watch gets one: it may re-open after
    // some of them.
    let n = 0
    const publishing = (async () => {
      while (n < 200) {
        await c.publish('fresh', String(++n))
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    })()
    const first = await within('a publication after the restart', next, 15000)
    n = 1000
    await publishing
    assert.equal(first.done, false)
    assert.equal(first.value.epoch, s.epoch)
    assert.equal(first.value.data, String(first.value.offset))
  } finally {
    w.close()
    c.close()
    await s.stop()
  }
})
