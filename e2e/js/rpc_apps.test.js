// Application channels through the RPC back end, end to end: real
// third-party clients (@rails/actioncable, @anycable/core) against
// bin/cablehub, which calls a real application over HTTP RPC
// (@anycable/serverless-js) and over gRPC (Ruby, ruby-grpc). The
// application identifies connections by a `user` cookie, serves
// ChatChannel (streams the room, echo, broadcast through Cablehub's REST
// API, leave = disconnect:true, kick = REST disconnect by identifiers) and
// rejects a subscription without a room; see e2e/rpcapp/server.mjs and
// e2e/rpcapp_ruby/server.rb.
import { describe, test, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { createCable } from '@anycable/core'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'
import { startServerlessApp, startRubyApp, rubyMissing, rpcKey } from './rpc_apps.js'

// @rails/actioncable is written for browsers: give it the few globals it
// touches before loading it.
globalThis.document ??= { visibilityState: 'visible', head: { querySelector: () => null } }
globalThis.addEventListener ??= () => {}
globalThis.removeEventListener ??= () => {}
const { createConsumer, adapters } = await import('@rails/actioncable')

// railsSockets holds, by URL, the headers an @rails/actioncable consumer's
// socket sends (a browser would send the page's cookies; ws takes them as
// an option, which actioncable does not pass) and what its sockets saw:
// every frame but pings, and each close as "<code> <reason>".
const railsSockets = new Map()
adapters.WebSocket = class RecordingWebSocket extends WebSocket {
  constructor(url, protocols) {
    const rec = railsSockets.get(url)
    super(url, protocols, { headers: rec.headers })
    this.addEventListener('message', ev => {
      const frame = String(ev.data)
      if (!frame.startsWith('{"type":"ping"')) rec.frames.push(frame)
    })
    this.addEventListener('close', ev => rec.closes.push(`${ev.code} ${ev.reason}`))
  }
}

// The back ends, with what differs between them: the stream their
// ChatChannel uses for a room and their refusal frame (serverless-js's
// reject() sends no reconnect field).
const BACKENDS = [
  {
    name: 'HTTP RPC (@anycable/serverless-js)',
    start: () => startServerlessApp(rpcKey(SECRET)),
    stream: room => `room:${room}`,
    connectCall: sid => new RegExp(`^POST /_anycable/connect sid=${sid} `, 'gm'),
    refusal: '{"type":"disconnect","reason":"unauthorized"}',
    // Without reconnect:false, @anycable/core will try again.
    coreRefusal: 'disconnect:unauthorized'
  },
  {
    name: 'gRPC (Ruby, ruby-grpc)',
    start: startRubyApp,
    skip: rubyMissing() || false,
    stream: room => `chat:${room}`,
    connectCall: sid => new RegExp(`^CALL connect ${sid}$`, 'gm'),
    refusal: '{"type":"disconnect","reason":"unauthorized","reconnect":false}',
    coreRefusal: 'close:unauthorized'
  }
]

const chatId = room => JSON.stringify(room === undefined ? { channel: 'ChatChannel' } : { channel: 'ChatChannel', room })
const confirmFrame = room => `{"identifier":${JSON.stringify(chatId(room))},"type":"confirm_subscription"}`
const rejectFrame = room => `{"identifier":${JSON.stringify(chatId(room))},"type":"reject_subscription"}`
const WELCOME = /^\{"type":"welcome","sid":"[\w-]+"\}$/

let seq = 0
const uniqueRoom = what => `${what}-${process.pid}-${++seq}`

for (const backend of BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let app
    let server
    const cleanups = []

    before(async () => {
      app = await backend.start()
      server = await startServer(['--secret', SECRET, '--rpc_host', app.rpcHost])
      await app.configure(`http://${server.addr}/api`, API_TOKEN)
    })
    after(async () => {
      await server?.stop()
      await app?.stop()
    })
    afterEach(() => {
      for (const f of cleanups.splice(0)) f()
    })

    // it is test, with the tails of Cablehub's and the app's logs added to
    // a failure.
    function it(name, fn) {
      test(name, async () => {
        try {
          await fn()
        } catch (err) {
          err.message += `\n--- cablehub:\n${server.logs().slice(-6000)}\n--- ${app.logs().slice(-6000)}`
          throw err
        }
      })
    }

    // rails makes an @rails/actioncable consumer sending cookie (none when
    // empty), closed when the test ends.
    function rails(cookie) {
      const url = `ws://${server.addr}/cable?client=${++seq}`
      const rec = { headers: cookie ? { Cookie: cookie } : {}, frames: [], closes: [] }
      railsSockets.set(url, rec)
      rec.consumer = createConsumer(url)
      cleanups.push(() => rec.consumer.disconnect())
      // subscribe creates a subscription recording its callbacks.
      rec.subscribe = params => {
        const s = { received: [], connected: false, rejected: false, disconnected: [] }
        s.sub = rec.consumer.subscriptions.create(params, {
          connected() { s.connected = true },
          rejected() { s.rejected = true },
          received(data) { s.received.push(data) },
          disconnected(info) { s.disconnected.push(info) }
        })
        return s
      }
      return rec
    }

    // joined subscribes client to room's ChatChannel and waits for the
    // app's confirmation.
    async function joined(client, room) {
      const s = client.subscribe({ channel: 'ChatChannel', room })
      await waitFor(`${room} confirmed`, () => s.connected || s.rejected)
      assert.equal(s.rejected, false)
      return s
    }

    it('@rails/actioncable with a cookie: the app\'s welcome and confirmation, echo, broadcast to the room, a rejected subscription', async () => {
      const room = uniqueRoom('room')
      const alice = rails('theme=dark; user=alice')
      const bob = rails('user=bob')
      const a = await joined(alice, room)
      const b = await joined(bob, room)
      for (const c of [alice, bob]) {
        assert.match(c.frames[0], WELCOME)
        assert.deepEqual(c.frames.slice(1), [confirmFrame(room)])
        // The welcome is the app's: it carries the sid the app was called with.
        assert.match(app.logs(), backend.connectCall(JSON.parse(c.frames[0]).sid))
      }

      a.sub.perform('echo', { x: 1, text: 'hi' })
      await waitFor('echo', () => a.received.length === 1)
      assert.deepEqual(a.received, [{ echo: { x: 1, text: 'hi' }, user: 'alice' }])
      assert.equal(alice.frames[2], `{"identifier":${JSON.stringify(chatId(room))},"message":{"echo":{"x":1,"text":"hi"},"user":"alice"}}`)

      a.sub.perform('broadcast', { text: 'hello room' })
      await waitFor('the broadcast on both clients', () => a.received.length === 2 && b.received.length === 1)
      assert.deepEqual(a.received[1], { text: 'hello room', from: 'alice' })
      assert.deepEqual(b.received, [{ text: 'hello room', from: 'alice' }])
      // As AnyCable does, the data is decoded and encoded again (keys in
      // order), and the memory broker's position comes along, on the plain
      // protocol too.
      const epoch = bob.frames[2].match(/"epoch":"([^"]+)"/)?.[1]
      assert.equal(bob.frames[2], `{"identifier":${JSON.stringify(chatId(room))},"message":{"from":"alice","text":"hello room"},` +
        `"stream_id":${JSON.stringify(backend.stream(room))},"epoch":"${epoch}","offset":1}`)

      const noRoom = alice.subscribe({ channel: 'ChatChannel' })
      await waitFor('rejection', () => noRoom.rejected)
      assert.equal(noRoom.connected, false)
      assert.equal(alice.frames.at(-1), rejectFrame(undefined))

      // The connection goes on: another action still answers.
      a.sub.perform('echo', { n: 2 })
      await waitFor('second echo', () => a.received.length === 3)
      assert.deepEqual(a.received[2], { echo: { n: 2 }, user: 'alice' })
      assert.deepEqual(b.received.length, 1)
      assert.deepEqual([alice.closes, bob.closes], [[], []])
    })

    it('@rails/actioncable is disconnected by the application (disconnect:true after its disconnect frame)', async () => {
      const room = uniqueRoom('leave')
      const alice = rails('user=alice')
      const bob = rails('user=bob')
      const a = await joined(alice, room)
      await joined(bob, room)
      a.sub.perform('leave', { reason: 'left' })
      await waitFor('close', () => alice.closes.length === 1)
      assert.deepEqual(alice.closes, ['1000 Command Failed'])
      assert.deepEqual(alice.frames.slice(1), [confirmFrame(room), '{"type":"disconnect","reason":"left","reconnect":false}'])
      await waitFor('disconnected callback', () => a.disconnected.length === 1)
      assert.deepEqual(a.disconnected, [{ willAttemptReconnect: false }])
      // Only alice's connection ended.
      assert.deepEqual(bob.closes, [])
    })

    it('@rails/actioncable is closed when the app answers disconnect:true alone, and will reconnect', async () => {
      const room = uniqueRoom('leave-bare')
      const alice = rails('user=alice')
      const a = await joined(alice, room)
      a.sub.perform('leave', {})
      await waitFor('close', () => alice.closes.length === 1)
      assert.deepEqual(alice.closes, ['1000 Command Failed'])
      assert.deepEqual(alice.frames.slice(1), [confirmFrame(room)])
      await waitFor('disconnected callback', () => a.disconnected.length === 1)
      assert.deepEqual(a.disconnected, [{ willAttemptReconnect: true }])
    })

    it('@rails/actioncable is disconnected through the REST API by the identifiers the app returned', async () => {
      const room = uniqueRoom('kick')
      const alice = rails('user=alice')
      const aliceTab = rails('user=alice')
      const bob = rails('user=bob')
      const a = await joined(alice, room)
      await joined(aliceTab, room)
      const b = await joined(bob, room)
      a.sub.perform('kick', {})
      await waitFor('both of alice\'s connections closed', () => alice.closes.length === 1 && aliceTab.closes.length === 1)
      for (const c of [alice, aliceTab]) {
        assert.deepEqual(c.closes, ['1000 Closed remotely'])
        assert.deepEqual(c.frames.slice(1), [confirmFrame(room), '{"type":"disconnect","reason":"remote","reconnect":false}'])
      }
      // bob is still connected and served.
      b.sub.perform('echo', { still: 'here' })
      await waitFor('bob\'s echo', () => b.received.length === 1)
      assert.deepEqual(b.received, [{ echo: { still: 'here' }, user: 'bob' }])
      assert.deepEqual(bob.closes, [])
    })

    it('a connection without the cookie is refused with the app\'s frame and 1000 Auth Failed', async () => {
      const anon = rails('theme=dark')
      const s = anon.subscribe({ channel: 'ChatChannel', room: uniqueRoom('anon') })
      await waitFor('close', () => anon.closes.length === 1)
      assert.deepEqual(anon.closes, ['1000 Auth Failed'])
      assert.deepEqual(anon.frames, [backend.refusal])
      assert.equal(s.connected, false)
    })

    // cable makes an @anycable/core cable on the extended protocol sending
    // cookie as a header, closed when the test ends.
    function cable(cookie) {
      const c = createCable(`ws://${server.addr}/cable`, {
        websocketImplementation: WebSocket,
        websocketOptions: cookie ? { headers: { Cookie: cookie } } : undefined,
        protocol: 'actioncable-v1-ext-json',
        logLevel: 'error'
      })
      cleanups.push(() => c.disconnect())
      return c
    }

    it('@anycable/core with a cookie header: subscribe, perform, receive; a rejected channel', async () => {
      const room = uniqueRoom('core')
      const carol = cable('user=carol')
      const channel = carol.subscribeTo('ChatChannel', { room })
      const got = []
      channel.on('message', m => got.push(m))
      await channel.ensureSubscribed()
      const dave = rails('user=dave')
      const d = await joined(dave, room)

      await channel.perform('echo', { n: 1 })
      await waitFor('echo', () => got.length === 1)
      assert.deepEqual(got, [{ echo: { n: 1 }, user: 'carol' }])
      await channel.perform('broadcast', { text: 'from core' })
      await waitFor('broadcast on both', () => got.length === 2 && d.received.length === 1)
      assert.deepEqual(got[1], { text: 'from core', from: 'carol' })
      assert.deepEqual(d.received, [{ text: 'from core', from: 'carol' }])

      const bad = carol.subscribeTo('ChatChannel', {})
      await assert.rejects(bad.ensureSubscribed())
      assert.equal(carol.state, 'connected')
    })

    it('@anycable/core restores its session and gets what was published to the RPC stream while away', async () => {
      const room = uniqueRoom('restore')
      const erin = cable('user=erin')
      const channel = erin.subscribeTo('ChatChannel', { room })
      const got = []
      channel.on('message', m => got.push(m))
      await channel.ensureSubscribed()
      const pub = n => publish(server, API_TOKEN, { stream: backend.stream(room), data: JSON.stringify({ n }) })
      await pub(1)
      await waitFor('first message', () => got.length === 1)

      const connects = (app.logs().match(backend.connectCall('\\S+')) || []).length
      let restored = false
      erin.on('connect', ev => { if (ev?.restored) restored = true })
      erin.transport.ws.terminate()
      await pub(2) // while the client is away
      await pub(3)
      await waitFor('reconnect with session restore', () => restored, 20000)
      await waitFor('missed messages', () => got.length >= 3, 10000)
      await channel.perform('echo', { after: 'restore' }) // the channel is served again, without a new subscribe
      await waitFor('echo', () => got.length >= 4)
      assert.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 3 }, { echo: { after: 'restore' }, user: 'erin' }])
      // The restore came from Cablehub's session cache: the app was not asked to connect again.
      assert.equal((app.logs().match(backend.connectCall('\\S+')) || []).length, connects)
    })

    it('@anycable/core is closed by the app, and refused without the cookie', async () => {
      const frank = cable('user=frank')
      const reasons = []
      for (const event of ['disconnect', 'close']) frank.on(event, ev => reasons.push(`${event}:${ev?.reason}`))
      const channel = frank.subscribeTo('ChatChannel', { room: uniqueRoom('core-leave') })
      await channel.ensureSubscribed()
      await channel.perform('leave', { reason: 'bye' })
      await waitFor('closed', () => reasons.length > 0)
      assert.deepEqual(reasons, ['close:bye'])

      const anon = cable('')
      const anonReasons = []
      for (const event of ['disconnect', 'close']) anon.on(event, ev => anonReasons.push(`${event}:${ev?.reason}`))
      await assert.rejects(anon.connect())
      await waitFor('refusal', () => anonReasons.length > 0)
      assert.equal(anonReasons[0], backend.coreRefusal)
    })
  })
}
