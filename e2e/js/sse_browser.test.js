// The Server-Sent Events endpoint (--sse, /events) from a real browser:
// headless Chromium (Debian's /usr/bin/chromium, driven by puppeteer-core)
// runs a page served by another local HTTP server, so the page's origin
// differs from cablehub's (another port) and every stream is a
// cross-origin EventSource that CORS decides.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { accessSync, constants } from 'node:fs'
import puppeteer from 'puppeteer-core'
import { startServer, SECRET, API_TOKEN, jwt, publish, waitFor } from './server.js'

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'

// The page: openStream(url, init) starts an EventSource and records what
// it sees in window.streams (messages, named events, errors, opens).
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>cablehub SSE page</title>
<script>
  const sources = []
  window.streams = []
  window.openStream = (url, init) => {
    const s = { opens: 0, messages: [], named: {}, errors: [] }
    const es = new EventSource(url, init)
    es.onopen = () => { s.opens++ }
    es.onerror = () => { s.errors.push({ readyState: es.readyState }) }
    es.onmessage = ev => { s.messages.push({ data: ev.data, lastEventId: ev.lastEventId, origin: ev.origin }) }
    for (const name of ['welcome', 'confirm_subscription', 'confirm_history', 'reject_history', 'disconnect']) {
      s.named[name] = []
      es.addEventListener(name, ev => { s.named[name].push(ev.data) })
    }
    sources.push(es)
    streams.push(s)
    return streams.length - 1
  }
  window.streamState = i => ({ ...streams[i], readyState: sources[i].readyState, withCredentials: sources[i].withCredentials })
  window.closeStream = i => sources[i].close()
</script>
<p>cablehub SSE page</p>`

let pageServer, pageOrigin, browser, page
// anyOrigin runs without --allowed_origins; allowed with the page's host
// in it; excluded with a list the page's host is not on.
let anyOrigin, allowed, excluded
// responses are the answers the page got to /events requests, with their
// headers; failures are the /events requests that failed, with the CORS
// error the browser saw (DevTools' Network.loadingFailed).
const responses = []
const failures = []

before(async () => {
  try {
    accessSync(CHROMIUM, constants.X_OK)
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM_BIN`)
  }
  pageServer = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end(PAGE)
  })
  await new Promise(resolve => pageServer.listen(0, '127.0.0.1', resolve))
  const pageHost = `127.0.0.1:${pageServer.address().port}`
  pageOrigin = `http://${pageHost}`

  const base = ['--secret', SECRET, '--public', '--norpc', '--broker', 'memory', '--sse']
  anyOrigin = await startServer(base)
  allowed = await startServer([...base, '--allowed_origins', `example.com,${pageHost}`])
  excluded = await startServer([...base, '--allowed_origins', 'example.com,*.example.org,127.0.0.1:1'])

  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless=new']
  })
  page = await browser.newPage()
  page.on('response', res => {
    if (new URL(res.url()).pathname === '/events') responses.push({ url: res.url(), status: res.status(), headers: res.headers() })
  })
  const cdp = await page.createCDPSession()
  const urls = new Map()
  cdp.on('Network.requestWillBeSent', e => urls.set(e.requestId, e.request.url))
  cdp.on('Network.loadingFailed', e => {
    const url = urls.get(e.requestId)
    if (url && new URL(url).pathname === '/events') failures.push({ url, errorText: e.errorText, cors: e.corsErrorStatus?.corsError })
  })
  await cdp.send('Network.enable')
  await page.goto(pageOrigin + '/')
  assert.equal(await page.evaluate(() => location.origin), pageOrigin)
})

after(async () => {
  if (browser) await browser.close()
  for (const s of [anyOrigin, allowed, excluded]) if (s) await s.stop()
  if (pageServer) await new Promise(resolve => pageServer.close(resolve))
})

function eventsURL(server, query) {
  return `http://${server.addr}/events?${new URLSearchParams(query)}`
}

