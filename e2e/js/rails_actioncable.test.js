import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'

// @rails/actioncable is written for browsers: give it the few globals it
// touches before loading it.
globalThis.document = { visibilityState: 'visible', head: { querySelector: () => null } }
globalThis.addEventListener = () => {}
globalThis.removeEventListener = () => {}
const { createConsumer, adapters } = await import('@rails/actioncable')
adapters.WebSocket = WebSocket

let server

// --norpc: the rejection tested below is standalone Cablehub's; with RPC on
// (the default, as in AnyCable) an unknown channel goes to the back end at
// localhost:50051, and with none there the command is dropped unanswered.
before(async () => {
  server = await startServer(['--secret', SECRET, '--noauth', '--public_streams', '--norpc'])
})
after(async () => {
  await server.stop()
})

test('@rails/actioncable subscribes to a $pubsub stream and receives publications', async () => {
  const consumer = createConsumer(`ws://${server.addr}/cable`)
  const got = []
  let connected = false
  try {
    consumer.subscriptions.create({ channel: '$pubsub', stream_name: 'rails/1' }, {
      connected() { connected = true },
      received(data) { got.push(data) }
    })
    await waitFor('subscription confirmed', () => connected)
    await publish(server, API_TOKEN, { stream: 'rails/1', data: JSON.stringify({ text: 'from rails' }) })
    await publish(server, API_TOKEN, { stream: 'rails/1', data: JSON.stringify({ text: 'second' }), meta: { broadcast_type: 'custom' } })
    await waitFor('2 messages', () => got.length >= 2)
    assert.deepEqual(got, [{ text: 'from rails' }, { text: 'second' }])
  } finally {
    consumer.disconnect()
  }
})

test('@rails/actioncable sees a rejected subscription', async () => {
  const consumer = createConsumer(`ws://${server.addr}/cable`)
  let rejected = false
  try {
    consumer.subscriptions.create({ channel: 'ChatChannel' }, { rejected() { rejected = true } })
    await waitFor('rejection', () => rejected)
  } finally {
    consumer.disconnect()
  }
})
