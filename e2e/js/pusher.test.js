// Pusher mode (--pusher_app_*) through the clients Pusher applications
// use: pusher-js 8.6.0 (its Node build) and Laravel Echo 2.5.0 on it, with
// channel authorizations and sign-ins made by the official server SDK
// (`pusher` 5.3.4). Events are published with /api/publish (the channel
// is the stream); what needs the Pusher HTTP API is in pusher_api.test.js.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import Pusher from 'pusher-js'
import Echo from 'laravel-echo'
import WebSocket from 'ws'
import { waitFor, publish, API_TOKEN } from './server.js'
import { startPusher, sdkFor, connect, record, clientOptions, publishEvent, fence, KEY } from './pusher_clients.js'

const env = await startPusher()
after(() => env.stop())

// echo opens a Laravel Echo (broadcaster 'pusher') on a pusher-js client
// made from clientOptions(env, opts), recorded like connect's.
function echo(t, opts) {
  const e = new Echo({ broadcaster: 'pusher', key: KEY, Pusher, withoutInterceptors: true, ...clientOptions(env, opts) })
  const c = record(t, env, e.connector.pusher)
  c.echo = e
  return c
}

// collect gathers the first argument fn's handler is called with (a
// channel's event data); collectAll every argument (data and metadata).
function collect(fn) {
  const seen = []
  fn(arg => seen.push(arg))
  return seen
}

function collectAll(fn) {
  const seen = []
  fn((...args) => seen.push(args))
  return seen
}

const alice = { user_id: 'alice', user_info: { name: 'Alice' } }
const bob = { user_id: 'bob', user_info: { name: 'Bob' } }

test('public channel: pusher-js subscribes and receives the events /api/publish sends to the channel', async t => {
  const a = connect(t, env)
  await a.connected()
  const ch = a.pusher.subscribe('news')
  const succeeded = collect(h => ch.bind('pusher:subscription_succeeded', h))
  const fromApi = collect(h => ch.bind('from-api', h))
  const global = collect(h => a.pusher.bind_global((event, data) => h({ event, data })))
  await waitFor('pusher:subscription_succeeded', () => succeeded.length === 1)
  assert.equal(ch.subscribed, true)
  assert.equal(a.got('pusher_internal:subscription_succeeded', 'news').length, 1)

  await publishEvent(env, 'news', 'from-api', { x: 1 })
  await waitFor('from-api on news', () => fromApi.length === 1)
  assert.deepEqual(fromApi[0], { x: 1 })
  assert.deepEqual(global.filter(g => g.event === 'from-api'), [{ event: 'from-api', data: { x: 1 } }])

  // A publication that is not a Pusher event ({"event":..,"data":..}) is
  // not delivered to Pusher clients; nor is another channel's.
  await publishEvent(env, 'other', 'from-api', { x: 2 })
  await publish(env.server, API_TOKEN, { stream: 'news', data: JSON.stringify('plain text') })
  await fence(env, 'news', a)
  assert.deepEqual(a.frames.filter(f => f.channel !== 'news' || !['fence', 'from-api', 'pusher_internal:subscription_succeeded'].includes(f.event)), [])
  assert.equal(fromApi.length, 1)
})

test('Laravel Echo: .channel("news").listen(".announce") and a namespaced Laravel event name (listen("OrderShipped"))', async t => {
  const e = echo(t)
  await e.connected()
  const news = e.echo.channel('news')
  const ok = collect(h => news.subscribed(h))
  const announce = collect(h => news.listen('.announce', h))
  const shipped = collect(h => news.listen('OrderShipped', h))
  await waitFor('Echo .subscribed()', () => ok.length === 1)
  await publishEvent(env, 'news', 'announce', { text: 'hi' })
  // Laravel broadcasts an event class under App\Events by its class name.
  await publishEvent(env, 'news', 'App\\Events\\OrderShipped', { order: 1 })
  await waitFor('both events', () => announce.length === 1 && shipped.length === 1)
  assert.deepEqual(announce[0], { text: 'hi' })
  assert.deepEqual(shipped[0], { order: 1 })
  e.echo.leave('news')
  await waitFor('unsubscribed', () => e.pusher.channel('news') === undefined)
})

