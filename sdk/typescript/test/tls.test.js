// The client over TLS: a server with --ssl_cert and --ssl_key (a CA and a
// certificate made with openssl for the test), reached at https:// with
// the CA given as `ca`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CablehubError, createClient } from '../src/index.js'
import { SECRET, startServer, take, within } from './helpers.js'

let server, dir, ca
const clients = []

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cablehub-ts-tls-'))
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=TS SDK Test CA', '-days', '2')
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  openssl('req', ...ec, '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=127.0.0.1')
  openssl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'tls.crt', '-days', '2', '-extfile', 'ext.cnf')
  ca = readFileSync(path.join(dir, 'ca.crt'))
  server = await startServer(['--ssl_cert', path.join(dir, 'tls.crt'), '--ssl_key', path.join(dir, 'tls.key')])
})

after(async () => {
  for (const c of clients) c.close()
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
})

function client(options) {
  const c = createClient({ secret: SECRET, timeoutMs: 5000, ...options })
  clients.push(c)
  return c
}

test('https:// with the CA as `ca` publishes and reads presence', async () => {
  const c = client({ address: `https://${server.grpcAddr}`, ca })
  await c.publish('ts-tls', JSON.stringify({ over: 'tls' }))
  assert.equal((await c.presence('ts-tls')).total, 0)
})

test('https:// watch: live publications over TLS', async () => {
  const c = client({ address: `https://${server.grpcAddr}`, ca })
  const w = c.watch('ts-tls-watch')
  try {
    await within('ready', w.ready)
    await c.publish('ts-tls-watch', '"secure"')
    const [p] = await take(w[Symbol.asyncIterator](), 1)
    assert.deepEqual([p.offset, p.data], [1, '"secure"'])
  } finally {
    w.close()
  }
})

test('a client that does not trust the CA, or speaks cleartext, fails', async () => {
  await assert.rejects(client({ url: `https://${server.grpcAddr}`, timeoutMs: 2000 }).publish('ts-tls', 'x'), err => {
    assert.ok(err instanceof CablehubError, `not a CablehubError: ${err}`)
    assert.match(err.message, /certificate/)
    return true
  })
  await assert.rejects(client({ url: `http://${server.grpcAddr}`, timeoutMs: 2000 }).publish('ts-tls', 'x'), err => {
    assert.ok(err instanceof CablehubError, `not a CablehubError: ${err}`)
    assert.ok(err.code > 0, `code ${err.code}`)
    return true
  })
})
