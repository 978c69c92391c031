// The Pusher HTTP API (/apps/app-1/*) through the official server SDK
// (`pusher` 5.3.4): trigger, triggerBatch, the channel queries,
// sendToUser and terminateUserConnections, as pusher-js 8.6.0 and
// Laravel Echo 2.5.0 clients see them. The tests are skipped while the
// runner does not route the API (a signed GET /apps/app-1/channels
// answers 404).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import Pusher from 'pusher-js'
import Echo from 'laravel-echo'
import PusherServer from 'pusher'
import { waitFor } from './server.js'
import { startPusher, sdkFor, connect, record, clientOptions, fence, KEY } from './pusher_clients.js'

const env = await startPusher()
after(() => env.stop())

const skip = !env.apiWired && 'the runner does not route the Pusher HTTP API (/apps/app-1/*): 404'
const sdk = env.sdk

const alice = { user_id: 'alice', user_info: { name: 'Alice' } }
const bob = { user_id: 'bob', user_info: { name: 'Bob' } }

function collect(fn) {
  const seen = []
  fn(arg => seen.push(arg))
  return seen
}

// status is the HTTP status the SDK call promise settles with.
async function status(promise) {
  try {
    return (await promise).status
  } catch (err) {
    if (err.status === undefined) throw err
    return err.status
  }
}

test('the API answers a signed request (when it is not routed yet, the other tests are skipped)', async t => {
  if (!env.apiWired) {
    t.diagnostic('GET /apps/app-1/channels: 404 — the Pusher HTTP API is not routed by the runner')
    return
  }
  const res = await sdk.get({ path: '/channels' })
  assert.equal(res.status, 200)
  assert.equal(typeof (await res.json()).channels, 'object')
})

test('trigger reaches pusher-js (bind) and Laravel Echo (.channel().listen(".announce")) with the data as sent', { skip }, async t => {
  const a = connect(t, env)
  await a.connected()
  const news = await a.subscribe('news')
  const got = collect(h => news.bind('announce', h))
  const e = new Echo({ broadcaster: 'pusher', key: KEY, Pusher, withoutInterceptors: true, ...clientOptions(env) })
  const ec = record(t, env, e.connector.pusher)
  await ec.connected()
  const ech = e.channel('news')
  const ok = collect(h => ech.subscribed(h))
  const heard = collect(h => ech.listen('.announce', h))
  const namespaced = collect(h => ech.listen('OrderShipped', h))
  await waitFor('Echo subscribed', () => ok.length === 1)

  const res = await sdk.trigger('news', 'announce', { text: 'hi' })
  assert.equal(res.status, 200)
  await waitFor('announce', () => got.length === 1 && heard.length === 1)
  assert.deepEqual(got[0], { text: 'hi' })
  assert.deepEqual(heard[0], { text: 'hi' })
  // Laravel's broadcast name: the event class under App\Events.
  await sdk.trigger('news', 'App\\Events\\OrderShipped', { order: 1 })
  await waitFor('App\\Events\\OrderShipped', () => namespaced.length === 1)
  assert.deepEqual(namespaced[0], { order: 1 })
})

test('trigger with socket_id skips that connection and reaches the others', { skip }, async t => {
  const a = connect(t, env)
  const b = connect(t, env)
  const sa = await a.connected()
  await b.connected()
  await a.subscribe('news-sid')
  await b.subscribe('news-sid')
  const res = await sdk.trigger('news-sid', 'update', { n: 1 }, { socket_id: sa })
  assert.equal(res.status, 200)
  await waitFor('b gets the update', () => b.got('update', 'news-sid').length === 1)
  await fence(env, 'news-sid', a, b)
  assert.deepEqual(a.got('update'), [], 'the socket_id given is skipped')
  assert.deepEqual(b.got('update')[0].data, { n: 1 })
})

// room makes alice and bob members of presence-room (and, for bob, a
// second connection as bob plus a subscriber of news-api): two users, three
// connections on presence-room.
async function room(t) {
  const a = connect(t, env, { presence: alice })
  const b1 = connect(t, env, { presence: bob })
  const b2 = connect(t, env, { presence: bob })
  for (const c of [a, b1, b2]) {
    await c.connected()
    await c.subscribe('presence-room')
  }
  await b1.subscribe('news-api')
  await b1.subscribe('private-api')
  return { a, b1, b2 }
}

test('trigger to several channels with info returns user_count and subscription_count; triggerBatch delivers each event', { skip }, async t => {
  const { a, b1, b2 } = await room(t)
  const res = await sdk.trigger(['presence-room', 'news-api', 'private-api'], 'multi', { m: 1 }, { info: 'user_count,subscription_count' })
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), {
    channels: {
      'presence-room': { user_count: 2, subscription_count: 3 },
      'news-api': { subscription_count: 1 },
      'private-api': { subscription_count: 1 }
    }
  })
  await waitFor('multi on every channel', () =>
    a.got('multi', 'presence-room').length === 1 && b2.got('multi', 'presence-room').length === 1 &&
    b1.got('multi', 'presence-room').length === 1 && b1.got('multi', 'news-api').length === 1 &&
    b1.got('multi', 'private-api').length === 1)
  assert.deepEqual(b1.got('multi', 'news-api')[0].data, { m: 1 })

  const batch = await sdk.triggerBatch([
    { channel: 'news-api', name: 'first', data: { i: 1 } },
    { channel: 'presence-room', name: 'second', data: { i: 2 } },
    { channel: 'private-api', name: 'third', data: JSON.stringify({ i: 3 }) }
  ])
  assert.equal(batch.status, 200)
  await waitFor('each batch event', () =>
    b1.got('first', 'news-api').length === 1 && a.got('second', 'presence-room').length === 1 &&
    b1.got('third', 'private-api').length === 1)
  assert.deepEqual(b1.got('first')[0].data, { i: 1 })
  assert.deepEqual(a.got('second')[0].data, { i: 2 })
  assert.deepEqual(b1.got('third')[0].data, { i: 3 })
})

