import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import WebSocket from 'ws'
import { startServer, SECRET, hmacHex, jwt, waitFor } from './server.js'

// A @rails/actioncable subscriber receives what an application publishes
// through AnyCable's broadcast adapters, sent as the anycable gem sends it:
// its http adapter POSTs JSON with the key derived from the secret, its
// redis adapter PUBLISHes to the channel, its redisx adapter XADDs a
// `payload` field, a NATS publisher publishes on the subject; batches come
// in order, and the disconnect command ends the connection.

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
    '--broadcast_adapter', 'http,redis,redisx,nats', '--redis_channel', CHANNEL,
    '--redisx_stream', CHANNEL, '--nats_channel', CHANNEL])
  await waitFor('the redis adapter to subscribe',
    () => execFileSync('redis-cli', ['PUBSUB', 'NUMSUB', CHANNEL]).toString().trim() === `${CHANNEL}\n1`, 10000)
  await waitFor('the redisx adapter to create its group',
    () => execFileSync('redis-cli', ['XINFO', 'GROUPS', CHANNEL]).toString().includes('bx'), 10000)
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

// The gem's redisx adapter: XADD <stream> * payload <payload>.
function redisxAdd(payload) {
  execFileSync('redis-cli', ['XADD', CHANNEL, '*', 'payload', JSON.stringify(payload)])
}

// A NATS publisher on 127.0.0.1:4222, in the NATS text protocol: PUB,
// then PING, resolved on the server's PONG (so the message was taken).
function natsPublish(payload) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify(payload))
    const sock = net.connect(4222, '127.0.0.1')
    let seen = ''
    sock.on('error', reject)
    sock.on('data', (chunk) => {
      seen += chunk.toString()
      if (seen.includes('PONG')) {
        sock.end()
        resolve()
      }
    })
    sock.write(`CONNECT {"verbose":false}\r\nPUB ${CHANNEL} ${body.length}\r\n`)
    sock.write(body)
    sock.write('\r\nPING\r\n')
  })
}

test('@rails/actioncable receives broadcasts from the redisx and nats adapters', async () => {
  const consumer = createConsumer(`ws://${server.addr}/cable`)
  const got = []
  let connected = false
  try {
    consumer.subscriptions.create({ channel: '$pubsub', stream_name: 'gem/x' }, {
      connected() { connected = true },
      received(data) { got.push(data) }
    })
    await waitFor('subscription confirmed', () => connected)
    redisxAdd({ stream: 'gem/x', data: JSON.stringify({ via: 'redisx' }) })
    redisxAdd([{ stream: 'gem/x', data: JSON.stringify({ n: 1 }) }, { stream: 'gem/x', data: JSON.stringify({ n: 2 }) }])
    await waitFor('3 redisx messages', () => got.length >= 3, 10000)
    // The nats adapter subscribes asynchronously: probe until it takes one.
    let probes = 0
    await waitFor('the nats adapter to take a broadcast', async () => {
      if (got.some((m) => m.probe)) return true
      await natsPublish({ stream: 'gem/x', data: JSON.stringify({ probe: ++probes }) })
      await new Promise((r) => setTimeout(r, 50))
      return false
    }, 10000)
    await natsPublish([{ stream: 'gem/x', data: JSON.stringify({ via: 'nats' }) }, { stream: 'gem/x', data: JSON.stringify({ n: 3 }) }])
    await waitFor('the nats batch', () => got.filter((m) => !m.probe).length >= 5, 10000)
    const rest = got.filter((m) => !m.probe)
    assert.deepEqual(rest, [{ via: 'redisx' }, { n: 1 }, { n: 2 }, { via: 'nats' }, { n: 3 }])
  } finally {
    consumer.disconnect()
  }
})

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
  for (const send of [postBroadcast, redisPublish, redisxAdd, natsPublish]) {
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