// openStream opens an EventSource in the page; state() reads what it saw.
async function openStream(url, init = {}) {
  const i = await page.evaluate((url, init) => window.openStream(url, init), url, init)
  return {
    url,
    state: () => page.evaluate(i => window.streamState(i), i),
    close: () => page.evaluate(i => window.closeStream(i), i)
  }
}

async function waitState(s, what, cond, ms = 5000) {
  let st
  await waitFor(what, async () => cond(st = await s.state()), ms)
  return st
}

function confirmed(s) {
  return waitState(s, 'confirm_subscription', st => st.named.confirm_subscription.length > 0 || st.errors.length > 0)
    .then(st => { assert.deepEqual(st.errors, [], 'no error before the confirmation'); return st })
}

async function disconnect(server, identifiers, reconnect) {
  const res = await fetch(`http://${server.addr}/api/disconnect`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_TOKEN}` },
    body: JSON.stringify({ identifier: identifiers, reconnect })
  })
  assert.equal(res.status, 201)
}

function responseTo(url) {
  return responses.find(r => r.url === url)
}

test('a page of another origin receives publications (no --allowed_origins: every origin)', async () => {
  const url = eventsURL(anyOrigin, { stream: 'browser/any' })
  assert.notEqual(new URL(url).origin, pageOrigin)
  const s = await openStream(url)
  try {
    let st = await confirmed(s)
    assert.equal(st.opens, 1)
    assert.equal(st.readyState, 1)
    await publish(anyOrigin, API_TOKEN, { stream: 'browser/any', data: JSON.stringify({ text: 'hello', n: 1 }) })
    await publish(anyOrigin, API_TOKEN, { stream: 'browser/any', data: JSON.stringify('two\nlines') })
    st = await waitState(s, '2 messages', st => st.messages.length >= 2)
    assert.deepEqual(JSON.parse(st.messages[0].data), { text: 'hello', n: 1 })
    assert.equal(st.messages[1].data, 'two\nlines')
    assert.match(st.messages[0].lastEventId, /^1\/[^/]+\/browser\/any$/)
    assert.match(st.messages[1].lastEventId, /^2\/[^/]+\/browser\/any$/)
    assert.equal(st.messages[0].origin, `http://${anyOrigin.addr}`)
    // The origin is echoed, not "*".
    assert.equal(responseTo(url)?.headers['access-control-allow-origin'], pageOrigin)
  } finally {
    await s.close()
  }
})

test('withCredentials: true works cross-origin: the origin is echoed with credentials allowed, never "*"', async () => {
  for (const server of [anyOrigin, allowed]) {
    const url = eventsURL(server, { stream: 'browser/credentials' })
    const s = await openStream(url, { withCredentials: true })
    try {
      let st = await confirmed(s)
      assert.equal(st.withCredentials, true)
      await publish(server, API_TOKEN, { stream: 'browser/credentials', data: JSON.stringify('with cookies') })
      st = await waitState(s, 'the message', st => st.messages.length >= 1)
      assert.deepEqual(st.messages.map(m => m.data), ['with cookies'])
      const res = responseTo(url)
      assert.equal(res?.headers['access-control-allow-origin'], pageOrigin)
      assert.equal(res?.headers['access-control-allow-credentials'], 'true')
    } finally {
      await s.close()
    }
  }
})

test('--allowed_origins naming the page\'s host: the stream works', async () => {
  const url = eventsURL(allowed, { stream: 'browser/allowed' })
  const s = await openStream(url)
  try {
    await confirmed(s)
    await publish(allowed, API_TOKEN, { stream: 'browser/allowed', data: JSON.stringify('allowed') })
    const st = await waitState(s, 'the message', st => st.messages.length >= 1)
    assert.deepEqual(st.messages.map(m => m.data), ['allowed'])
  } finally {
    await s.close()
  }
})

