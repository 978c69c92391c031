// Pusher webhooks (--pusher_webhook_url) as a Pusher application receives
// them: a node HTTP receiver checks each request with the official server
// SDK (`pusher` 5.3.4: pusher.webhook({headers, rawBody}).isValid() and
// .getEvents()), while pusher-js 8.6.0 clients make the events happen.
//
// The events come from the node's Observer calls (node.Options.Observer).
// A probe subscription finds out whether this build makes them: when no
// channel_occupied arrives for it, the tests that need them are skipped.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import Pusher from 'pusher-js'
import { startServer, waitFor } from './server.js'
import { startPusher, sdkFor, connect, clientOptions, KEY, APP_ID, PUSHER_SECRET } from './pusher_clients.js'

// startReceiver serves webhooks at /hook on a free port and records each
// request: its headers, raw body, and the SDK's verdict and events.
async function startReceiver() {
  const got = []
  const srv = http.createServer((req, res) => {
    let rawBody = ''
    req.setEncoding('utf8')
    req.on('data', chunk => { rawBody += chunk })
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, headers: req.headers, rawBody })
      res.writeHead(200).end()
    })
  })
  await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve))
  return { got, port: srv.address().port, close: () => new Promise(resolve => srv.close(resolve)) }
}

const receiver = await startReceiver()
const hookURL = `http://127.0.0.1:${receiver.port}/hook`
const env = await startPusher(['--pusher_webhook_url', hookURL])
after(async () => {
  await env.stop()
  await receiver.close()
})

// events are the events of every webhook received so far that the SDK
// finds valid, in the order they came, with each one's time_ms.
function events() {
  const out = []
  for (const r of receiver.got) {
    const hook = env.sdk.webhook({ headers: r.headers, rawBody: r.rawBody })
    if (!hook.isValid()) continue
    for (const e of hook.getEvents()) out.push(e)
  }
  return out
}

// on lists the events about channel.
const on = channel => events().filter(e => e.channel === channel)
const named = (channel, name) => on(channel).filter(e => e.name === name)

// A probe: does this build report channel occupancy to the webhooks?
async function probe() {
  const p = new Pusher(KEY, clientOptions(env))
  try {
    p.subscribe('webhook-probe')
    await waitFor('channel_occupied for the probe', () => named('webhook-probe', 'channel_occupied').length > 0, 3000)
    return true
  } catch {
    return false
  } finally {
    p.disconnect()
  }
}
const skip = !(await probe()) && 'needs the node Observer: no channel_occupied came for a subscription'

test('the server names where webhooks go; a URL that is not http(s) stops it at startup', async () => {
  assert.match(env.server.logs(), new RegExp(`Send Pusher webhooks to ${hookURL.replace(/[.]/g, '\\.')}`))
  await assert.rejects(
    startServer(['--pusher_app_id', APP_ID, '--pusher_app_key', KEY, '--pusher_secret', PUSHER_SECRET, '--pusher_webhook_url', 'ftp://127.0.0.1/hook']),
    /--pusher_webhook_url: "ftp:\/\/127\.0\.0\.1\/hook" is not an absolute http:\/\/ or https:\/\/ URL/)
})

test('webhooks are POSTed as JSON, signed so that pusher.webhook().isValid() accepts them and another secret does not', { skip }, async () => {
  await waitFor('a webhook', () => receiver.got.length > 0)
  const forger = sdkFor(env.server, 'not-the-secret')
  for (const r of receiver.got) {
    assert.equal(r.method, 'POST')
    assert.equal(r.url, '/hook')
    assert.equal(r.headers['content-type'], 'application/json')
    assert.equal(r.headers['x-pusher-key'], KEY)
    const hook = env.sdk.webhook({ headers: r.headers, rawBody: r.rawBody })
    assert.equal(hook.isValid(), true, r.rawBody)
    assert.equal(forger.webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), false)
    const body = JSON.parse(r.rawBody)
    assert.equal(typeof body.time_ms, 'number')
    assert.ok(Math.abs(body.time_ms - Date.now()) < 60000, `time_ms ${body.time_ms}`)
    assert.ok(Array.isArray(body.events) && body.events.length > 0)
  }
})