test('private channel: an SDK-signed authorization subscribes; forged ones get pusher:subscription_error (pusher-js and Echo .error())', async t => {
  const owner = connect(t, env)
  await owner.connected()
  const orders = await owner.subscribe('private-orders')
  const got = collect(h => orders.bind('shipped', h))
  await publishEvent(env, 'private-orders', 'shipped', { id: 7 })
  await waitFor('shipped', () => got.length === 1)
  assert.deepEqual(got[0], { id: 7 })

  const wrongSecret = sdkFor(env.server, 'not-the-secret')
  const forgeries = {
    'wrong secret': ({ socketId, channelName }) => wrongSecret.authorizeChannel(socketId, channelName),
    'another socket id': ({ channelName }) => env.sdk.authorizeChannel('1234.5678', channelName),
    'another channel': ({ socketId }) => env.sdk.authorizeChannel(socketId, 'private-other'),
    'missing auth': () => ({}),
    'empty auth': () => ({ auth: '' }),
    'garbage': () => ({ auth: 'garbage' }),
    'another key': ({ socketId, channelName }) => ({ auth: 'key-2:' + env.sdk.authorizeChannel(socketId, channelName).auth.split(':')[1] }),
    'public channel signature': ({ socketId }) => env.sdk.authorizeChannel(socketId, 'orders')
  }
  for (const [name, authorize] of Object.entries(forgeries)) {
    const c = connect(t, env, { authorize })
    await c.connected()
    const ch = c.pusher.subscribe('private-orders')
    const errors = collect(h => ch.bind('pusher:subscription_error', h))
    await waitFor(`${name}: pusher:subscription_error`, () => errors.length === 1 || ch.subscribed)
    assert.equal(ch.subscribed, false, name)
    assert.equal(errors[0].type, 'AuthError', name)
    assert.equal(errors[0].status, 403, name)
    assert.equal(typeof errors[0].error, 'string', name)
    // Still connected, and given nothing of the channel.
    await publishEvent(env, 'private-orders', 'shipped', { id: name })
    await fence(env, 'private-orders', owner)
    c.pusher.subscribe('news')
    await waitFor('news', () => c.pusher.channel('news').subscribed)
    await fence(env, 'news', c)
    assert.equal(c.pusher.connection.state, 'connected', name)
    assert.deepEqual(c.got('shipped'), [], name)
    c.pusher.disconnect()
  }
  assert.equal(got.length, 1 + Object.keys(forgeries).length)

  // Laravel Echo: .private('orders') is private-orders; a forged
  // authorization reaches .error(), never .subscribed() nor .listen().
  const forged = echo(t, { authorize: ({ socketId, channelName }) => wrongSecret.authorizeChannel(socketId, channelName) })
  await forged.connected()
  const ch = forged.echo.private('orders')
  const echoErrors = collect(h => ch.error(h))
  const subscribed = collect(h => ch.subscribed(h))
  await waitFor('Echo .error()', () => echoErrors.length === 1)
  assert.equal(echoErrors[0].type, 'AuthError')
  assert.equal(echoErrors[0].status, 403)
  assert.deepEqual(forged.got('pusher:subscription_error').map(f => f.channel), ['private-orders'])
  assert.equal(subscribed.length, 0)

  const good = echo(t)
  await good.connected()
  const gch = good.echo.private('orders')
  const ok = collect(h => gch.subscribed(h))
  const shipped = collect(h => gch.listen('.shipped', h))
  await waitFor('Echo .subscribed()', () => ok.length === 1)
  await publishEvent(env, 'private-orders', 'shipped', { id: 8 })
  await waitFor('Echo .listen(".shipped")', () => shipped.length === 1)
  assert.deepEqual(shipped[0], { id: 8 })
})

