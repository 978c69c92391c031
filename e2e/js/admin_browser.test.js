// The admin console (--admin) in a real browser: headless Chromium
// (Debian's /usr/bin/chromium, driven by puppeteer-core) against two
// cablehub nodes sharing a Redis broker. The tests run in order on one page
// (node A's console) and build on each other: sign-in, each page, the
// session cookie, dark mode, keyboard, a phone-width pass, sign-out, a
// session ended elsewhere, the sign-in rate limit (node B).
//
// The two nodes run on 127.0.0.1, so the browser sends the one cookie to
// both (cookies ignore the port).
//
// Screenshots go to $ARTIFACTS_DIR (or e2e/js/artifacts/admin/); with
// UPDATE_DOCS_SCREENSHOTS=1 the 1280×800 Overview is also copied to
// docs/img/admin-overview.png, and the other pages docs/admin.md shows
// (DOCS_SHOTS) to docs/img/ once the run is over.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { accessSync, constants, copyFileSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { createCable } from '@anycable/core'
import puppeteer from 'puppeteer-core'
import { startServer, SECRET, API_TOKEN, jwt, publish, waitFor } from './server.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'
// Redis DB 14 (no other JavaScript test uses it); pub/sub channels ignore
// the DB number, so stream names carry RUN.
const DB = 14
const REDIS = `redis://127.0.0.1:6379/${DB}`
const RUN = Date.now().toString(36)
const PASSWORD = `console-pw-${RUN}`
const ARTIFACTS = process.env.ARTIFACTS_DIR || path.join(here, 'artifacts', 'admin')
const DOCS_OVERVIEW = path.join(here, '..', '..', 'docs', 'img', 'admin-overview.png')
// DOCS_SHOTS maps artifacts to the docs' copies of them.
const DOCS_SHOTS = {
  'streams-1280x800.png': 'admin-streams.png',
  'actions-1280x800.png': 'admin-actions.png',
  'overview-dark-1280x800.png': 'admin-overview-dark.png',
  'overview-390x844.png': 'admin-overview-phone.png'
}
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
const WAIT = 10000

let a, b, browser, page
let consoleURL // node A's console
const ids = {} // node ids (GetInfo's), from each node's GET /admin/session
const problems = [] // CSP violations and script errors seen in the page
const closers = [] // clients to close in after()

before(async () => {
  try {
    accessSync(CHROMIUM, constants.X_OK)
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM_BIN`)
  }
  mkdirSync(ARTIFACTS, { recursive: true })
  execFileSync('redis-cli', ['-n', String(DB), 'flushdb'])
  const args = ['--secret', SECRET, '--public', '--norpc', '--broker', 'redis', '--redis_url', REDIS,
    '--admin', '--admin_password', PASSWORD]
  a = await startServer(args)
  b = await startServer(args)
  // Each node's id (GetInfo's, not /health's --node_id), as its console
  // session reports it.
  for (const [name, s] of [['a', a], ['b', b]]) ids[name] = (await signInFetch(s)).node_id
  // Both nodes know each other before the page asks.
  await waitFor('both nodes in GET /api/info', async () => {
    const listed = (await apiInfo(a)).nodes.map(n => n.id)
    return listed.includes(ids.a) && listed.includes(ids.b)
  }, WAIT)
  consoleURL = `http://${a.addr}/admin/`

  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless=new']
  })
  page = await browser.newPage()
  await page.setViewport(DESKTOP)
  page.on('console', msg => {
    const text = msg.text()
    if (/Content Security Policy|Refused to/i.test(text)) problems.push(`console: ${text}`)
  })
  page.on('pageerror', err => problems.push(`pageerror: ${err.message}`))
})

after(async () => {
  for (const close of closers) {
    try {
      close()
    } catch {
      // already closed
    }
  }
  if (browser) await browser.close()
  for (const s of [a, b]) if (s) await s.stop()
  if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') {
    for (const [shot, doc] of Object.entries(DOCS_SHOTS)) {
      copyFileSync(path.join(ARTIFACTS, shot), path.join(path.dirname(DOCS_OVERVIEW), doc))
    }
  }
})

