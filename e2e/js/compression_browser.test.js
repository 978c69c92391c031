// WebSocket compression from a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by puppeteer-core) always offers
// permessage-deflate; with --enable_ws_compression the server accepts it
// and the page receives large and small broadcasts, in order. DevTools
// shows the agreed extension and the frames as the page got them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { accessSync, constants } from 'node:fs'
import puppeteer from 'puppeteer-core'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'

let server, browser, page, pageServer
const handshakes = []

before(async () => {
  try {
    accessSync(CHROMIUM, constants.X_OK)
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM_BIN`)
  }
  server = await startServer(['--secret', SECRET, '--public', '--norpc', '--enable_ws_compression'])
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--headless=new'] })
  page = await browser.newPage()
  const cdp = await page.createCDPSession()
  cdp.on('Network.webSocketHandshakeResponseReceived', e => handshakes.push(e.response))
  await cdp.send('Network.enable')
  // A page of its own origin, as an application's would be.
  pageServer = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><meta charset="utf-8"><title>compression</title>')
  })
  await new Promise(resolve => pageServer.listen(0, '127.0.0.1', resolve))
  await page.goto(`http://127.0.0.1:${pageServer.address().port}/`)
})

after(async () => {
  if (browser) await browser.close()
  if (server) await server.stop()
  if (pageServer) await new Promise(resolve => pageServer.close(resolve))
})

test('Chromium agrees permessage-deflate and receives compressed broadcasts in order', async () => {
  const identifier = JSON.stringify({ channel: '$pubsub', stream_name: 'browser-zip' })
  await page.evaluate((url, identifier) => new Promise((resolve, reject) => {
    window.got = []
    const ws = new WebSocket(url, 'actioncable-v1-ext-json')
    window.ws = ws
    ws.onerror = () => reject(new Error('WebSocket error'))
    ws.onmessage = ev => {
      const m = JSON.parse(ev.data)
      if (m.type === 'welcome') ws.send(JSON.stringify({ command: 'subscribe', identifier }))
      if (m.type === 'confirm_subscription') resolve()
      if (m.identifier === identifier && m.message !== undefined) window.got.push(m.message)
    }
  }), `ws://${server.addr}/cable`, identifier)

  assert.equal(handshakes.length, 1)
  const headers = Object.fromEntries(Object.entries(handshakes[0].headers).map(([k, v]) => [k.toLowerCase(), v]))
  assert.equal(headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover')

  const sent = []
  for (let i = 0; i < 50; i++) {
    const body = i % 3 ? { n: i } : { n: i, html: '<li class="message">hello browser</li>'.repeat(50 + i) }
    sent.push(body)
    await publish(server, API_TOKEN, { stream: 'browser-zip', data: JSON.stringify(body) })
  }
  await waitFor('50 broadcasts in the page', async () => (await page.evaluate(() => window.got.length)) >= 50)
  assert.deepEqual(await page.evaluate(() => window.got), sent)
  await page.evaluate(() => window.ws.close())
})