test('channel_occupied on the first subscription, channel_vacated after the last unsubscribes', { skip }, async t => {
  const channel = 'webhook-news'
  const a = connect(t, env)
  const b = connect(t, env)
  await Promise.all([a.connected(), b.connected()])
  await a.subscribe(channel)
  await waitFor('channel_occupied', () => named(channel, 'channel_occupied').length === 1)
  await b.subscribe(channel)
  a.pusher.unsubscribe(channel)
  // b still holds the channel: a subscription's end must not vacate it.
  await new Promise(resolve => setTimeout(resolve, 600))
  assert.deepEqual(on(channel), [{ name: 'channel_occupied', channel }])
  b.pusher.unsubscribe(channel)
  await waitFor('channel_vacated', () => named(channel, 'channel_vacated').length === 1)
  assert.deepEqual(on(channel), [{ name: 'channel_occupied', channel }, { name: 'channel_vacated', channel }])
})

test('member_added and member_removed: once per user, whatever its number of connections', { skip }, async t => {
  const channel = 'presence-webhook-room'
  const alice = { user_id: 'alice', user_info: { name: 'Alice' } }
  const a1 = connect(t, env, { presence: alice })
  const a2 = connect(t, env, { presence: alice })
  const bob = connect(t, env, { presence: { user_id: 'bob' } })
  await Promise.all([a1.connected(), a2.connected(), bob.connected()])
  await a1.subscribe(channel)
  await waitFor('alice added', () => named(channel, 'member_added').length === 1)
  await bob.subscribe(channel)
  await a2.subscribe(channel)
  await waitFor('bob added', () => named(channel, 'member_added').length === 2)
  a1.pusher.unsubscribe(channel)
  await new Promise(resolve => setTimeout(resolve, 600))
  assert.deepEqual(named(channel, 'member_removed'), [], 'alice is still there through her second connection')
  a2.pusher.disconnect()
  await waitFor('alice removed', () => named(channel, 'member_removed').length === 1)
  bob.pusher.unsubscribe(channel)
  await waitFor('bob removed and channel_vacated', () =>
    named(channel, 'member_removed').length === 2 && named(channel, 'channel_vacated').length === 1)
  // Occupancy and membership are decided apart (through the broker), so
  // only the order this test made is asserted: alice before bob.
  const got = on(channel)
  const sorted = list => list.map(e => JSON.stringify(e)).sort()
  assert.deepEqual(sorted(got), sorted([
    { name: 'channel_occupied', channel },
    { name: 'member_added', channel, user_id: 'alice' },
    { name: 'member_added', channel, user_id: 'bob' },
    { name: 'member_removed', channel, user_id: 'alice' },
    { name: 'member_removed', channel, user_id: 'bob' },
    { name: 'channel_vacated', channel }
  ]))
  assert.deepEqual(named(channel, 'member_added').map(e => e.user_id), ['alice', 'bob'])
  assert.deepEqual(named(channel, 'member_removed').map(e => e.user_id), ['alice', 'bob'])
})

test('client_event: the event, its data as a string, the sender\'s socket_id, and user_id on presence channels', { skip }, async t => {
  const priv = 'private-webhook-chat'
  const a = connect(t, env)
  const b = connect(t, env)
  const [aSocket] = await Promise.all([a.connected(), b.connected()])
  const ch = await a.subscribe(priv)
  await b.subscribe(priv)
  ch.trigger('client-typing', { x: 1, who: 'a' })
  await waitFor('client_event', () => named(priv, 'client_event').length === 1)
  assert.deepEqual(named(priv, 'client_event'), [
    { name: 'client_event', channel: priv, event: 'client-typing', data: '{"x":1,"who":"a"}', socket_id: aSocket }
  ])

  const pres = 'presence-webhook-chat'
  const c = connect(t, env, { presence: { user_id: 'carol' } })
  const d = connect(t, env, { presence: { user_id: 'dave' } })
  const [cSocket] = await Promise.all([c.connected(), d.connected()])
  const pch = await c.subscribe(pres)
  await d.subscribe(pres)
  pch.trigger('client-hello', 'hi there')
  await waitFor('client_event on the presence channel', () => named(pres, 'client_event').length === 1)
  assert.deepEqual(named(pres, 'client_event'), [
    { name: 'client_event', channel: pres, event: 'client-hello', data: 'hi there', socket_id: cSocket, user_id: 'carol' }
  ])
})