test('presence channel: forged channel_data (another user, a private-style signature, none) is refused', async t => {
  const forgeries = {
    'signed for alice, claims bob': ({ socketId, channelName }) =>
      ({ ...env.sdk.authorizeChannel(socketId, channelName, alice), channel_data: JSON.stringify(bob) }),
    'private-style signature': ({ socketId, channelName }) =>
      ({ auth: env.sdk.authorizeChannel(socketId, channelName).auth, channel_data: JSON.stringify(alice) })
  }
  for (const [name, authorize] of Object.entries(forgeries)) {
    const c = connect(t, env, { authorize })
    await c.connected()
    const ch = c.pusher.subscribe('presence-forged')
    const errors = collect(h => ch.bind('pusher:subscription_error', h))
    await waitFor(`${name}: pusher:subscription_error`, () => errors.length === 1 || ch.subscribed)
    assert.equal(ch.subscribed, false, name)
    assert.equal(errors[0].status, 403, `${name}: ${JSON.stringify(c.got('pusher:subscription_error'))}`)
    c.pusher.disconnect()
  }
  // pusher-js itself refuses an authorization without channel_data for a
  // presence channel, so this one goes through its connection as is.
  const c = connect(t, env)
  const sid = await c.connected()
  c.pusher.send_event('pusher:subscribe', { channel: 'presence-forged', auth: env.sdk.authorizeChannel(sid, 'presence-forged').auth })
  await waitFor('pusher:subscription_error without channel_data', () => c.got('pusher:subscription_error', 'presence-forged').length === 1)
  assert.equal(c.got('pusher:subscription_error', 'presence-forged')[0].data.status, 403)
  assert.deepEqual(c.got('pusher_internal:subscription_succeeded'), [])
})

test('presence channel: members, member_added to the others only, member_removed at once on unsubscribe and on disconnect', async t => {
  const a = connect(t, env, { presence: alice })
  await a.connected()
  const ra = a.pusher.subscribe('presence-room')
  const added = collect(h => ra.bind('pusher:member_added', h))
  const removed = collect(h => ra.bind('pusher:member_removed', h))
  await waitFor('alice in presence-room', () => ra.subscribed)
  assert.equal(ra.members.count, 1)
  assert.deepEqual(ra.members.me, { id: 'alice', info: { name: 'Alice' } })

  const b = connect(t, env, { presence: bob })
  await b.connected()
  const rb = b.pusher.subscribe('presence-room')
  const bSucceeded = collect(h => rb.bind('pusher:subscription_succeeded', h))
  const bAdded = collect(h => rb.bind('pusher:member_added', h))
  await waitFor('bob in presence-room', () => bSucceeded.length === 1)
  assert.equal(rb.members.count, 2)
  assert.deepEqual(rb.members.me, { id: 'bob', info: { name: 'Bob' } })
  const roster = []
  rb.members.each(m => roster.push(m))
  assert.deepEqual(roster.sort((x, y) => x.id.localeCompare(y.id)),
    [{ id: 'alice', info: { name: 'Alice' } }, { id: 'bob', info: { name: 'Bob' } }])
  // The roster as sent: ids sorted, count, hash of infos.
  const sent = b.got('pusher_internal:subscription_succeeded', 'presence-room')[0].data
  assert.deepEqual(sent, { presence: { count: 2, ids: ['alice', 'bob'], hash: { alice: { name: 'Alice' }, bob: { name: 'Bob' } } } })

  await waitFor('member_added bob to alice', () => added.length === 1)
  assert.deepEqual(added[0], { id: 'bob', info: { name: 'Bob' } })
  assert.equal(ra.members.count, 2)
  await fence(env, 'presence-room', a, b)
  assert.deepEqual(b.got('pusher_internal:member_added'), [], 'bob is not told he joined')
  assert.equal(bAdded.length, 0)

  let t0 = Date.now()
  b.pusher.unsubscribe('presence-room')
  await waitFor('member_removed after unsubscribe', () => removed.length === 1, 3000)
  const afterUnsubscribe = Date.now() - t0
  assert.deepEqual(removed[0], { id: 'bob', info: { name: 'Bob' } })
  assert.equal(ra.members.count, 1)

  const rb2 = b.pusher.subscribe('presence-room')
  await waitFor('bob back', () => rb2.subscribed && added.length === 2)
  assert.equal(ra.members.count, 2)
  t0 = Date.now()
  b.pusher.disconnect()
  await waitFor('member_removed after disconnect', () => removed.length === 2, 3000)
  const afterDisconnect = Date.now() - t0
  assert.equal(removed[1].id, 'bob')
  assert.equal(ra.members.count, 1)
  assert.ok(afterUnsubscribe < 3000 && afterDisconnect < 3000, `${afterUnsubscribe} ms, ${afterDisconnect} ms`)
})