async function apiInfo(server) {
  const res = await fetch(`http://${server.addr}/api/info`, { headers: { Authorization: `Bearer ${API_TOKEN}` } })
  assert.equal(res.status, 200)
  return res.json()
}

// signInFetch signs in to a node's console outside the browser and answers
// its GET /admin/session.
async function signInFetch(server) {
  const res = await fetch(`http://${server.addr}/admin/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Cablehub-Console': '1' },
    body: JSON.stringify({ password: PASSWORD })
  })
  assert.equal(res.status, 204, `sign-in to ${server.addr}: ${await res.text()}`)
  const cookie = res.headers.get('set-cookie').split(';')[0]
  const session = await fetch(`http://${server.addr}/admin/session`, { headers: { Cookie: cookie, 'X-Cablehub-Console': '1' } })
  assert.equal(session.status, 200)
  return session.json()
}

function cableOn(server, opts = {}) {
  const cable = createCable(`ws://${server.addr}/cable`, {
    websocketImplementation: WebSocket,
    protocol: 'actioncable-v1-ext-json',
    logLevel: 'error',
    ...opts
  })
  closers.push(() => cable.disconnect())
  return cable
}

async function shot(name, { fullPage = false } = {}) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage })
}

// waitText waits for the element's text to match re; the error says what
// the text was instead.
async function waitText(selector, re, what, timeout = WAIT) {
  try {
    await page.waitForFunction((sel, src, flags) => {
      const el = document.querySelector(sel)
      return el !== null && new RegExp(src, flags).test(el.textContent)
    }, { timeout, polling: 50 }, selector, re.source, re.flags)
  } catch (err) {
    const now = await page.$eval(selector, el => el.textContent).catch(() => '(no such element)')
    throw new Error(`timed out waiting for ${what}: ${selector} has ${JSON.stringify(now)} (${err.message})`)
  }
}

async function waitShown(selector, what) {
  await page.waitForSelector(selector, { visible: true, timeout: WAIT }).catch(err => {
    throw new Error(`timed out waiting for ${what} (${selector}): ${err.message}`)
  })
}

// goTo follows a navigation link with the keyboard: focus, Enter.
async function goTo(name) {
  await page.focus(`#nav a[data-page="${name}"]`)
  await page.keyboard.press('Enter')
  await waitShown(`#page-${name}`, `the ${name} page`)
  assert.equal(await page.$eval(`#nav a[data-page="${name}"]`, a => a.getAttribute('aria-current')), 'page')
  assert.deepEqual(await page.$$eval('#nav a[aria-current]', as => as.map(a => a.dataset.page)), [name])
}

async function fill(selector, text) {
  await page.$eval(selector, el => { el.value = '' })
  await page.type(selector, text)
}

async function noHorizontalOverflow(what) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth])
  assert.ok(scroll <= inner, `${what}: the page is ${scroll} px wide in a ${inner} px window`)
}

