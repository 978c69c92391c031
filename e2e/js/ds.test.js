// The Durable Streams read API (--ds) against the protocol's own client,
// @durable-streams/client: catch-up, resume from an offset, long-poll and
// SSE live reads, and its errors.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { stream } from '@durable-streams/client'
import { startServer, SECRET, API_TOKEN, publish, sign, waitFor } from './server.js'

let server

before(async () => {
  server = await startServer(['--secret', SECRET, '--noauth', '--norpc', '--public_streams', '--ds', '--broker', 'memory',
    '--ds_poll_interval', '2', '--ds_sse_ttl', '3'])
})
after(async () => {
  await server.stop()
})

const url = name => `http://${server.addr}/ds/${name}`
const offsetRe = /^\d{20}::[A-Za-z0-9_-]+$/

async function put(name, ...items) {
  for (const item of items) {
    await publish(server, API_TOKEN, { stream: name, data: typeof item === 'string' ? item : JSON.stringify(item) })
  }
}

test('catch-up reads everything kept, then resumes from its offset', async () => {
  await put('js/catchup', { n: 1 }, { n: 2 }, 'plain text')
  const res = await stream({ url: url('js/catchup'), offset: '-1', live: false, json: true })
  assert.deepEqual(await res.json(), [{ n: 1 }, { n: 2 }, 'plain text'])
  assert.match(res.offset, offsetRe)
  assert.equal(res.upToDate, true)
  const saved = res.offset

  await put('js/catchup', { n: 3 })
  const again = await stream({ url: url('js/catchup'), offset: saved, live: false, json: true })
  assert.deepEqual(await again.json(), [{ n: 3 }])
  assert.ok(again.offset > saved, `${again.offset} sorts after ${saved}`)

  const empty = await stream({ url: url('js/never'), offset: '-1', live: false, json: true })
  assert.deepEqual(await empty.json(), [])
})

// live collects the batches of a live read until want items came.
async function live(mode, name, offset, want, during) {
  const ctrl = new AbortController()
  const res = await stream({ url: url(name), offset, live: mode, json: true, signal: ctrl.signal })
  const items = []
  const offsets = []
  res.subscribeJson(async batch => {
    items.push(...batch.items)
    offsets.push(batch.offset)
  })
  try {
    await during(items)
    await waitFor(`${want} items over ${mode}`, () => items.length >= want, 8000)
  } finally {
    ctrl.abort()
  }
  return { items, offsets }
}

test('long-poll: the catch-up, then publications as they come', async () => {
  await put('js/lp', { n: 1 })
  const { items, offsets } = await live('long-poll', 'js/lp', '-1', 3, async got => {
    await new Promise(r => setTimeout(r, 300))
    await put('js/lp', { n: 2 })
    // Woken by the publication, well before --ds_poll_interval.
    await waitFor('the live publication', () => got.length >= 2, 1000)
    await new Promise(r => setTimeout(r, 2500)) // past a 204
    await put('js/lp', { n: 3 })
  })
  assert.deepEqual(items, [{ n: 1 }, { n: 2 }, { n: 3 }])
  assert.match(offsets.at(-1), offsetRe)
})

test('SSE: the catch-up, live publications, and a reconnect after the TTL', async () => {
  await put('js/sse', { n: 1 })
  const { items } = await live('sse', 'js/sse', '-1', 3, async got => {
    await new Promise(r => setTimeout(r, 300))
    await put('js/sse', { n: 2 })
    // Live over the open stream, well before --ds_sse_ttl ends it.
    await waitFor('the live publication', () => got.length >= 2, 1000)
    await new Promise(r => setTimeout(r, 3500)) // past --ds_sse_ttl
    await put('js/sse', 'bare text')
  })
  assert.deepEqual(items, [{ n: 1 }, { n: 2 }, 'bare text'])
})

test('errors: an offset of another epoch is gone (410), a malformed one is refused (400), a name signed for another stream grants nothing (401)', async () => {
  await put('js/err', { n: 1 })
  await assert.rejects(
    async () => (await stream({ url: url('js/err'), offset: '1::WRONG', live: false, json: true })).json(),
    err => err.status === 410 || /410/.test(String(err))
  )
  await assert.rejects(
    async () => (await stream({ url: url('js/err'), offset: 'abc', live: false, json: true })).json(),
    err => err.status === 400 || /400/.test(String(err))
  )
  // A name signed for another stream grants nothing.
  const wrong = sign('other', SECRET)
  await assert.rejects(
    async () => (await stream({ url: url('js/err'), offset: '-1', live: false, json: true, params: { signed: wrong } })).json(),
    err => err.status === 401 || /401/.test(String(err))
  )
  const right = sign('js/err', SECRET)
  const res = await stream({ url: url('js/err'), offset: '-1', live: false, json: true, headers: { 'X-Signed': right } })
  assert.deepEqual(await res.json(), [{ n: 1 }])
})