test('presence channel: a user on two connections is one member, removed when the last one leaves', async t => {
  const a = connect(t, env, { presence: alice })
  await a.connected()
  const ra = await a.subscribe('presence-two')
  const added = collect(h => ra.bind('pusher:member_added', h))
  const removed = collect(h => ra.bind('pusher:member_removed', h))

  const carol = { user_id: 'carol', user_info: { name: 'Carol' } }
  const c1 = connect(t, env, { presence: carol })
  const c2 = connect(t, env, { presence: carol })
  await c1.connected()
  await c2.connected()
  await c1.subscribe('presence-two')
  await waitFor('member_added carol', () => added.length === 1)
  const r2 = await c2.subscribe('presence-two')
  assert.equal(r2.members.count, 2, 'carol counts once in her second connection\'s roster')
  assert.deepEqual(c2.got('pusher_internal:subscription_succeeded', 'presence-two')[0].data.presence.ids, ['alice', 'carol'])
  await fence(env, 'presence-two', a, c1, c2)
  assert.equal(added.length, 1, 'her second connection adds no member')
  assert.equal(ra.members.count, 2)

  c1.pusher.disconnect()
  await waitFor('c1 closed', () => c1.pusher.connection.state === 'disconnected')
  await fence(env, 'presence-two', a, c2)
  assert.equal(removed.length, 0, 'carol is still there on her other connection')
  assert.equal(ra.members.count, 2)

  c2.pusher.unsubscribe('presence-two')
  await waitFor('member_removed carol', () => removed.length === 1, 3000)
  assert.equal(removed[0].id, 'carol')
  assert.equal(ra.members.count, 1)
})

test('presence channel: a connection dropped without a close frame is removed at once', async t => {
  const a = connect(t, env, { presence: alice })
  await a.connected()
  const ra = await a.subscribe('presence-drop')
  const added = collect(h => ra.bind('pusher:member_added', h))
  const removed = collect(h => ra.bind('pusher:member_removed', h))
  // pusher-js reconnects (and rejoins) after a drop, so the dropped
  // connection is a plain WebSocket speaking the protocol.
  const ws = new WebSocket(`ws://${env.server.addr}/app/${KEY}?protocol=7&client=js&version=8.6.0`)
  t.after(() => ws.terminate())
  const frames = []
  ws.on('message', m => frames.push(JSON.parse(m.toString())))
  await waitFor('connection_established', () => frames.some(f => f.event === 'pusher:connection_established'))
  const sid = JSON.parse(frames[0].data).socket_id
  const dave = { user_id: 'dave', user_info: { name: 'Dave' } }
  ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'presence-drop', ...env.sdk.authorizeChannel(sid, 'presence-drop', dave) } }))
  await waitFor('member_added dave', () => added.length === 1)
  const t0 = Date.now()
  ws.terminate()
  await waitFor('member_removed dave', () => removed.length === 1, 3000)
  assert.deepEqual(removed[0], { id: 'dave', info: { name: 'Dave' } })
  assert.ok(Date.now() - t0 < 3000)
})

test('a wrong app key: pusher-js is refused during the handshake and ends disconnected, never connected', async t => {
  const p = new Pusher('not-the-key', clientOptions(env))
  const c = record(t, env, p)
  await waitFor('disconnected', () => p.connection.state === 'disconnected')
  assert.deepEqual(c.states, ['disconnected'])
  assert.equal(p.connection.socket_id, undefined)
})