async function everyFieldLabelled(what) {
  const unlabelled = await page.$$eval('input, textarea, select', els => els
    .filter(el => el.type !== 'hidden')
    .filter(el => !(el.labels.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
    .map(el => el.id || el.name || el.outerHTML))
  assert.deepEqual(unlabelled, [], `${what}: every field has a label`)
}

// consoleFetch calls node A with a session cookie's value, as a browser
// tab would (header X-Cablehub-Console unless header is false).
function consoleFetch(urlPath, cookie, header = true) {
  const headers = { Cookie: `cablehub_admin=${cookie}` }
  if (header) headers['X-Cablehub-Console'] = '1'
  return fetch(`http://${a.addr}${urlPath}`, { headers })
}

test('sign-in: a wrong password is refused with a message, the right one (typed, Enter) opens the Overview', async () => {
  const res = await page.goto(consoleURL)
  assert.equal(res.status(), 200)
  assert.match(res.headers()['content-security-policy'] || '', /script-src 'self'/)
  await waitShown('#signin-form', 'the sign-in form')
  assert.equal(await page.$('#nav:not([hidden])'), null, 'no navigation before signing in')
  await page.waitForFunction(() => document.activeElement?.id === 'signin-password', { timeout: WAIT })
  await everyFieldLabelled('sign-in')
  await shot('signin-1280x800')

  await page.keyboard.type('not-the-password')
  await page.keyboard.press('Enter')
  await waitText('#signin-status', /wrong password/i, 'the refusal')
  assert.equal(await page.$eval('#signin-status', el => el.getAttribute('aria-live')), 'polite')
  assert.ok(await page.$eval('#page-signin', el => !el.hidden), 'still the sign-in form')
  // The field keeps the focus, its text selected: typing replaces it.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'signin-password')
  await page.keyboard.type(PASSWORD)
  await page.keyboard.press('Enter')
  await waitShown('#page-overview', 'the Overview after signing in')
  assert.equal(await page.$eval('#signin-password', el => el.value), '', 'the password is not kept in the page')
  assert.equal(await page.$eval('#nav a[aria-current]', a => a.dataset.page), 'overview')
  await waitText('#session-id', new RegExp(`^${ids.a}$`), 'the node serving the console')
})

test('overview: both nodes listed, four live charts with text values', async () => {
  await waitShown('#page-overview', 'the Overview')
  await page.waitForFunction((want) => {
    const shown = [...document.querySelectorAll('#nodes-rows tr')].map(tr => tr.dataset.node)
    return want.every(id => shown.includes(id))
  }, { timeout: WAIT }, [ids.a, ids.b]).catch(async err => {
    throw new Error(`nodes ${ids.a}, ${ids.b} not both listed: ${await page.$eval('#nodes-rows', el => el.textContent)} (${err.message})`)
  })
  const info = await apiInfo(a)
  const shown = await page.$$eval('#nodes-rows tr', trs => trs.map(tr => tr.dataset.node))
  for (const id of shown) assert.ok(info.nodes.some(n => n.id === id), `node ${id} on the page is in GET /api/info`)
  const rowA = await page.$eval(`#nodes-rows tr[data-node="${ids.a}"]`, tr => [...tr.children].map(td => td.textContent))
  assert.match(rowA[0], /this console/)
  assert.match(rowA[1], /\S/, 'a version')
  assert.match(rowA[2], /^\d+(s|m \d\ds)$/, 'uptime of a node started seconds ago')

  // Some traffic for the charts: two subscribers (one per node) and a
  // publication every 200 ms. For the docs' screenshot, longer and livelier:
  // more clients joining, publications in waves, 45 s of it.
  const docs = process.env.UPDATE_DOCS_SCREENSHOTS === '1'
  const stream = `admin/${RUN}/traffic`
  const subscribers = []
  const subscribe = async s => {
    const ch = cableOn(s).streamFrom(stream)
    await ch.ensureSubscribed()
    subscribers.push(ch)
  }
  for (const s of [a, b]) await subscribe(s)
  let n = 0
  const traffic = setInterval(() => {
    n++
    const count = docs ? 1 + Math.round(2 + 2 * Math.sin(n / 12)) : 1
    const batch = Array.from({ length: count }, (_, i) => ({ stream, data: JSON.stringify({ n, i }) }))
    publish(n % 2 ? a : b, API_TOKEN, batch).catch(() => {})
    if (docs && n % 20 === 0 && subscribers.length < 12) subscribe(n % 40 ? a : b).catch(() => {})
  }, 200)
  try {
    const charts = await page.$$eval('#charts figure', figs => figs.map(f => f.id))
    assert.deepEqual(charts, ['chart-connections', 'chart-deliveries', 'chart-publishes', 'chart-rpc'])
    for (const id of charts) {
      assert.ok(await page.$(`#${id} figcaption`), `${id} has a caption`)
      assert.ok(await page.$(`#${id} svg path.chart-line`), `${id} has a line`)
    }
    // Eight polls (45 for the docs) with the traffic: a rate above 0 is drawn.
    const points = docs ? 45 : 8
    await page.waitForFunction(points => {
      const f = document.getElementById('chart-deliveries')
      return Number(f.dataset.points || 0) >= points && /^[1-9][\d,.]*\/s$/.test(f.querySelector('.chart-value').textContent) &&
        /^[1-9]/.test(document.querySelector('#chart-publishes .chart-value').textContent)
    }, { timeout: (points + 15) * 1000, polling: 200 }, points).catch(async err => {
      const values = await page.$$eval('.chart-value', els => els.map(e => e.textContent))
      throw new Error(`no deliveries drawn: ${values} (${err.message})`)
    })
    const connections = await page.$eval('#chart-connections .chart-value', el => el.textContent)
    assert.ok(Number(connections.replace(/,/g, '')) >= 2, `connections ${connections}`)
    assert.match(await page.$eval('#chart-deliveries .chart-summary', el => el.textContent), /Last 60 s: lowest .*highest/)
    assert.match(await page.$eval('#chart-deliveries path.chart-line', p => p.getAttribute('d')), /^M[\d.]+ [\d.]+ L/)
    await shot('overview-1280x800')
  } finally {
    clearInterval(traffic)
    for (const ch of subscribers) ch.disconnect()
  }
  if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') {
    mkdirSync(path.dirname(DOCS_OVERVIEW), { recursive: true })
    copyFileSync(path.join(ARTIFACTS, 'overview-1280x800.png'), DOCS_OVERVIEW)
  }
})

test('streams: find a stream with a subscriber, its presence, watch it and see REST publications arrive', async () => {
  const stream = `admin/${RUN}/room`
  const cable = cableOn(a)
  const channel = cable.streamFrom(stream)
  await channel.ensureSubscribed()
  await channel.presence.join('alice', { name: 'Alice' })

  await goTo('streams')
  await page.focus('#streams-prefix')
  await page.keyboard.type(`admin/${RUN}/r`)
  await page.waitForFunction(name => [...document.querySelectorAll('#streams-rows tr')].some(tr =>
    tr.querySelector('a')?.textContent === name && tr.querySelector('td.num')?.textContent === '1'),
  { timeout: WAIT }, stream).catch(async err => {
    throw new Error(`${stream} with 1 subscriber not listed: ${await page.$eval('#streams-rows', el => el.textContent)} (${err.message})`)
  })
  // Open it with the keyboard.
  await page.focus(`#streams-rows a[href="#streams/${encodeURIComponent(stream)}"]`)
  await page.keyboard.press('Enter')
  await waitShown('#stream-detail', 'the stream\'s details')
  assert.equal(await page.$eval('#stream-name', el => el.textContent), stream)
  assert.equal(await page.evaluate(() => location.hash), `#streams/${encodeURIComponent(stream)}`)
  await waitText('#presence-users', /^1$/, 'one present user')
  await waitText('#presence-sessions', /^1$/, 'one presence session')
  await waitText('#presence-rows', /alice\{"name":"Alice"\}/, 'alice and her info')

  await page.click('#watch-toggle')
  await waitText('#tail-status', /^Live/, 'the watch going live')
  assert.equal(await page.$eval('#watch-toggle', el => el.getAttribute('aria-pressed')), 'true')
  await publish(a, API_TOKEN, { stream, data: JSON.stringify({ text: 'through A' }) })
  await publish(b, API_TOKEN, { stream, data: JSON.stringify({ text: 'through B' }) })
  await waitText('#tail', /through B/, 'the publication made through node B in the live tail')
  const tail = await page.$$eval('#tail li', lis => lis.map(li => [li.querySelector('.tail-offset').textContent, li.querySelector('.tail-data').textContent]))
  assert.deepEqual(tail, [['#2', '{"text":"through B"}'], ['#1', '{"text":"through A"}']], 'newest first, with offsets')

  await page.click('#stream-reload')
  await waitText('#history-rows', /through B/, 'the history after a refresh')
  const history = await page.$$eval('#history-rows tr', trs => trs.map(tr => [...tr.children].map(td => td.textContent)))
  assert.deepEqual(history, [['2', '{"text":"through B"}'], ['1', '{"text":"through A"}']])
  await shot('streams-1280x800')

  // A stream nobody subscribes to, opened by name, watched. Its name and
  // data are markup, which must show as text.
  const quiet = `admin/${RUN}/nobody <b>here</b>`
  await page.focus('#stream-open-name')
  await page.keyboard.type(quiet)
  await page.keyboard.press('Enter')
  await waitText('#stream-name', new RegExp(`^${quiet}$`), 'the opened stream')
  assert.equal(await page.$eval('#watch-toggle', el => el.getAttribute('aria-pressed')), 'false', 'the previous watch stopped')
  await waitText('#presence-users', /^0$/, 'nobody present')
  await page.click('#watch-toggle')
  await waitText('#tail-status', /^Live/, 'the second watch going live')
  const markup = '<img src=x onerror="window.pwned=1">plain text'
  await publish(b, API_TOKEN, { stream: quiet, data: markup })
  await waitText('#tail', /plain text/, 'the publication on the quiet stream')
  assert.ok((await page.$eval('#tail', el => el.textContent)).includes(markup), 'the data shown as text')
  assert.equal(await page.$$eval('#tail img, #stream-name b', els => els.length), 0, 'no markup from a stream name or data')
  assert.equal(await page.evaluate(() => window.pwned), undefined)
  await channel.presence.leave()
})

test('actions: publish from the page reaches a WebSocket client of the other node; disconnect a JWT user by its identifiers', async () => {
  const stream = `admin/${RUN}/actions`
  const got = []
  const channel = cableOn(b).streamFrom(stream)
  channel.on('message', m => got.push(m))
  await channel.ensureSubscribed()

  const identifiers = JSON.stringify({ user_id: `victim-${RUN}` })
  const token = jwt(SECRET, { ext: identifiers, exp: Math.floor(Date.now() / 1000) + 600 })
  const user = { messages: [], closed: null }
  const ws = new WebSocket(`ws://${b.addr}/cable?jid=${token}`, ['actioncable-v1-json'])
  closers.push(() => ws.terminate())
  ws.on('message', data => user.messages.push(JSON.parse(String(data))))
  ws.on('close', code => { user.closed = code })
  await waitFor('the JWT user\'s welcome', () => user.messages.some(m => m.type === 'welcome'), WAIT)

  await goTo('actions')
  await everyFieldLabelled('actions')
  await page.focus('#publish-stream')
  await page.keyboard.type(stream)
  await page.focus('#publish-data')
  await page.keyboard.type(JSON.stringify({ from: 'console' }))
  await page.focus('#publish-stream')
  await page.keyboard.press('Enter')
  await waitText('#publish-status', /^Published/, 'the publish result')
  await waitFor('the publication on node B', () => got.length >= 1, WAIT)
  assert.deepEqual(got, [{ from: 'console' }])

  await fill('#batch-json', JSON.stringify([{ stream, data: '"b1"' }, { stream, data: '"b2"' }]))
  await page.click('#batch-form button[type=submit]')
  await waitText('#batch-status', /^Published \(2 publications\)/, 'the batch result')
  await waitFor('the batch on node B', () => got.length >= 3, WAIT)
  assert.deepEqual(got, [{ from: 'console' }, 'b1', 'b2'])

  await fill('#batch-json', '[{"stream":')
  await page.click('#batch-form button[type=submit]')
  await waitText('#batch-status', /^Not valid JSON/, 'the batch refused before sending')

  await page.focus('#disconnect-identifier')
  await page.keyboard.type(identifiers)
  await page.keyboard.press('Enter')
  await waitText('#disconnect-status', /^Disconnect sent/, 'the disconnect result')
  await waitFor('the JWT user disconnected', () => user.closed !== null, WAIT)
  const bye = user.messages.find(m => m.type === 'disconnect')
  assert.deepEqual(bye, { type: 'disconnect', reason: 'remote', reconnect: false })
  await shot('actions-1280x800')
})

test('configuration: the TOML of the node, no password or secret in the page', async () => {
  await goTo('config')
  await waitText('#config-toml', /\S/, 'the configuration')
  assert.equal(await page.$eval('#config-node', el => el.textContent), ids.a)
  const toml = await page.$eval('#config-toml', el => el.textContent)
  assert.ok(toml.includes(`127.0.0.1:6379/${DB}`), 'the TOML has the Redis URL')
  // Comments can be hidden, settings stay.
  assert.ok(await page.$('#config-toml .toml-comment'), 'comment lines are marked')
  await page.click('#config-comments')
  assert.equal(await page.$$eval('#config-toml .toml-comment', els => els.filter(el => el.offsetParent !== null).length), 0)
  assert.ok(await page.$$eval('#config-toml .toml-line', els => els.some(el => el.offsetParent !== null && /=/.test(el.textContent))))
  await page.click('#config-comments')
  const everything = await page.evaluate(() => document.documentElement.outerHTML + '\n' +
    [...document.querySelectorAll('input, textarea')].map(el => el.value).join('\n'))
  for (const [name, value] of [['password', PASSWORD], ['secret', SECRET], ['API token', API_TOKEN]]) {
    assert.ok(!everything.includes(value), `the ${name} is not in the page`)
  }
  await shot('config-1280x800')
})

test('session cookie: cablehub_admin, HttpOnly, SameSite=Strict, Path=/, at most 8 hours; the API wants the console header', async () => {
  const cookies = await page.cookies()
  const c = cookies.find(c => c.name === 'cablehub_admin')
  assert.ok(c, `a cablehub_admin cookie among ${cookies.map(c => c.name)}`)
  assert.equal(c.httpOnly, true)
  assert.equal(c.sameSite, 'Strict')
  assert.equal(c.path, '/')
  assert.equal(c.secure, false, 'plain HTTP here')
  const now = Date.now() / 1000
  assert.ok(c.expires > now, 'expires in the future')
  assert.ok(c.expires <= now + 8 * 3600 + 60, `expires within 8 hours (${c.expires - now} s)`)
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('cablehub_admin'), 'not readable by scripts')
  const withHeader = await consoleFetch('/api/info', c.value)
  assert.equal(withHeader.status, 200)
  const withoutHeader = await consoleFetch('/api/info', c.value, false)
  assert.equal(withoutHeader.status, 401, 'the cookie alone is not enough (CSRF guard)')
})

