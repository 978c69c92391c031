import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { createCable } from '@anycable/core'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'

let server

before(async () => {
  server = await startServer(['--secret', SECRET, '--noauth', '--public_streams', '--presence_ttl', '2'])
})
after(async () => {
  await server.stop()
})

function cableFor() {
  return createCable(`ws://${server.addr}/cable`, {
    websocketImplementation: WebSocket,
    protocol: 'actioncable-v1-ext-json',
    logLevel: 'error'
  })
}

async function restPresence(stream) {
  const res = await fetch(`http://${server.addr}/api/presence/${encodeURIComponent(stream)}/users`, {
    headers: { Authorization: `Bearer ${API_TOKEN}` }
  })
  assert.equal(res.status, 200)
  return res.text()
}

test('channel.presence join, info and leave, seen by others and by REST', async () => {
  const a = cableFor()
  const b = cableFor()
  try {
    const ca = a.streamFrom('room/js')
    const cb = b.streamFrom('room/js')
    await ca.ensureSubscribed()
    await cb.ensureSubscribed()
    const events = []
    cb.on('presence', msg => events.push(msg))

    await ca.presence.join('user-1', { name: 'Alice' })
    await waitFor('join event', () => events.some(e => e.type === 'join' && e.id === 'user-1'))
    assert.deepEqual(events.find(e => e.type === 'join'), { id: 'user-1', info: { name: 'Alice' }, type: 'join' })
    await cb.presence.join('user-2', 'Bob')
    await waitFor('second join', () => events.some(e => e.type === 'join' && e.id === 'user-2'))

    assert.deepEqual(await cb.presence.info(), { 'user-1': { name: 'Alice' }, 'user-2': 'Bob' })
    assert.equal(await restPresence('room/js'),
      '{"type":"info","total":2,"records":[{"id":"user-1","info":{"name":"Alice"}},{"id":"user-2","info":"Bob"}]}')

    await ca.presence.leave()
    await waitFor('leave event', () => events.some(e => e.type === 'leave' && e.id === 'user-1'))
    await waitFor('REST after leave', async () =>
      (await restPresence('room/js')) === '{"type":"info","total":1,"records":[{"id":"user-2","info":"Bob"}]}')
  } finally {
    a.disconnect()
    b.disconnect()
  }
})

test('a client whose socket is terminated gets exactly the messages it missed, in order', async () => {
  const cable = cableFor()
  try {
    const channel = cable.streamFrom('resume/js')
    const got = []
    channel.on('message', msg => got.push(msg.n))
    await channel.ensureSubscribed()
    const pub = n => publish(server, API_TOKEN, { stream: 'resume/js', data: JSON.stringify({ n }) })
    for (let n = 1; n <= 3; n++) await pub(n)
    await waitFor('first messages', () => got.length === 3)

    let restored = false
    cable.on('connect', ev => { if (ev && ev.restored) restored = true })
    cable.transport.ws.terminate()
    for (let n = 4; n <= 6; n++) await pub(n) // while the client is away
    await waitFor('reconnect with session restore', () => restored, 20000)
    for (let n = 7; n <= 8; n++) await pub(n)
    await waitFor('all messages', () => got.length >= 8, 10000)
    // One more round trip, so a late duplicate would show up.
    await pub(9)
    await waitFor('last message', () => got.includes(9))
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9])
  } finally {
    cable.disconnect()
  }
})

test('presence of a dropped client goes after the TTL, with a leave event', async () => {
  const a = cableFor()
  const b = cableFor()
  try {
    const ca = a.streamFrom('room/ttl')
    const cb = b.streamFrom('room/ttl')
    await ca.ensureSubscribed()
    await cb.ensureSubscribed()
    const events = []
    cb.on('presence', msg => events.push(msg))
    await ca.presence.join('gone', null)
    await waitFor('join', () => events.some(e => e.type === 'join'))
    a.disconnect() // closes the socket; the client does not leave first
    await waitFor('leave after TTL', () => events.some(e => e.type === 'leave' && e.id === 'gone'), 10000)
    assert.equal(await restPresence('room/ttl'), '{"type":"info","total":0}')
  } finally {
    b.disconnect()
  }
})