test('Laravel Echo presence: join().here().joining().leaving() with numeric user ids, as Laravel sends them', async t => {
  const e1 = echo(t, { presence: { user_id: 1, user_info: { id: 1, name: 'Taylor' } } })
  await e1.connected()
  const room = e1.echo.join('chat.1')
  const here = collect(h => room.here(h))
  const joining = collect(h => room.joining(h))
  const leaving = collect(h => room.leaving(h))
  await waitFor('here()', () => here.length === 1)
  assert.deepEqual(here[0], [{ id: 1, name: 'Taylor' }])

  const e2 = echo(t, { presence: { user_id: 42, user_info: { id: 42, name: 'Abigail' } } })
  await e2.connected()
  const room2 = e2.echo.join('chat.1')
  const here2 = collect(h => room2.here(h))
  const joining2 = collect(h => room2.joining(h))
  await waitFor('here() of the second', () => here2.length === 1)
  assert.deepEqual(here2[0].sort((x, y) => x.id - y.id), [{ id: 1, name: 'Taylor' }, { id: 42, name: 'Abigail' }])
  const roster = e2.got('pusher_internal:subscription_succeeded', 'presence-chat.1')[0].data.presence
  assert.deepEqual(roster.ids, ['1', '42'], 'numeric ids become their decimal text')
  await waitFor('joining()', () => joining.length === 1)
  assert.deepEqual(joining[0], { id: 42, name: 'Abigail' })
  assert.deepEqual(e1.got('pusher_internal:member_added')[0].data, { user_id: '42', user_info: { id: 42, name: 'Abigail' } })

  e2.echo.leave('chat.1')
  await waitFor('leaving()', () => leaving.length === 1, 3000)
  assert.deepEqual(leaving[0], { id: 42, name: 'Abigail' })
  assert.equal(joining2.length, 0)
})

test('client events on private and presence channels reach the other subscribers, not the sender; presence ones carry the sender\'s user_id', async t => {
  const a = connect(t, env, { presence: alice })
  const b = connect(t, env, { presence: bob })
  await a.connected()
  await b.connected()
  const pa = await a.subscribe('private-chat')
  const pb = await b.subscribe('private-chat')
  const ra = await a.subscribe('presence-chat')
  const rb = await b.subscribe('presence-chat')
  const onPrivate = { a: collect(h => pa.bind('client-typing', h)), b: collect(h => pb.bind('client-typing', h)) }
  const onPresence = { a: collectAll(h => ra.bind('client-typing', h)), b: collectAll(h => rb.bind('client-typing', h)) }

  assert.equal(pa.trigger('client-typing', { typing: true, who: 'alice' }), true)
  await waitFor('private client event to bob', () => onPrivate.b.length === 1)
  assert.deepEqual(onPrivate.b[0], { typing: true, who: 'alice' })
  assert.equal(b.got('client-typing', 'private-chat')[0].user_id, undefined, 'no user_id on a private channel')

  assert.equal(rb.trigger('client-typing', { typing: false, who: 'bob' }), true)
  await waitFor('presence client event to alice', () => onPresence.a.length === 1)
  const [data, metadata] = onPresence.a[0]
  assert.deepEqual(data, { typing: false, who: 'bob' })
  assert.deepEqual(metadata, { user_id: 'bob' })

  await fence(env, 'private-chat', a, b)
  await fence(env, 'presence-chat', a, b)
  assert.equal(onPrivate.a.length, 0, 'not echoed to alice')
  assert.equal(onPresence.b.length, 0, 'not echoed to bob')
  assert.deepEqual(a.got('client-typing', 'private-chat'), [])
  assert.deepEqual(b.got('client-typing', 'presence-chat'), [])

  // A client may not send client events on a public channel.
  const na = await a.subscribe('news-chat')
  const nb = await b.subscribe('news-chat')
  const onPublic = collect(h => nb.bind('client-typing', h))
  na.trigger('client-typing', { typing: true })
  await waitFor('pusher:error for a public client event', () => a.errors.length === 1)
  assert.equal(a.errors[0].type, 'PusherError')
  assert.equal(a.errors[0].data.code, null)
  assert.match(a.errors[0].data.message, /only supported on private and presence channels/)
  await fence(env, 'news-chat', a, b)
  assert.equal(onPublic.length, 0)
  assert.equal(a.pusher.connection.state, 'connected')
})

