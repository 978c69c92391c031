// The client against the built binary (--secret, --public): what a
// WebSocket subscriber receives for each call, and presence read back.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createClient } from '../src/index.js'
import { Cable, SECRET, jwt, startServer, waitFor } from './helpers.js'

let server
let client
const cables = []

before(async () => {
  server = await startServer()
  client = createClient({ url: server.grpcAddr, secret: SECRET })
})

after(async () => {
  for (const c of cables) c.close()
  client?.close()
  await server?.stop()
})

async function connect(query = '', protocol) {
  const cable = await Cable.connect(server.wsUrl + query, protocol)
  cables.push(cable)
  return cable
}

// The identifier of stream `s` as it appears inside a frame's JSON text.
function quotedId(s) {
  return JSON.stringify(JSON.stringify({ channel: '$pubsub', stream_name: s }))
}

// stored is the exact text of the frame a subscriber of stream `s` gets for
// a publication stored in history at `offset`; `message` is the JSON text
// the server re-encodes the data as (object keys sorted); `type` the
// publication's broadcastType, if any.
function stored(s, message, offset, type) {
  const typeField = type ? `"type":${JSON.stringify(type)},` : ''
  return `{${typeField}"identifier":${quotedId(s)},"message":${message},"stream_id":"${s}","epoch":"${server.epoch}","offset":${offset}}`
}

test('publish reaches a subscriber: the exact frame', async () => {
  const cable = await connect()
  await cable.subscribe('chat')
  await client.publish('chat', JSON.stringify({ text: 'hello' }))
  assert.equal(await cable.nextRaw(), stored('chat', '{"text":"hello"}', 1))
})

test('publish sends non-string data as JSON text; plain text arrives as a JSON string', async () => {
  const cable = await connect()
  await cable.subscribe('data')
  await client.publish('data', { n: 1, list: [true, null] })
  await client.publish('data', 'just text')
  assert.equal(await cable.nextRaw(), stored('data', '{"list":[true,null],"n":1}', 1))
  assert.equal(await cable.nextRaw(), stored('data', '"just text"', 2))
})

test('publish options: broadcastType becomes "type", transient gets no offset', async () => {
  const cable = await connect()
  await cable.subscribe('opts')
  await client.publish('opts', '{"n":1}', { transient: true, broadcastType: 'note' })
  assert.equal(await cable.nextRaw(), `{"type":"note","identifier":${quotedId('opts')},"message":{"n":1}}`)
  await client.publish('opts', '{"n":2}')
  assert.equal(await cable.nextRaw(), stored('opts', '{"n":2}', 1), 'the transient publication took no offset')
})

test('publish excludeSocket skips that session only', async () => {
  const author = await connect()
  const other = await connect()
  await author.subscribe('room')
  await other.subscribe('room')
  await client.publish('room', '"not for the author"', { excludeSocket: author.welcome.sid })
  await client.publish('room', '"for all"')
  assert.deepEqual((await other.next()).message, 'not for the author')
  assert.deepEqual((await other.next()).message, 'for all')
  // Frames arrive in publish order, so the author's first is the second.
  assert.deepEqual((await author.next()).message, 'for all')
})

test('publishBatch delivers every publication in order', async () => {
  const a = await connect()
  const b = await connect()
  await a.subscribe('batch-a')
  await b.subscribe('batch-b')
  await client.publishBatch([
    { stream: 'batch-a', data: '1' },
    { stream: 'batch-b', data: '"b"', broadcastType: 'kind' },
    { stream: 'batch-a', data: '2' },
    { stream: 'batch-a', data: '{"n":3}' }
  ])
  assert.equal(await a.nextRaw(), stored('batch-a', '1', 1))
  assert.equal(await a.nextRaw(), stored('batch-a', '2', 2))
  assert.equal(await a.nextRaw(), stored('batch-a', '{"n":3}', 3))
  assert.equal(await b.nextRaw(), stored('batch-b', '"b"', 1, 'kind'))
})

test('presence reads back joined clients with info as plain values', async () => {
  assert.deepEqual(await client.presence('lobby'), { total: 0, records: [], truncated: false })
  const ann = await connect()
  const bob = await connect()
  const anon = await connect()
  const join = async (cable, presence) => {
    const identifier = await cable.subscribe('lobby')
    cable.send({ command: 'join', identifier, presence })
  }
  await join(ann, { id: 'u1', info: { name: 'Ann', tags: ['a', 1, true, null] } })
  await join(bob, { id: 'u2', info: 'Bob' })
  await join(anon, { id: 'u3' })
  let got
  await waitFor('three presence records', async () => (got = await client.presence('lobby')).total === 3)
  assert.deepEqual(got, {
    total: 3,
    records: [
      { id: 'u1', info: { name: 'Ann', tags: ['a', 1, true, null] } },
      { id: 'u2', info: 'Bob' },
      { id: 'u3', info: null }
    ],
    truncated: false
  })
})

test('disconnect closes the sessions with those identifiers', async () => {
  const identifiers = JSON.stringify({ user_id: 42 })
  const target = await connect('?jid=' + jwt(SECRET, { ext: identifiers }))
  const bystander = await connect('?jid=' + jwt(SECRET, { ext: JSON.stringify({ user_id: 7 }) }))
  await client.disconnect(identifiers)
  assert.equal(await target.nextRaw(), '{"type":"disconnect","reason":"remote","reconnect":false}')
  assert.equal(await target.closed, 1000)
  // The bystander is still served: it gets a confirmation.
  await bystander.subscribe('still-here')
})

test('disconnect with reconnect: true tells the client to reconnect', async () => {
  const identifiers = 'user-9'
  const target = await connect('?jid=' + jwt(SECRET, { ext: identifiers }))
  await client.disconnect(identifiers, { reconnect: true })
  assert.equal(await target.nextRaw(), '{"type":"disconnect","reason":"remote","reconnect":true}')
  assert.equal(await target.closed, 1000)
})

test('url may be a bare host:port or an http:// URL', async () => {
  const cable = await connect()
  await cable.subscribe('urls')
  const viaHttp = createClient({ url: 'http://' + server.grpcAddr, secret: SECRET })
  try {
    await viaHttp.publish('urls', '"http"')
  } finally {
    viaHttp.close()
  }
  assert.deepEqual((await cable.next()).message, 'http')
})
