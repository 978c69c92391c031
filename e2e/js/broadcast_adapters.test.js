import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import WebSocket from 'ws'
import { startServer, SECRET, hmacHex, jwt, waitFor } from './server.js'

// A @rails/actioncable subscriber receives what an application publishes
// through AnyCable's broadcast adapters, sent as the anycable gem sends it:
// its http adapter POSTs JSON with the key derived from the secret, its
// redis adapter PUBLISHes to the channel; batches come in order, and the
// disconnect command ends the connection.

globalThis.document = { visibilityState: 'visible', head: { querySelector: () => null } }
globalThis.addEventListener = () => {}
globalThis.removeEventListener = () => {}
const { createConsumer, adapters } = await import('@rails/actioncable')
adapters.WebSocket = WebSocket

const BROADCAST_KEY = hmacHex(SECRET, 'broadcast-cable')
// A channel of this run's own: every test server shares the Redis.
const CHANNEL = `bcast-js-${process.pid}-${Date.now()}`
let server

before(async () => {
  server = await startServer(['--secret', SECRET, '--noauth', '--public_streams', '--norpc',
    '--broadcast_adapter', 'http,redis', '--redis_channel', CHANNEL])
  await waitFor('the redis adapter to subscribe',
    () => execFileSync('redis-cli', ['PUBSUB', 'NUMSUB', CHANNEL]).toString().trim() === `${CHANNEL}\n1`, 10000)
})
after(async () => {
  await server.stop()
})

// The gem's http adapter: POST with JSON and the bearer key.
async function postBroadcast(payload) {
  const res = await fetch(`http://${server.addr}/_broadcast`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${BROADCAST_KEY}` },
    body: JSON.stringify(payload)
  })
  assert.equal(res.status, 201, await res.text())
}

// The gem's redis adapter: PUBLISH <channel> <payload>.
function redisPublish(payload) {
  execFileSync('redis-cli', ['PUBLISH', CHANNEL, JSON.stringify(payload)])
}

test('@rails/actioncable receives broadcasts from the http and redis adapters', async () => {
  const consumer = createConsumer(`ws://${server.addr}/cable`)
  const got = []
  let connected = false
  try {
    consumer.subscriptions.create({ channel: '$pubsub', stream_name: 'gem/1' }, {
      connected() { connected = true },
      received(data) { got.push(data) }
    })
    await waitFor('subscription confirmed', () => connected)
    await postBroadcast({ stream: 'gem/1', data: JSON.stringify({ via: 'http' }) })
    await postBroadcast([
      { stream: 'gem/1', data: JSON.stringify({ n: 1 }) },
      { stream: 'gem/1', data: JSON.stringify({ n: 2 }) }
    ])
    redisPublish({ stream: 'gem/1', data: JSON.stringify({ via: 'redis' }) })
    redisPublish([{ stream: 'gem/1', data: JSON.stringify({ n: 3 }) }, { stream: 'gem/1', data: JSON.stringify({ n: 4 }) }])
    await waitFor('6 messages', () => got.length >= 6)
    assert.deepEqual(got, [{ via: 'http' }, { n: 1 }, { n: 2 }, { via: 'redis' }, { n: 3 }, { n: 4 }])
  } finally {
    consumer.disconnect()
  }
})

test('the disconnect command closes a @rails/actioncable connection by its identifiers', async () => {
  for (const send of [postBroadcast, redisPublish]) {
    const token = jwt(SECRET, { ext: JSON.stringify({ user: 'gem' }) })
    const consumer = createConsumer(`ws://${server.addr}/cable?jid=${token}`)
    let connected = false
    let disconnected = null
    try {
      consumer.subscriptions.create({ channel: '$pubsub', stream_name: 'gem/2' }, {
        connected() { connected = true },
        disconnected(info) { disconnected = info }
      })
      await waitFor('subscription confirmed', () => connected)
      await send({ command: 'disconnect', payload: { identifier: JSON.stringify({ user: 'gem' }), reconnect: false } })
      await waitFor('disconnected', () => disconnected !== null)
      assert.equal(disconnected.willAttemptReconnect, false)
    } finally {
      consumer.disconnect()
    }
  }
})