test('dark mode: the Overview follows prefers-color-scheme with readable contrast', async () => {
  const contrast = () => page.evaluate(() => {
    const rgb = s => s.match(/[\d.]+/g).slice(0, 3).map(Number)
    const lum = c => {
      const [r, g, b] = c.map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
      return 0.2126 * r + 0.7152 * g + 0.0722 * b
    }
    const ratio = (x, y) => {
      const [l1, l2] = [lum(rgb(x)), lum(rgb(y))].sort((p, q) => q - p)
      return (l1 + 0.05) / (l2 + 0.05)
    }
    const bg = getComputedStyle(document.body).backgroundColor
    const color = sel => getComputedStyle(document.querySelector(sel)).color
    const cardBg = getComputedStyle(document.querySelector('.chart')).backgroundColor
    return {
      background: lum(rgb(bg)),
      text: ratio(color('body'), bg),
      muted: ratio(color('.chart-summary'), cardBg),
      link: ratio(color('#nav a[aria-current]'), getComputedStyle(document.querySelector('#nav')).backgroundColor)
    }
  })
  await goTo('overview')
  await waitText('#chart-connections .chart-value', /\d/, 'the charts')
  const light = await contrast()
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }])
  try {
    await page.waitForFunction(() => getComputedStyle(document.body).backgroundColor !== 'rgb(246, 247, 249)', { timeout: WAIT })
    const dark = await contrast()
    assert.ok(light.background > 0.8, `a light background in light mode (${light.background})`)
    assert.ok(dark.background < 0.05, `a dark background in dark mode (${dark.background})`)
    for (const [mode, c] of [['light', light], ['dark', dark]]) {
      for (const key of ['text', 'muted', 'link']) assert.ok(c[key] >= 4.5, `${mode} ${key} contrast ${c[key].toFixed(2)} ≥ 4.5`)
    }
    await waitText('#nodes-rows', new RegExp(ids.b), 'the nodes')
    await waitText('#chart-deliveries .chart-value', /\d/, 'a rate after two polls')
    await shot('overview-dark-1280x800')
  } finally {
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }])
  }
})