test('--allowed_origins without the page\'s host: the browser does not expose the stream (EventSource error)', async () => {
  for (const init of [{}, { withCredentials: true }]) {
    const url = eventsURL(excluded, { stream: 'browser/excluded', credentials: String(Boolean(init.withCredentials)) })
    const s = await openStream(url, init)
    try {
      let st = await waitState(s, 'the error', st => st.errors.length >= 1 || st.opens > 0)
      assert.equal(st.opens, 0, 'never open')
      // Chromium fails the connection on a CORS refusal: no retry.
      assert.equal(st.readyState, 2)
      // The server answered without naming the page's origin; the browser
      // refused it for that (and the page was never given the answer).
      await waitFor('the failure in DevTools', () => failures.some(f => f.url === url))
      assert.deepEqual(failures.filter(f => f.url === url).map(f => f.cors), ['MissingAllowOriginHeader'])
      assert.equal(responseTo(url), undefined)
      assert.deepEqual(st.messages, [])
      assert.deepEqual(st.named.welcome, [])
    } finally {
      await s.close()
    }
  }
})

test('the browser reconnects by itself after a remote disconnect with reconnect:true: Last-Event-ID, exactly the missed messages', async () => {
  const user = JSON.stringify({ user_id: 'browser-comeback' })
  const stream = 'browser/recover'
  const url = eventsURL(allowed, { stream, jid: jwt(SECRET, { ext: user }) })
  const s = await openStream(url)
  try {
    await confirmed(s)
    await publish(allowed, API_TOKEN, { stream, data: JSON.stringify('m1') })
    await publish(allowed, API_TOKEN, { stream, data: JSON.stringify('m2') })
    await waitState(s, '2 messages', st => st.messages.length >= 2)
    await disconnect(allowed, user, true)
    let st = await waitState(s, 'the disconnect', st => st.named.disconnect.length >= 1 && st.errors.length >= 1)
    assert.deepEqual(JSON.parse(st.named.disconnect[0]), { type: 'disconnect', reason: 'remote', reconnect: true })
    assert.equal(st.readyState, 0, 'reconnecting')
    // Published while the browser waits its reconnection time (3 s).
    for (const text of ['m3', 'm4', 'm5']) await publish(allowed, API_TOKEN, { stream, data: JSON.stringify(text) })
    st = await waitState(s, 'the second open', st => st.opens >= 2, 10000)
    assert.equal(st.opens, 2, 'only the first open before the disconnect')
    await waitState(s, 'confirm_history', st => st.named.confirm_history.length >= 1)
    await publish(allowed, API_TOKEN, { stream, data: JSON.stringify('m6') })
    st = await waitState(s, '6 messages', st => st.messages.some(m => m.data === 'm6'))
    assert.deepEqual(st.messages.map(m => m.data), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'])
    assert.deepEqual(st.messages.map(m => Number(m.lastEventId.split('/')[0])), [1, 2, 3, 4, 5, 6])
    assert.deepEqual(st.named.reject_history, [])
  } finally {
    await s.close()
  }
})

test('a remote disconnect with reconnect:false: the browser gets the disconnect event and does not come back', async () => {
  const user = JSON.stringify({ user_id: 'browser-gone' })
  const url = eventsURL(anyOrigin, { stream: 'browser/gone', jid: jwt(SECRET, { ext: user }) })
  const before = responses.length
  const s = await openStream(url)
  try {
    await confirmed(s)
    await disconnect(anyOrigin, user, false)
    let st = await waitState(s, 'the disconnect', st => st.named.disconnect.length >= 1 && st.errors.length >= 1)
    assert.deepEqual(JSON.parse(st.named.disconnect[0]), { type: 'disconnect', reason: 'remote', reconnect: false })
    // Well past the default 3 s reconnection time: still the one request.
    const deadline = Date.now() + 4000
    await waitFor('4 s', () => Date.now() > deadline, 5000)
    st = await s.state()
    assert.equal(st.opens, 1)
    assert.equal(st.named.welcome.length, 1)
    assert.equal(responses.slice(before).filter(r => r.url === url).length, 1)
  } finally {
    await s.close()
  }
})
