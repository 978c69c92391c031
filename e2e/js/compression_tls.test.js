// WebSocket compression (--enable_ws_compression, permessage-deflate) and
// TLS (--ssl_cert, --ssl_key) with real clients: ws with perMessageDeflate
// on and off, @anycable/core over a compressed connection and over wss://,
// and the REST API over https, with a CA made by openssl for the test.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import https from 'node:https'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { createCable } from '@anycable/core'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'

let plain, secure, dir, caPem

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cablehub-tls-'))
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=Cablehub JS Test CA', '-days', '2')
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=127.0.0.1')
  openssl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf')
  caPem = readFileSync(path.join(dir, 'ca.crt'))
  const common = ['--secret', SECRET, '--noauth', '--public_streams', '--enable_ws_compression', '--max_message_size', '65536']
  plain = await startServer(common)
  secure = await startServer([...common, '--ssl_cert', path.join(dir, 'tls.crt'), '--ssl_key', path.join(dir, 'tls.key')])
})
after(async () => {
  await plain?.stop()
  await secure?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const identifier = stream => JSON.stringify({ channel: '$pubsub', stream_name: stream })

// open connects ws with options and collects its messages and close.
function open(url, options) {
  const ws = new WebSocket(url, 'actioncable-v1-ext-json', options)
  const conn = { ws, messages: [], closed: null }
  ws.on('message', data => conn.messages.push(JSON.parse(data.toString())))
  ws.on('close', (code, reason) => { conn.closed = { code, reason: reason.toString() } })
  conn.ready = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  return conn
}

async function subscribe(conn, stream) {
  conn.ws.send(JSON.stringify({ command: 'subscribe', identifier: identifier(stream) }))
  await waitFor('confirmation of ' + stream, () =>
    conn.messages.some(m => m.type === 'confirm_subscription' && m.identifier === identifier(stream)))
}

const dataOf = (conn, stream) => conn.messages.filter(m => m.identifier === identifier(stream) && m.message !== undefined).map(m => m.message)

test('ws with perMessageDeflate gets compressed broadcasts, large and small, in order; without it, plain ones', async () => {
  const z = open(`ws://${plain.addr}/cable`, { perMessageDeflate: { threshold: 0 } })
  const p = open(`ws://${plain.addr}/cable`, { perMessageDeflate: false })
  try {
    await Promise.all([z.ready, p.ready])
    assert.equal(z.ws.extensions, 'permessage-deflate')
    assert.equal(p.ws.extensions, '')
    // The subscribe command itself goes compressed (threshold 0).
    await subscribe(z, 'zip')
    await subscribe(p, 'zip')
    const before = [z.ws._socket.bytesRead, p.ws._socket.bytesRead]
    const sent = []
    for (let i = 0; i < 200; i++) {
      const body = i % 2 ? { n: i } : { n: i, text: 'compressible '.repeat(i * 5) }
      sent.push(body)
      await publish(plain, API_TOKEN, { stream: 'zip', data: JSON.stringify(body) })
    }
    await waitFor('200 messages each', () => dataOf(z, 'zip').length >= 200 && dataOf(p, 'zip').length >= 200)
    assert.deepEqual(dataOf(z, 'zip'), sent)
    assert.deepEqual(dataOf(p, 'zip'), sent)
    const zRead = z.ws._socket.bytesRead - before[0]
    const pRead = p.ws._socket.bytesRead - before[1]
    assert.ok(zRead * 5 < pRead, `compressed client read ${zRead} bytes, plain one ${pRead}`)
  } finally {
    z.ws.close()
    p.ws.close()
  }
})

test('a compressed client message inflating past --max_message_size closes with 1009', async () => {
  const z = open(`ws://${plain.addr}/cable`, { perMessageDeflate: { threshold: 0 } })
  await z.ready
  z.ws.send(JSON.stringify({ command: 'message', identifier: identifier('x'), data: 'a'.repeat(1 << 20) }))
  await waitFor('the close', () => z.closed !== null)
  assert.equal(z.closed.code, 1009)
  // The server goes on serving others.
  const other = open(`ws://${plain.addr}/cable`)
  try {
    await other.ready
    await subscribe(other, 'after-bomb')
  } finally {
    other.ws.close()
  }
})

// DeflateWS is ws with compression offered and the test CA trusted.
class DeflateWS extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { perMessageDeflate: true, ca: caPem })
  }
}

async function cableRoundTrip(server, scheme, stream, publishFn) {
  const cable = createCable(`${scheme}://${server.addr}/cable`, {
    websocketImplementation: DeflateWS, protocol: 'actioncable-v1-ext-json', logLevel: 'error'
  })
  try {
    const channel = cable.streamFrom(stream)
    const got = []
    channel.on('message', msg => got.push(msg))
    await channel.ensureSubscribed()
    const big = { text: 'hello '.repeat(2000) }
    await publishFn({ stream, data: JSON.stringify(big) })
    await publishFn({ stream, data: JSON.stringify({ small: true }) })
    await waitFor('2 messages', () => got.length >= 2)
    assert.deepEqual(got, [big, { small: true }])
  } finally {
    cable.disconnect()
  }
}

test('@anycable/core over a compressed connection', async () => {
  await cableRoundTrip(plain, 'ws', 'core-zip', body => publish(plain, API_TOKEN, body))
})

// httpsPublish publishes over the REST API on the TLS port.
function httpsPublish(server, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(`https://${server.addr}/api/publish`, {
      method: 'POST', ca: caPem,
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_TOKEN}` }
    }, res => {
      res.resume()
      res.on('end', () => res.statusCode === 201 ? resolve() : reject(new Error(`publish over https: ${res.statusCode}`)))
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

test('@anycable/core over wss:// (compressed), publications over https', async () => {
  assert.match(secure.logs(), /clients connect to wss:\/\//)
  await cableRoundTrip(secure, 'wss', 'core-tls', body => httpsPublish(secure, body))
})

test('ws over wss:// with and without compression; a client that does not trust the CA is refused', async () => {
  for (const perMessageDeflate of [true, false]) {
    const c = open(`wss://${secure.addr}/cable`, { ca: caPem, perMessageDeflate })
    try {
      await c.ready
      assert.equal(c.ws.extensions, perMessageDeflate ? 'permessage-deflate' : '')
      await subscribe(c, 'tls-ws')
    } finally {
      c.ws.close()
    }
  }
  const untrusting = open(`wss://${secure.addr}/cable`)
  await assert.rejects(untrusting.ready, /self-signed|unable to verify|certificate/)
})