test('keyboard: Tab reaches every control of the Actions page and the navigation', async () => {
  await goTo('actions')
  // From the top of the page (the skip link is its first focusable element).
  await page.focus('#skip')
  const visited = ['skip']
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab')
    const key = await page.evaluate(() => {
      const el = document.activeElement
      return el && el !== document.body ? (el.id || el.getAttribute('href') || el.textContent.trim()) : null
    })
    if (key === null || (visited.length && key === visited[0])) break
    visited.push(key)
  }
  const controls = await page.$$eval('#nav a, #sign-out, #page-actions input, #page-actions textarea, #page-actions button',
    els => els.map(el => el.id || el.getAttribute('href') || el.textContent.trim()))
  for (const c of controls) assert.ok(visited.includes(c), `Tab reaches ${c} (reached: ${visited.join(', ')})`)
  // A control reached with the keyboard shows a visible focus ring (the
  // ring is :focus-visible's, so focus arrives by Tab, not by script).
  await page.focus('#publish-stream')
  await page.keyboard.down('Shift')
  await page.keyboard.press('Tab')
  await page.keyboard.up('Shift')
  await page.keyboard.press('Tab')
  await page.waitForFunction(() => {
    const el = document.activeElement
    return el && el.id === 'publish-stream' && getComputedStyle(el).outlineStyle !== 'none'
  }, { timeout: WAIT }).catch(async err => {
    const state = await page.evaluate(() => [document.activeElement?.id, getComputedStyle(document.activeElement).outlineStyle])
    throw new Error(`no focus ring on #publish-stream reached by Tab: ${state} (${err.message})`)
  })
})

