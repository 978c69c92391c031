import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { createCable } from '@anycable/core'
import { startServer, SECRET, API_TOKEN, sign, jwt, publish, waitFor } from './server.js'

let server

before(async () => {
  server = await startServer(['--secret', SECRET, '--noauth', '--public_streams'])
})
after(async () => {
  await server.stop()
})

function cableFor(opts = {}) {
  return createCable(`ws://${server.addr}/cable`, {
    websocketImplementation: WebSocket,
    protocol: 'actioncable-v1-ext-json',
    logLevel: 'error',
    ...opts
  })
}

test('streamFrom receives REST publications in order (extended protocol)', async () => {
  const cable = cableFor()
  try {
    const channel = cable.streamFrom('chat/1')
    const got = []
    channel.on('message', msg => got.push(msg))
    await channel.ensureSubscribed()
    await publish(server, API_TOKEN, { stream: 'chat/1', data: JSON.stringify({ text: 'hello' }) })
    await publish(server, API_TOKEN, [
      { stream: 'chat/1', data: JSON.stringify({ n: 1 }) },
      { stream: 'other', data: JSON.stringify({ n: 2 }) },
      { stream: 'chat/1', data: 'plain text' }
    ])
    await waitFor('3 messages', () => got.length >= 3)
    assert.deepEqual(got, [{ text: 'hello' }, { n: 1 }, 'plain text'])
  } finally {
    cable.disconnect()
  }
})

test('streamFromSigned verifies the signed name', async () => {
  const cable = cableFor({ protocol: 'actioncable-v1-json' })
  try {
    const channel = cable.streamFromSigned(sign('secret/1', SECRET))
    const got = []
    channel.on('message', msg => got.push(msg))
    await channel.ensureSubscribed()
    await publish(server, API_TOKEN, { stream: 'secret/1', data: JSON.stringify({ hello: 'signed' }) })
    await waitFor('signed message', () => got.length >= 1)
    assert.deepEqual(got, [{ hello: 'signed' }])

    const bad = cable.streamFromSigned(sign('secret/1', 'wrong-key'))
    await assert.rejects(bad.ensureSubscribed())
  } finally {
    cable.disconnect()
  }
})

test('JWT via auth.token identifies the connection; exclude_socket and remote disconnect work', async () => {
  const token = jwt(SECRET, { ext: JSON.stringify({ user_id: 42 }), exp: Math.floor(Date.now() / 1000) + 3600 })
  const cable = cableFor({ auth: { token } })
  const disconnects = []
  // reconnect:false closes the cable ('close'); otherwise 'disconnect'.
  for (const event of ['disconnect', 'close']) cable.on(event, ev => disconnects.push(ev && ev.reason))
  try {
    const channel = cable.streamFrom('jwt/1')
    const got = []
    channel.on('message', msg => got.push(msg))
    await channel.ensureSubscribed()
    assert.equal(cable.state, 'connected')
    await publish(server, API_TOKEN, { stream: 'jwt/1', data: '"skipped"', meta: { exclude_socket: cable.sessionId } })
    await publish(server, API_TOKEN, { stream: 'jwt/1', data: '"delivered"' })
    await waitFor('delivered', () => got.length >= 1)
    assert.deepEqual(got, ['delivered'])

    await publish(server, API_TOKEN, { command: 'disconnect', payload: { identifier: JSON.stringify({ user_id: 42 }), reconnect: false } })
    await waitFor('remote disconnect', () => disconnects.includes('remote'))
  } finally {
    cable.disconnect()
  }
})

for (const { name, token, reason } of [
  { name: 'an expired token', token: jwt(SECRET, { ext: 'u', exp: Math.floor(Date.now() / 1000) - 60 }), reason: 'token_expired' },
  { name: 'a forged token', token: jwt('not-the-secret', { ext: 'u' }), reason: 'unauthorized' }
]) {
  test(`${name} is refused with ${reason}`, async () => {
    const cable = cableFor({ auth: { token } })
    const reasons = []
    for (const event of ['disconnect', 'close']) cable.on(event, ev => reasons.push(ev && ev.reason))
    try {
      await assert.rejects(cable.connect())
      await waitFor(reason, () => reasons.includes(reason))
    } finally {
      cable.disconnect()
    }
  })
}
