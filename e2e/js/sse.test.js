// The Server-Sent Events endpoint (--sse, /events) through the npm
// `eventsource` package: the WhatWG EventSource, reconnection and
// Last-Event-ID included, as an application's Node client or a browser
// polyfill uses it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { EventSource } from 'eventsource'
import { startServer, SECRET, API_TOKEN, sign, jwt, publish, waitFor } from './server.js'

let server

before(async () => {
  server = await startServer(['--secret', SECRET, '--public', '--norpc', '--broker', 'memory', '--sse', '--turbo_streams'])
})
after(async () => {
  await server.stop()
})

function eventsURL(query) {
  return `http://${server.addr}/events?${new URLSearchParams(query)}`
}

// open starts an EventSource on /events with query and records what its
// user sees: messages (data and lastEventId), named events, errors, opens,
// and every request it made (its Last-Event-ID header). cut() drops the
// current connection as a network failure does: the response body errors,
// the socket to the server is closed, and the client is left to recover
// by itself.
function open(query, { headers = {}, named = ['welcome', 'confirm_subscription', 'confirm_history', 'reject_history', 'disconnect', 'ping'] } = {}) {
  const st = { messages: [], named: {}, errors: [], opens: 0, requests: [], bodies: [] }
  for (const name of named) st.named[name] = []
  const fetchThrough = async (url, init) => {
    const h = { ...init.headers, ...headers }
    st.requests.push({ lastEventId: h['Last-Event-ID'] ?? null, at: Date.now() })
    const res = await fetch(url, { ...init, headers: h })
    if (!res.body) return res
    // The body the client reads is ours, fed from the real one, so that
    // cut() can fail it the way a dropped connection does.
    const reader = res.body.getReader()
    let ctl
    const body = new ReadableStream({
      start(c) { ctl = c },
      async pull(c) {
        try {
          const { done, value } = await reader.read()
          if (done) c.close()
          else c.enqueue(value)
        } catch (err) {
          c.error(err)
        }
      },
      cancel(reason) { return reader.cancel(reason) }
    })
    st.bodies.push({
      cut() {
        ctl.error(new TypeError('network error (cut by the test)'))
        reader.cancel().catch(() => {})
      }
    })
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers })
  }
  const es = new EventSource(eventsURL(query), { fetch: fetchThrough })
  es.addEventListener('open', () => st.opens++)
  es.addEventListener('error', ev => st.errors.push({ code: ev.code, message: ev.message, readyState: es.readyState }))
  es.addEventListener('message', ev => st.messages.push({ data: ev.data, lastEventId: ev.lastEventId }))
  for (const name of named) es.addEventListener(name, ev => st.named[name].push({ data: ev.data, lastEventId: ev.lastEventId }))
  st.es = es
  st.cut = () => st.bodies[st.bodies.length - 1].cut()
  st.confirmed = () => waitFor('confirm_subscription', () => st.named.confirm_subscription?.length > 0 || st.errors.length > 0)
    .then(() => assert.deepEqual(st.errors, [], 'no error before the confirmation'))
  return st
}

