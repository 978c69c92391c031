// The client against the built binary (--secret, --public): what a
// WebSocket subscriber receives for each call, and presence read back.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createClient } from '../src/index.js'
import { Cable, SECRET, binaryVersion, jwt, startServer, waitFor } from './helpers.js'

let server
let client
const cables = []

before(async () => {
  server = await startServer()
  client = createClient({ address: server.grpcAddr, secret: SECRET })
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

test('the address may be host:port or http://host:port; url is its older name', async () => {
  const cable = await connect()
  await cable.subscribe('urls')
  for (const options of [{ address: 'http://' + server.grpcAddr }, { url: server.grpcAddr }, { url: `http://${server.grpcAddr}/` }]) {
    const c = createClient({ ...options, secret: SECRET })
    try {
      await c.publish('urls', JSON.stringify(options))
    } finally {
      c.close()
    }
    assert.deepEqual((await cable.next()).message, options)
  }
})

test('idempotencyKey: the same key on the same stream is delivered and stored once', async () => {
  const cable = await connect()
  await cable.subscribe('idem')
  await client.publish('idem', '{"n":1}', { idempotencyKey: 'key-1' })
  await client.publish('idem', '{"n":1}', { idempotencyKey: 'key-1' })
  await client.publish('idem', '{"n":2}', { idempotencyKey: 'key-2' })
  await client.publish('idem', '{"n":3}')
  // Frames come in publish order: the retry would be the second.
  assert.equal(await cable.nextRaw(), stored('idem', '{"n":1}', 1))
  assert.equal(await cable.nextRaw(), stored('idem', '{"n":2}', 2))
  assert.equal(await cable.nextRaw(), stored('idem', '{"n":3}', 3))
  const history = await client.history('idem')
  assert.deepEqual(history.publications.map(p => p.data), ['{"n":1}', '{"n":2}', '{"n":3}'])

  // The scope is the stream: the same key elsewhere is another publication.
  await client.publish('idem-other', '"x"', { idempotencyKey: 'key-1' })
  assert.equal((await client.history('idem-other')).publications.length, 1)
})

test('publishBatch carries each publication\'s idempotencyKey: a repeated batch is a no-op', async () => {
  const batch = [
    { stream: 'idem-batch', data: '"a"', idempotencyKey: 'batch-a' },
    { stream: 'idem-batch', data: '"b"', idempotencyKey: 'batch-b' }
  ]
  await client.publishBatch(batch)
  await client.publishBatch(batch)
  await client.publishBatch([...batch, { stream: 'idem-batch', data: '"c"', idempotencyKey: 'batch-c' }])
  const history = await client.history('idem-batch')
  assert.deepEqual(history.publications, [{ offset: 1, data: '"a"' }, { offset: 2, data: '"b"' }, { offset: 3, data: '"c"' }])
})

test('presenceStats counts unique ids and joined sessions', async () => {
  assert.deepEqual(await client.presenceStats('stats'), { users: 0, sessions: 0 })
  const join = async (id) => {
    const cable = await connect()
    const identifier = await cable.subscribe('stats')
    cable.send({ command: 'join', identifier, presence: { id, info: { id } } })
  }
  await join('ann')
  await join('ann') // a second tab of the same user
  await join('bob')
  let got
  await waitFor('three sessions', async () => (got = await client.presenceStats('stats')).sessions === 3)
  assert.deepEqual(got, { users: 2, sessions: 3 })
})

test('history: everything retained, the latest, after a position, and an unknown stream', async () => {
  for (let n = 1; n <= 5; n++) await client.publish('hist', JSON.stringify({ n }))
  await client.publish('hist', '"not kept"', { transient: true })
  const pubs = n => ({ offset: n, data: JSON.stringify({ n }) })
  const all = await client.history('hist')
  assert.deepEqual(all, { epoch: server.epoch, offset: 5, publications: [1, 2, 3, 4, 5].map(pubs), truncated: false })
  assert.deepEqual((await client.history('hist', { limit: 2 })).publications, [4, 5].map(pubs))
  assert.deepEqual((await client.history('hist', { epoch: all.epoch, since: 2 })).publications, [3, 4, 5].map(pubs))
  assert.deepEqual((await client.history('hist', { epoch: all.epoch, since: 2n, limit: 1 })).publications, [3].map(pubs))
  assert.deepEqual((await client.history('hist', { epoch: all.epoch, since: 5 })).publications, [])
  assert.deepEqual(await client.history('hist-never'), { epoch: '', offset: 0, publications: [], truncated: false })
})

test('listStreams: streams with subscribers, their counts, by prefix, limited', async () => {
  const a1 = await connect()
  const a2 = await connect()
  await a1.subscribe('ls/a')
  await a2.subscribe('ls/a')
  await a1.subscribe('ls/b')
  await a1.subscribe('other-ls')
  assert.deepEqual(await client.listStreams({ prefix: 'ls/' }), {
    streams: [{ name: 'ls/a', subscribers: 2 }, { name: 'ls/b', subscribers: 1 }],
    unavailableNodes: [],
    truncated: false
  })
  assert.deepEqual(await client.listStreams({ prefix: 'ls/', limit: 1 }), {
    streams: [{ name: 'ls/a', subscribers: 2 }],
    unavailableNodes: [],
    truncated: true
  })
  const all = await client.listStreams()
  assert.ok(all.streams.some(s => s.name === 'other-ls' && s.subscribers === 1), JSON.stringify(all))
  assert.deepEqual(all.streams.map(s => s.name), all.streams.map(s => s.name).sort())
  a2.close()
  await waitFor('ls/a down to one subscriber', async () =>
    (await client.listStreams({ prefix: 'ls/a' })).streams[0]?.subscribers === 1)
})

test('info describes the one node: version, uptime, connections, subscriptions, streams, counters', async () => {
  const before = await client.info()
  assert.equal(before.nodes.length, 1)
  assert.deepEqual(before.unavailableNodes, [])
  const node = before.nodes[0]
  assert.match(node.id, /.+/)
  assert.ok(binaryVersion().includes(node.version), `version ${node.version} not in: ${binaryVersion()}`)
  assert.ok(node.uptimeSeconds >= 0)

  const c1 = await connect()
  const c2 = await connect()
  await c1.subscribe('info-new')
  await c2.subscribe('info-new')
  let now
  await waitFor('the two connections and subscriptions counted', async () => {
    now = (await client.info()).nodes[0]
    return now.connections === node.connections + 2 && now.subscriptions === node.subscriptions + 2
  })
  assert.equal(now.id, node.id)
  assert.equal(now.streams, node.streams + 1)

  // The counters: two publications accepted, one reaching both
  // subscribers; no RPC back end to call (--public).
  for (const k of ['publishedTotal', 'deliveriesTotal', 'rpcCallsTotal']) {
    assert.equal(typeof node[k], 'number', `${k}: ${node[k]}`)
  }
  await client.publish('info-nobody', '"x"')
  await client.publish('info-new', '"y"')
  assert.equal((await c1.next()).message, 'y')
  assert.equal((await c2.next()).message, 'y')
  await waitFor('the publications counted', async () => {
    now = (await client.info()).nodes[0]
    return now.publishedTotal >= node.publishedTotal + 2 && now.deliveriesTotal >= node.deliveriesTotal + 2
  })
  assert.equal(now.publishedTotal, node.publishedTotal + 2)
  assert.equal(now.deliveriesTotal, node.deliveriesTotal + 2)
  assert.equal(now.rpcCallsTotal, 0)
})

test('many calls and watches at once: all answered, no listener-leak warning', async () => {
  const warnings = []
  const onWarning = w => warnings.push(w)
  process.on('warning', onWarning)
  const watches = Array.from({ length: 15 }, () => client.watch('many'))
  try {
    await Promise.all(watches.map(w => w.ready))
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.publish('many', String(i))))
    assert.equal((await client.history('many')).offset, 40)
    const firsts = await Promise.all(watches.map(w => w[Symbol.asyncIterator]().next()))
    assert.ok(firsts.every(r => !r.done && r.value.offset === 1), JSON.stringify(firsts[0]))
  } finally {
    for (const w of watches) w.close()
    process.off('warning', onWarning)
  }
  // Warnings are emitted on the next tick.
  await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(warnings.map(w => w.name), [])
})