test('Laravel Echo whisper() and listenForWhisper() on private and presence channels', async t => {
  const e1 = echo(t, { presence: { user_id: 7, user_info: { name: 'Seven' } } })
  const e2 = echo(t, { presence: { user_id: 8, user_info: { name: 'Eight' } } })
  await e1.connected()
  await e2.connected()
  const p1 = e1.echo.private('room.5')
  const p2 = e2.echo.private('room.5')
  const w1 = collect(h => p1.listenForWhisper('typing', h))
  const w2 = collect(h => p2.listenForWhisper('typing', h))
  const s = collect(h => { p1.subscribed(h); p2.subscribed(h) })
  await waitFor('both subscribed to private-room.5', () => s.length === 2)
  p1.whisper('typing', { name: 'Seven' })
  await waitFor('whisper to the other', () => w2.length === 1)
  assert.deepEqual(w2[0], { name: 'Seven' })

  const j1 = e1.echo.join('room.5')
  const j2 = e2.echo.join('room.5')
  const h = collect(cb => { j1.here(cb); j2.here(cb) })
  const pw1 = collectAll(cb => j1.listenForWhisper('typing', cb))
  await waitFor('both here', () => h.length === 2)
  j2.whisper('typing', { name: 'Eight' })
  await waitFor('presence whisper to the other', () => pw1.length === 1)
  assert.deepEqual(pw1[0], [{ name: 'Eight' }, { user_id: '8' }])

  await fence(env, 'private-room.5', e1, e2)
  await fence(env, 'presence-room.5', e1, e2)
  assert.equal(w1.length, 0, 'a whisper is not echoed')
  assert.deepEqual(e2.got('client-typing', 'presence-room.5'), [])
})

test('/api/publish with meta.exclude_socket skips that socket_id and reaches the other connections', async t => {
  const a = connect(t, env)
  const b = connect(t, env)
  const sa = await a.connected()
  await b.connected()
  await a.subscribe('news-ex')
  await b.subscribe('news-ex')
  await publishEvent(env, 'news-ex', 'update', { n: 1 }, { exclude_socket: sa })
  await waitFor('b gets the update', () => b.got('update', 'news-ex').length === 1)
  await fence(env, 'news-ex', a, b)
  assert.deepEqual(a.got('update'), [], 'the excluded socket gets nothing')
  assert.deepEqual(b.got('update')[0].data, { n: 1 })
})

test('signin: pusher-js signs in with the SDK\'s authenticateUser, then gets the user\'s events (#server-to-user-<id>) on pusher.user', async t => {
  const u1 = connect(t, env, { user: { id: 'u1', name: 'User One' } })
  const u2 = connect(t, env, { user: { id: 'u2' } })
  await u1.connected()
  await u2.connected()
  const direct1 = collect(h => u1.pusher.user.bind('direct', h))
  const direct2 = collect(h => u2.pusher.user.bind('direct', h))
  u1.pusher.signin()
  u2.pusher.signin()
  await waitFor('signed in', () => u1.pusher.user.user_data && u2.pusher.user.user_data)
  assert.deepEqual(u1.pusher.user.user_data, { id: 'u1', name: 'User One' })
  assert.deepEqual(u1.got('pusher:signin_success').map(f => f.data), [{ user_data: JSON.stringify({ id: 'u1', name: 'User One' }) }])
  assert.equal(u1.pusher.user.serverToUserChannel.name, '#server-to-user-u1')

  await publishEvent(env, '#server-to-user-u1', 'direct', { msg: 'for u1' })
  await waitFor('direct to u1', () => direct1.length === 1)
  assert.deepEqual(direct1[0], { msg: 'for u1' })
  await publishEvent(env, '#server-to-user-u2', 'direct', { msg: 'for u2' })
  await waitFor('direct to u2', () => direct2.length === 1)
  assert.deepEqual(direct2[0], { msg: 'for u2' })
  assert.equal(direct1.length, 1)
  assert.deepEqual(u1.errors, [])
  assert.deepEqual(u1.got('pusher:subscription_error'), [], 'pusher-js\'s own subscription to #server-to-user-u1 is not refused')
})