test('GET /channels (filter_by_prefix, info=user_count), /channels/presence-room, /channels/presence-room/users', { skip }, async t => {
  const { a, b1, b2 } = await room(t)
  const list = await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })
  assert.equal(list.status, 200)
  const { channels } = await list.json()
  assert.deepEqual(channels['presence-room'], { user_count: 2 })
  assert.ok(Object.keys(channels).every(name => name.startsWith('presence-')), Object.keys(channels).join(','))

  const all = await (await sdk.get({ path: '/channels' })).json()
  assert.ok('news-api' in all.channels && 'presence-room' in all.channels, JSON.stringify(all))

  const one = await sdk.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } })
  assert.equal(one.status, 200)
  assert.deepEqual(await one.json(), { occupied: true, user_count: 2, subscription_count: 3 })
  const plain = await (await sdk.get({ path: '/channels/presence-room' })).json()
  assert.equal(plain.occupied, true)
  const empty = await (await sdk.get({ path: '/channels/nobody-here' })).json()
  assert.equal(empty.occupied, false)

  const users = await sdk.get({ path: '/channels/presence-room/users' })
  assert.equal(users.status, 200)
  const body = await users.json()
  assert.deepEqual(body.users.map(u => u.id).sort(), ['alice', 'bob'])

  // bob leaves on both connections: the API counts him out at once.
  b1.pusher.disconnect()
  b2.pusher.unsubscribe('presence-room')
  await waitFor('alice sees bob leave', () => a.got('pusher_internal:member_removed', 'presence-room').length === 1, 3000)
  const after = await (await sdk.get({ path: '/channels/presence-room/users' })).json()
  assert.deepEqual(after.users, [{ id: 'alice' }])
})

test('requests signed with a wrong secret (or another key) get 401 and publish nothing', { skip }, async t => {
  const a = connect(t, env)
  await a.connected()
  await a.subscribe('news-401')
  const forged = sdkFor(env.server, 'not-the-secret')
  assert.equal(await status(forged.trigger('news-401', 'forged', { x: 1 })), 401)
  assert.equal(await status(forged.triggerBatch([{ channel: 'news-401', name: 'forged', data: {} }])), 401)
  assert.equal(await status(forged.get({ path: '/channels' })), 401)
  assert.equal(await status(forged.get({ path: '/channels/news-401' })), 401)
  assert.equal(await status(forged.terminateUserConnections('u1')), 401)
  const [host, port] = env.server.addr.split(':')
  const otherKey = new PusherServer({ appId: 'app-1', key: 'key-2', secret: 'psecret', host, port, useTLS: false })
  assert.equal(await status(otherKey.trigger('news-401', 'forged', { x: 2 })), 401)
  await fence(env, 'news-401', a)
  assert.deepEqual(a.got('forged'), [])
})

test('sendToUser reaches the signed-in user on pusher.user; terminateUserConnections closes that user\'s connections only', { skip }, async t => {
  const u1 = connect(t, env, { user: { id: 'u1', name: 'One' } })
  const u1b = connect(t, env, { user: { id: 'u1', name: 'One' } })
  const u2 = connect(t, env, { user: { id: 'u2' } })
  for (const c of [u1, u1b, u2]) {
    await c.connected()
    c.pusher.signin()
  }
  await waitFor('signed in', () => [u1, u1b, u2].every(c => c.pusher.user.user_data))
  const d1 = collect(h => u1.pusher.user.bind('direct', h))
  const d1b = collect(h => u1b.pusher.user.bind('direct', h))
  const d2 = collect(h => u2.pusher.user.bind('direct', h))

  const res = await sdk.sendToUser('u1', 'direct', { msg: 'hello u1' })
  assert.equal(res.status, 200)
  await waitFor('direct to both u1 connections', () => d1.length === 1 && d1b.length === 1)
  assert.deepEqual(d1[0], { msg: 'hello u1' })
  await sdk.sendToUser('u2', 'direct', { msg: 'hello u2' })
  await waitFor('direct to u2', () => d2.length === 1)
  assert.equal(d1.length, 1)

  assert.equal((await sdk.terminateUserConnections('u1')).status, 200)
  await waitFor('u1 connections closed', () =>
    u1.pusher.connection.state !== 'connected' && u1b.pusher.connection.state !== 'connected', 3000)
  assert.ok(u1.states.includes('disconnected'), u1.states.join(','))
  const err = u1.errors.find(e => e.type === 'PusherError')
  assert.equal(err?.data?.code, 4009, JSON.stringify(u1.errors))
  // u2 is untouched.
  const n = u2.pusher.subscribe('news-term')
  await waitFor('u2 subscribes', () => n.subscribed)
  assert.equal(u2.pusher.connection.state, 'connected')
  await sdk.sendToUser('u2', 'direct', { msg: 'still here' })
  await waitFor('u2 still gets its events', () => d2.length === 2)
})
