import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import WebSocket from 'ws'
import { createCable } from '@anycable/core'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'

// Two nodes sharing Redis (broker and pub/sub) in DB 5.
const REDIS = 'redis://127.0.0.1:6379/5'
let a, b

before(async () => {
  execFileSync('redis-cli', ['-n', '5', 'flushdb'])
  const args = ['--secret', SECRET, '--noauth', '--public_streams', '--broker', 'redis', '--redis_url', REDIS]
  a = await startServer(args)
  b = await startServer(args)
})
after(async () => {
  await a.stop()
  await b.stop()
})

function cableOn(server) {
  return createCable(`ws://${server.addr}/cable`, {
    websocketImplementation: WebSocket,
    protocol: 'actioncable-v1-ext-json',
    logLevel: 'error'
  })
}

test('clients on two nodes receive publications made through either node', async () => {
  const ca = cableOn(a)
  const cb = cableOn(b)
  try {
    const stream = `cluster/js/${Date.now()}`
    const gotA = []
    const gotB = []
    const chA = ca.streamFrom(stream)
    const chB = cb.streamFrom(stream)
    chA.on('message', m => gotA.push(m))
    chB.on('message', m => gotB.push(m))
    await chA.ensureSubscribed()
    await chB.ensureSubscribed()
    await publish(a, API_TOKEN, { stream, data: JSON.stringify({ via: 'a' }) })
    await publish(b, API_TOKEN, { stream, data: JSON.stringify({ via: 'b' }) })
    await waitFor('both messages on both nodes', () => gotA.length >= 2 && gotB.length >= 2)
    assert.deepEqual(gotA, [{ via: 'a' }, { via: 'b' }])
    assert.deepEqual(gotB, [{ via: 'a' }, { via: 'b' }])
  } finally {
    ca.disconnect()
    cb.disconnect()
  }
})

test('presence joined on node A is seen by a client on node B and through B\'s REST API', async () => {
  const ca = cableOn(a)
  const cb = cableOn(b)
  try {
    const stream = `cluster/room/${Date.now()}`
    const chA = ca.streamFrom(stream)
    const chB = cb.streamFrom(stream)
    await chA.ensureSubscribed()
    await chB.ensureSubscribed()
    const events = []
    chB.on('presence', m => events.push(m))
    await chA.presence.join('alice', { node: 'a' })
    await waitFor('join seen on B', () => events.some(e => e.type === 'join' && e.id === 'alice'))
    assert.deepEqual(await chB.presence.info(), { alice: { node: 'a' } })
    const res = await fetch(`http://${b.addr}/api/presence/${encodeURIComponent(stream)}/users`, {
      headers: { Authorization: `Bearer ${API_TOKEN}` }
    })
    assert.equal(await res.text(), '{"type":"info","total":1,"records":[{"id":"alice","info":{"node":"a"}}]}')
    await chA.presence.leave()
    await waitFor('leave seen on B', () => events.some(e => e.type === 'leave' && e.id === 'alice'))
  } finally {
    ca.disconnect()
    cb.disconnect()
  }
})