test('signin: pusher-js\'s subscription to #server-to-user-<id> is confirmed, as pusher-js expects of the server', async t => {
  // After pusher:signin_success pusher-js sends its own pusher:subscribe
  // for the user's channel (auth "") and waits for
  // pusher_internal:subscription_succeeded on it: its own tests
  // (spec/javascripts/unit/core/user_spec.js) model the server so, and
  // until then pusher.user.serverToUserChannel is pending, not subscribed.
  const c = connect(t, env, { user: { id: 'u3' } })
  await c.connected()
  c.pusher.signin()
  await waitFor('signed in', () => c.pusher.user.user_data)
  await publishEvent(env, '#server-to-user-u3', 'direct', { n: 1 })
  await waitFor('an event on the user\'s channel', () => c.got('direct', '#server-to-user-u3').length === 1)
  await waitFor('an answer to the subscription', () =>
    c.pusher.user.serverToUserChannel.subscribed || c.got('pusher:subscription_error').length > 0, 2000).catch(() => {})
  const frames = JSON.stringify(c.frames)
  assert.deepEqual(c.got('pusher:subscription_error'), [], frames)
  assert.equal(c.got('pusher_internal:subscription_succeeded', '#server-to-user-u3').length, 1, frames)
  assert.equal(c.pusher.user.serverToUserChannel.subscribed, true)
})

test('an unknown event, invalid JSON, or a sign-in with a bad signature get pusher:error and the connection keeps working', async t => {
  const wrongSecret = sdkFor(env.server, 'not-the-secret')
  const c = connect(t, env, { authenticate: ({ socketId }) => wrongSecret.authenticateUser(socketId, { id: 'u9' }) })
  await c.connected()
  const news = await c.subscribe('news-after')
  const got = collect(h => news.bind('still', h))

  assert.equal(c.pusher.send_event('foo:bar', { x: 1 }), true)
  await waitFor('pusher:error for an unknown event', () => c.errors.length === 1)
  assert.equal(c.errors[0].data.code, null)
  assert.match(c.errors[0].data.message, /foo:bar/)

  assert.equal(c.pusher.connection.send('not json'), true)
  await waitFor('pusher:error for invalid JSON', () => c.errors.length === 2)
  assert.equal(c.errors[1].data.code, null)

  c.pusher.signin()
  await waitFor('pusher:error for the bad sign-in', () => c.errors.length === 3)
  assert.equal(c.errors[2].data.code, null)
  assert.deepEqual(c.got('pusher:signin_success'), [])
  assert.equal(c.pusher.user.user_data, null)

  await publishEvent(env, 'news-after', 'still', { ok: true })
  await waitFor('an event after the errors', () => got.length === 1)
  assert.deepEqual(got[0], { ok: true })
  assert.equal(c.pusher.connection.state, 'connected')
  assert.deepEqual(c.states, ['connected'], 'never disconnected')
  // Nor may it subscribe to the user's channel itself.
  c.pusher.send_event('pusher:subscribe', { auth: '', channel: '#server-to-user-u9' })
  await waitFor('subscription_error on #server-to-user-u9', () => c.got('pusher:subscription_error', '#server-to-user-u9').length === 1)
  assert.equal(c.got('pusher:subscription_error', '#server-to-user-u9')[0].data.status, 403)
  // Events on the user's stream do not reach a connection whose sign-in failed.
  await publishEvent(env, '#server-to-user-u9', 'direct', { no: 1 })
  await fence(env, 'news-after', c)
  assert.deepEqual(c.got('direct'), [])
  assert.equal(c.pusher.connection.state, 'connected')
})