test('phone width (390×844): no horizontal overflow on any page, every field labelled', async () => {
  await page.setViewport(PHONE)
  try {
    const stream = `admin/${RUN}/room`
    const pages = [
      ['overview', '#overview', () => waitText('#nodes-rows', new RegExp(ids.b), 'the nodes')],
      ['streams', `#streams/${encodeURIComponent(stream)}`, () => waitText('#history-rows', /through B/, 'the history')],
      ['actions', '#actions', () => waitShown('#publish-form', 'the publish form')],
      ['config', '#config', () => waitText('#config-toml', /\S/, 'the configuration')]
    ]
    for (const [name, hash, ready] of pages) {
      await page.evaluate(h => { location.hash = h }, hash)
      await waitShown(`#page-${name}`, `the ${name} page`)
      await ready()
      await noHorizontalOverflow(name)
      await everyFieldLabelled(name)
      await shot(`${name}-390x844`, { fullPage: name !== 'overview' })
    }
  } finally {
    await page.setViewport(DESKTOP)
  }
})

test('sign-out: the sign-in form returns and the old cookie no longer opens the API', async () => {
  const cookie = (await page.cookies()).find(c => c.name === 'cablehub_admin').value
  assert.equal((await consoleFetch('/api/info', cookie)).status, 200)
  await page.focus('#sign-out')
  await page.keyboard.press('Enter')
  await waitShown('#signin-form', 'the sign-in form after signing out')
  await waitText('#signin-status', /Signed out/, 'the signed-out message')
  assert.ok(await page.$eval('#nav', el => el.hidden), 'no navigation when signed out')
  assert.equal((await page.cookies()).find(c => c.name === 'cablehub_admin'), undefined, 'the cookie is cleared')
  const res = await consoleFetch('/api/info', cookie)
  assert.equal(res.status, 401, 'the revoked session is refused')
  assert.equal((await consoleFetch('/admin/config', cookie)).status, 401)

  // A page opened now shows the form too, at phone width without overflow.
  await page.setViewport(PHONE)
  try {
    await page.goto('about:blank')
    await page.goto(consoleURL + '#streams')
    await waitShown('#signin-form', 'the sign-in form on a fresh load')
    await noHorizontalOverflow('sign-in')
    await shot('signin-390x844')
  } finally {
    await page.setViewport(DESKTOP)
  }
})