// disconnect closes the sessions of identifiers (POST /api/disconnect).
async function disconnect(identifiers, reconnect) {
  const res = await fetch(`http://${server.addr}/api/disconnect`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_TOKEN}` },
    body: JSON.stringify({ identifier: identifiers, reconnect })
  })
  assert.equal(res.status, 201, await res.text())
}

const ID = /^(\d+)\/([^/]+)\/(.+)$/

function parseID(id) {
  const m = ID.exec(id)
  assert.ok(m, `event id ${JSON.stringify(id)} is <offset>/<epoch>/<stream>`)
  return { offset: Number(m[1]), epoch: m[2], stream: m[3] }
}

test('EventSource receives publications: JSON, plain strings, multi-line strings, each with its <offset>/<epoch>/<stream> id', async () => {
  const c = open({ stream: 'sse/basic' })
  try {
    await c.confirmed()
    assert.equal(c.es.readyState, EventSource.OPEN)
    assert.equal(c.opens, 1)
    assert.equal(c.named.welcome.length, 1)
    assert.equal(JSON.parse(c.named.welcome[0].data).type, 'welcome')
    assert.deepEqual(JSON.parse(c.named.confirm_subscription[0].data),
      { type: 'confirm_subscription', identifier: JSON.stringify({ channel: '$pubsub', stream_name: 'sse/basic' }) })

    await publish(server, API_TOKEN, { stream: 'sse/basic', data: JSON.stringify({ text: 'hello', n: 1 }) })
    await publish(server, API_TOKEN, { stream: 'sse/other', data: JSON.stringify('not for us') })
    await publish(server, API_TOKEN, { stream: 'sse/basic', data: JSON.stringify('plain text') })
    await publish(server, API_TOKEN, { stream: 'sse/basic', data: JSON.stringify('line one\nline two\r\nline three') })
    await waitFor('3 messages', () => c.messages.length >= 3)

    assert.deepEqual(JSON.parse(c.messages[0].data), { text: 'hello', n: 1 })
    assert.equal(c.messages[1].data, 'plain text')
    // CRLF is a line break in the event stream format too: the client sees LF.
    assert.equal(c.messages[2].data, 'line one\nline two\nline three')
    const ids = c.messages.map(m => parseID(m.lastEventId))
    assert.deepEqual(ids.map(i => i.stream), ['sse/basic', 'sse/basic', 'sse/basic'])
    assert.deepEqual(ids.map(i => i.offset), [1, 2, 3])
    assert.equal(new Set(ids.map(i => i.epoch)).size, 1)
  } finally {
    c.es.close()
  }
})

test('a dropped connection: the client reconnects by itself with Last-Event-ID and gets exactly the missed messages, once each, in order', async () => {
  const stream = 'sse/recover'
  const c = open({ stream })
  try {
    await c.confirmed()
    const published = []
    let n = 0
    const pub = async () => {
      const text = `msg-${++n}`
      await publish(server, API_TOKEN, { stream, data: JSON.stringify(text) })
      published.push(text)
    }
    // Publish steadily from before the cut until the client is back.
    let publishing = true
    let publishedAtReopen = -1
    const publisher = (async () => {
      while (publishing) {
        await pub()
        await new Promise(r => setTimeout(r, 40))
      }
    })()
    try {
      await waitFor('5 live messages', () => c.messages.length >= 5)
      c.cut()
      const receivedBeforeCut = c.messages.length
      const lastIdBeforeCut = c.messages[receivedBeforeCut - 1].lastEventId
      // eventsource waits its reconnection time (3 s by default) first.
      await waitFor('an error then a second open', () => c.opens >= 2, 10000)
      publishedAtReopen = published.length
      await waitFor('5 more publications after the reconnect', () => published.length >= publishedAtReopen + 5)

      assert.equal(c.requests.length, 2, 'one reconnect')
      assert.equal(c.requests[0].lastEventId, null)
      assert.equal(c.requests[1].lastEventId, lastIdBeforeCut, 'the reconnect carries the last id the client saw')
      assert.ok(c.errors.length === 1 && c.errors[0].readyState === EventSource.CONNECTING, 'one error, while reconnecting')
      assert.ok(publishedAtReopen > receivedBeforeCut, 'messages were published while the client was away')
    } finally {
      publishing = false
      await publisher
    }

    await waitFor('every publication', () => c.messages.length >= published.length)
    // Let anything extra (a duplicate) arrive: a publication sent after the
    // last one is the marker that the stream has passed them all.
    await publish(server, API_TOKEN, { stream, data: JSON.stringify('end') })
    await waitFor('the end marker', () => c.messages.some(m => m.data === 'end'))

    const got = c.messages.map(m => m.data)
    const counts = new Map()
    for (const text of got) counts.set(text, (counts.get(text) || 0) + 1)
    for (const text of [...published, 'end']) assert.equal(counts.get(text), 1, `${text} received once`)
    assert.deepEqual(got, [...published, 'end'], 'exactly the publications, in order')
    assert.deepEqual(c.messages.map(m => parseID(m.lastEventId).offset), got.map((_, i) => i + 1))
    assert.equal(c.named.confirm_history.length, 1, 'the replay is confirmed')
    assert.equal(c.named.reject_history.length, 0)
    assert.equal(c.named.welcome.length, 2)
  } finally {
    c.es.close()
  }
})

test('Last-Event-ID with an epoch the server never had: reject_history, then live messages', async () => {
  const stream = 'sse/badepoch'
  await publish(server, API_TOKEN, { stream, data: JSON.stringify('before') })
  const c = open({ stream }, { headers: { 'Last-Event-ID': `1/nope/${stream}` } })
  try {
    await c.confirmed()
    await waitFor('reject_history', () => c.named.reject_history.length === 1)
    await publish(server, API_TOKEN, { stream, data: JSON.stringify('after') })
    await waitFor('the live message', () => c.messages.length >= 1)
    assert.deepEqual(c.messages.map(m => m.data), ['after'])
    assert.equal(c.named.confirm_history.length, 0)
  } finally {
    c.es.close()
  }
})

test('history_since: the publications since then, confirm_history, then live ones', async () => {
  const stream = 'sse/since'
  await publish(server, API_TOKEN, { stream, data: JSON.stringify('old 1') })
  await publish(server, API_TOKEN, { stream, data: JSON.stringify('old 2') })
  const c = open({ stream, history_since: String(Math.floor(Date.now() / 1000) - 60) })
  try {
    await c.confirmed()
    await waitFor('confirm_history', () => c.named.confirm_history.length === 1)
    await publish(server, API_TOKEN, { stream, data: JSON.stringify('live') })
    await waitFor('3 messages', () => c.messages.length >= 3)
    assert.deepEqual(c.messages.map(m => m.data), ['old 1', 'old 2', 'live'])
    assert.deepEqual(c.messages.map(m => parseID(m.lastEventId).offset), [1, 2, 3])
  } finally {
    c.es.close()
  }
})

test('signed stream: the name verified with the secret; a forged one is refused with 400 and not retried', async () => {
  const c = open({ signed_stream: sign('sse/signed', SECRET) })
  const bad = open({ signed_stream: sign('sse/signed', 'wrong-secret') })
  try {
    await c.confirmed()
    assert.equal(JSON.parse(c.named.confirm_subscription[0].data).identifier,
      JSON.stringify({ channel: '$pubsub', signed_stream_name: sign('sse/signed', SECRET) }))
    await publish(server, API_TOKEN, { stream: 'sse/signed', data: JSON.stringify({ secret: true }) })
    await waitFor('the signed message', () => c.messages.length >= 1)
    assert.deepEqual(JSON.parse(c.messages[0].data), { secret: true })
    assert.equal(parseID(c.messages[0].lastEventId).stream, 'sse/signed')

    await waitFor('the refusal', () => bad.errors.length >= 1)
    assert.equal(bad.errors[0].code, 400)
    assert.equal(bad.es.readyState, EventSource.CLOSED)
    assert.equal(bad.opens, 0)
    assert.equal(bad.requests.length, 1)
  } finally {
    c.es.close()
    bad.es.close()
  }
})

test('rejected subscription (unknown channel without a back end): error 400, no reconnect', async () => {
  const c = open({ channel: 'NoSuchChannel' })
  try {
    await waitFor('the refusal', () => c.errors.length >= 1)
    assert.equal(c.errors[0].code, 400)
    assert.equal(c.es.readyState, EventSource.CLOSED)
    assert.equal(c.requests.length, 1)
    assert.deepEqual(c.messages, [])
  } finally {
    c.es.close()
  }
})

test('Turbo signed stream (--turbo_streams): HTML from the stream as it was broadcast', async () => {
  const signed = sign('sse/turbo/room', SECRET)
  const c = open({ turbo_signed_stream_name: signed })
  const bad = open({ turbo_signed_stream_name: sign('sse/turbo/room', 'wrong-secret') })
  try {
    await c.confirmed()
    assert.equal(JSON.parse(c.named.confirm_subscription[0].data).identifier,
      JSON.stringify({ channel: 'Turbo::StreamsChannel', signed_stream_name: signed }))
    const html = '<turbo-stream action="append" target="messages">\n  <template><p>hi & "bye"</p></template>\n</turbo-stream>'
    await publish(server, API_TOKEN, { stream: 'sse/turbo/room', data: JSON.stringify(html) })
    await waitFor('the turbo message', () => c.messages.length >= 1)
    assert.equal(c.messages[0].data, html)
    assert.equal(parseID(c.messages[0].lastEventId).stream, 'sse/turbo/room')

    await waitFor('the refusal', () => bad.errors.length >= 1)
    assert.equal(bad.errors[0].code, 400)
  } finally {
    c.es.close()
    bad.es.close()
  }
})

test('JWT: ?jid= and X-JID identify the client; a forged or expired token is 401 and the client does not reconnect', async () => {
  const exp = Math.floor(Date.now() / 1000) + 3600
  const good = open({ stream: 'sse/jwt', jid: jwt(SECRET, { ext: JSON.stringify({ user_id: 'jid-query' }), exp }) })
  const header = open({ stream: 'sse/jwt' }, { headers: { 'X-JID': jwt(SECRET, { ext: JSON.stringify({ user_id: 'jid-header' }), exp }) } })
  const forged = open({ stream: 'sse/jwt', jid: jwt('not-the-secret', { ext: JSON.stringify({ user_id: 1 }), exp }) })
  const expired = open({ stream: 'sse/jwt', jid: jwt(SECRET, { ext: JSON.stringify({ user_id: 1 }), exp: Math.floor(Date.now() / 1000) - 60 }) })
  try {
    await good.confirmed()
    await header.confirmed()
    await publish(server, API_TOKEN, { stream: 'sse/jwt', data: JSON.stringify('for the identified') })
    await waitFor('both messages', () => good.messages.length >= 1 && header.messages.length >= 1)
    assert.equal(good.messages[0].data, 'for the identified')
    assert.equal(header.messages[0].data, 'for the identified')
    // Each is identified as its token says: a remote disconnect of one
    // user reaches that client only.
    await disconnect(JSON.stringify({ user_id: 'jid-header' }), false)
    await waitFor('the X-JID client disconnected', () => header.named.disconnect.length >= 1)
    await disconnect(JSON.stringify({ user_id: 'jid-query' }), false)
    await waitFor('the ?jid= client disconnected', () => good.named.disconnect.length >= 1)

    for (const [name, c] of [['forged', forged], ['expired', expired]]) {
      await waitFor(`${name}: error`, () => c.errors.length >= 1)
      assert.equal(c.errors[0].code, 401, `${name}: 401`)
      assert.equal(c.es.readyState, EventSource.CLOSED, `${name}: closed`)
      assert.equal(c.opens, 0)
      assert.deepEqual(c.messages, [])
    }
    // A failed connection is not retried: still one request each, well
    // past the 3 s the client would wait before a reconnect.
    const deadline = Date.now() + 3500
    await waitFor('3.5 s', () => Date.now() > deadline, 5000)
    assert.equal(forged.requests.length, 1)
    assert.equal(expired.requests.length, 1)
  } finally {
    for (const c of [good, header, forged, expired]) c.es.close()
  }
})

test('remote disconnect with reconnect:false: the client sees the disconnect event and the stream ends without a reconnect', async () => {
  const exp = Math.floor(Date.now() / 1000) + 3600
  const user = JSON.stringify({ user_id: 'sse-remote' })
  const c = open({ stream: 'sse/remote', jid: jwt(SECRET, { ext: user, exp }) })
  const other = open({ stream: 'sse/remote', jid: jwt(SECRET, { ext: JSON.stringify({ user_id: 'someone-else' }), exp }) })
  try {
    await c.confirmed()
    await other.confirmed()
    await disconnect(user, false)
    await waitFor('the disconnect event', () => c.named.disconnect.length >= 1)
    assert.deepEqual(JSON.parse(c.named.disconnect[0].data), { type: 'disconnect', reason: 'remote', reconnect: false })
    // The body ends: EventSource reports it and waits its reconnection
    // time, which the server set (retry:) to about forever.
    await waitFor('the end of the stream', () => c.errors.length >= 1)
    assert.equal(c.errors[0].readyState, EventSource.CONNECTING)
    const deadline = Date.now() + 4000
    await waitFor('4 s', () => Date.now() > deadline, 5000)
    assert.equal(c.requests.length, 1, 'no reconnect')
    assert.equal(c.opens, 1)

    // The other user's stream is untouched.
    await publish(server, API_TOKEN, { stream: 'sse/remote', data: JSON.stringify('still here') })
    await waitFor('the other client’s message', () => other.messages.length >= 1)
    assert.deepEqual(other.named.disconnect, [])
    assert.deepEqual(c.messages, [])
  } finally {
    c.es.close()
    other?.es.close()
  }
})

test('remote disconnect with reconnect:true: the client comes back by itself and takes publications again', async () => {
  const user = JSON.stringify({ user_id: 'sse-comeback' })
  const c = open({ stream: 'sse/comeback', jid: jwt(SECRET, { ext: user }) })
  try {
    await c.confirmed()
    await disconnect(user, true)
    await waitFor('the disconnect event', () => c.named.disconnect.length >= 1)
    assert.deepEqual(JSON.parse(c.named.disconnect[0].data), { type: 'disconnect', reason: 'remote', reconnect: true })
    await waitFor('a second open', () => c.opens >= 2, 10000)
    await waitFor('the second confirmation', () => c.named.confirm_subscription.length >= 2)
    await publish(server, API_TOKEN, { stream: 'sse/comeback', data: JSON.stringify('welcome back') })
    await waitFor('the message', () => c.messages.length >= 1)
    assert.deepEqual(c.messages.map(m => m.data), ['welcome back'])
    assert.equal(c.requests.length, 2)
    assert.deepEqual(c.errors.map(e => e.readyState), [EventSource.CONNECTING])
  } finally {
    c.es.close()
  }
})

test('a stream the server ended leaves no dead connection behind: the next request of a keep-alive client succeeds', async () => {
  const [host, port] = server.addr.split(':')
  // One pooled connection: the next request goes on the stream's socket
  // if the client was told it could.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const get = path => new Promise((resolve, reject) => {
    http.get({ host, port, path, agent }, resolve).on('error', reject)
  })
  try {
    for (let i = 0; i < 3; i++) {
      const user = JSON.stringify({ user_id: `sse-pool-${i}` })
      const res = await get(`/events?${new URLSearchParams({ stream: 'sse/pool', jid: jwt(SECRET, { ext: user }) })}`)
      assert.equal(res.statusCode, 200)
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      const ended = new Promise(resolve => res.on('end', resolve))
      await waitFor('the confirmation', () => body.includes('event: confirm_subscription'))
      await disconnect(user, true)
      await ended
      assert.match(body, /event: disconnect\n/)
      const next = await get('/health')
      assert.equal(next.statusCode, 200)
      next.resume()
    }
  } finally {
    agent.destroy()
  }
})

test('raw=1: only publications, no named events at all', async () => {
  const c = open({ stream: 'sse/raw', raw: '1' })
  let other
  try {
    // No confirmation to wait for: the stream opens once subscribed.
    await waitFor('open', () => c.opens >= 1 || c.errors.length > 0)
    assert.deepEqual(c.errors, [])
    other = open({ stream: 'sse/raw' })
    await other.confirmed()
    await publish(server, API_TOKEN, { stream: 'sse/raw', data: JSON.stringify({ raw: 1 }) })
    await publish(server, API_TOKEN, { stream: 'sse/raw', data: JSON.stringify('two') })
    await waitFor('2 messages', () => c.messages.length >= 2)
    assert.deepEqual(c.messages.map(m => m.data), ['{"raw":1}', 'two'])
    assert.equal(parseID(c.messages[1].lastEventId).offset, 2)
    // Until a client opened after it has had a ping (every 3 s): still no
    // named event of any kind.
    await waitFor('a ping to the other client', () => other.named.ping.length >= 1, 8000)
    for (const [name, got] of Object.entries(c.named)) assert.deepEqual(got, [], `no ${name} event`)
    assert.deepEqual(c.messages.map(m => m.data), ['{"raw":1}', 'two'])
  } finally {
    c.es.close()
    other?.es.close()
  }
})