test('a 401 anywhere ends the signed-in view: the session signed out elsewhere stops the Overview\'s polling', async () => {
  await page.goto(consoleURL + '#overview')
  await waitShown('#signin-form', 'the sign-in form')
  await page.waitForFunction(() => document.activeElement?.id === 'signin-password', { timeout: WAIT })
  await page.keyboard.type(PASSWORD)
  await page.keyboard.press('Enter')
  await waitShown('#page-overview', 'the Overview')
  await waitText('#nodes-rows', new RegExp(ids.b), 'the nodes')
  // Signed out from another tab (here: outside the browser, same token).
  const cookie = (await page.cookies()).find(c => c.name === 'cablehub_admin').value
  const res = await fetch(`http://${a.addr}/admin/session`, {
    method: 'DELETE',
    headers: { Cookie: `cablehub_admin=${cookie}`, 'X-Cablehub-Console': '1' }
  })
  assert.equal(res.status, 204)
  await waitShown('#signin-form', 'the sign-in form after the next poll got 401')
  await waitText('#signin-status', /session has ended/, 'why the form is back')
  assert.ok(await page.$eval('#page-overview', el => el.hidden), 'the Overview is gone')
  assert.ok(await page.$eval('#nav', el => el.hidden), 'so is the navigation')
  // The page drops the dead cookie (a sign-out is remembered by the node
  // asked only, and the browser sends the cookie to every port of the host).
  await waitFor('the cookie dropped', async () => !(await page.cookies()).some(c => c.name === 'cablehub_admin'), WAIT)
})

test('sign-in rate limit: after 5 failures a minute the page shows the 429 message', async () => {
  // Node B has seen no failure yet; five from this address, then the page.
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`http://${b.addr}/admin/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Cablehub-Console': '1' },
      body: JSON.stringify({ password: `wrong-${i}` })
    })
    assert.ok([401, 429].includes(res.status), `attempt ${i + 1}: ${res.status}`)
  }
  await page.goto(`http://${b.addr}/admin/`)
  await waitShown('#signin-form', 'node B\'s sign-in form')
  await page.waitForFunction(() => document.activeElement?.id === 'signin-password', { timeout: WAIT })
  await page.keyboard.type('wrong-again')
  await page.keyboard.press('Enter')
  await waitText('#signin-status', /too many sign-in attempts: try again in \d+ s/, 'the 429 message')
  assert.ok(await page.$eval('#page-signin', el => !el.hidden), 'still the sign-in form')
})

test('no CSP violation or script error in the page', () => {
  assert.deepEqual(problems, [])
})
