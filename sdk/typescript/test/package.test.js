// The package as a user installs it, in a project outside the repository:
// from the tarball pack.sh makes (make sdk-package-typescript), and from
// the folder of a fresh clone (no node_modules) with install-links; then
// the installed package talks to the built server, and its type
// declarations compile against a program using every call.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SECRET, startServer } from './helpers.js'

const sdk = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const root = path.join(sdk, '..', '..')

let server
let dir

before(async () => {
  server = await startServer()
  dir = mkdtempSync(path.join(tmpdir(), 'cablehub-ts-package-'))
})

after(async () => {
  await server?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

function run(cmd, args, cwd, env = {}) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 120000 })
}

// project makes an empty npm project in dir/name, with `npmrc` as its
// .npmrc.
function project(name, npmrc = '') {
  const p = path.join(dir, name)
  run('mkdir', ['-p', p], dir)
  writeFileSync(path.join(p, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }))
  if (npmrc) writeFileSync(path.join(p, '.npmrc'), npmrc)
  return p
}

// The program a user would write: every call once, its results printed.
const USE = `
import { createClient, InvalidArgumentError } from '@cablehub/sdk'
setTimeout(() => { console.error('timed out'); process.exit(2) }, 10000).unref()
const stream = process.env.STREAM
const c = createClient({ address: process.env.ADDRESS, secret: process.env.SECRET })
const w = c.watch(stream)
await w.ready
await c.publish(stream, '{"n":1}', { idempotencyKey: 'k' })
await c.publish(stream, '{"n":1}', { idempotencyKey: 'k' })
await c.publishBatch([{ stream, data: '{"n":2}' }])
const it = w[Symbol.asyncIterator]()
const watched = [(await it.next()).value.data, (await it.next()).value.data]
w.close()
let invalid
try { await c.publish('', 'x') } catch (err) { invalid = err instanceof InvalidArgumentError }
const history = await c.history(stream)
console.log(JSON.stringify({ watched, invalid, history: history.publications.map(p => p.data) }))
c.close()
`

// check runs the program in project `app` on a stream of its own and
// asserts what it printed.
function check(app) {
  writeFileSync(path.join(app, 'use.mjs'), USE)
  const out = run('node', ['use.mjs'], app, { ADDRESS: server.grpcAddr, SECRET, STREAM: path.basename(app) })
  // The repeated key was a no-op.
  assert.deepEqual(JSON.parse(out), { watched: ['{"n":1}', '{"n":2}'], invalid: true, history: ['{"n":1}', '{"n":2}'] })
}

const npmInstall = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error']

test('npm install <tarball>: the package works and carries tools/sdk-version\'s version', async () => {
  const tarball = run(path.join(sdk, 'pack.sh'), [path.join(dir, 'dist')], sdk).trim()
  const version = run(path.join(root, 'tools', 'sdk-version'), [], root).trim()
  assert.equal(path.basename(tarball), `cablehub-sdk-${version}.tgz`)
  const app = project('from-tarball')
  run('npm', [...npmInstall, tarball], app)
  const installed = JSON.parse(readFileSync(path.join(app, 'node_modules', '@cablehub', 'sdk', 'package.json'), 'utf8'))
  assert.equal(installed.version, version)
  check(app)

  // The declarations: a TypeScript program using every call compiles.
  writeFileSync(path.join(app, 'use.ts'), `
import { createClient, CablehubError, AuthError, UnavailableError, InvalidArgumentError, TimeoutError,
  PositionError, ClosedError, Code, apiToken, type StreamPublication } from '@cablehub/sdk'
const c = createClient({ address: 'http://127.0.0.1:8080', secret: 's', timeoutMs: 1000, retries: 2 })
async function main(): Promise<void> {
  await c.publish('s', { a: 1 }, { excludeSocket: 'sid', transient: false, broadcastType: 't', idempotencyKey: 'k' })
  await c.publishBatch([{ stream: 's', data: '1', idempotencyKey: 'k2' }])
  const p = await c.presence('s'); const n: number = p.total + p.records.length
  const st = await c.presenceStats('s'); const u: number = st.users + st.sessions
  const h = await c.history('s', { limit: 10, epoch: 'e', since: 3 }); const o: number = h.offset + h.publications[0].offset
  const ls = await c.listStreams({ prefix: 'a', limit: 5 }); const names: string[] = ls.streams.map(s => s.name).concat(ls.unavailableNodes)
  const info = await c.info(); const up: number = info.nodes[0].uptimeSeconds
  const counted: number = info.nodes[0].publishedTotal + info.nodes[0].deliveriesTotal + info.nodes[0].rpcCallsTotal
  const w = c.watch('s', { epoch: h.epoch, since: h.offset, resume: true, signal: new AbortController().signal })
  await w.ready
  for await (const pub of w) { const x: StreamPublication = pub; const off: number = x.offset; if (off > 0) break }
  const pos: { epoch: string, offset: number | undefined } = w.position
  w.close()
  await c.disconnect('id', { reconnect: true })
  try { await c.info() } catch (err) {
    if (err instanceof PositionError) { const e: string | undefined = err.epoch; const f: number | undefined = err.offset }
    if (err instanceof CablehubError) { const code: number = err.code; const name: string = err.codeName; if (code === Code.Unavailable) {} }
    const all = [AuthError, UnavailableError, InvalidArgumentError, TimeoutError, ClosedError]
  }
  c.close()
  const t: string = apiToken('s')
  void n, u, o, names, up, counted, pos, t
}
void main
`)
  run(process.execPath, [path.join(sdk, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict',
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--typeRoots', path.join(sdk, 'node_modules', '@types'), '--types', 'node', 'use.ts'], app)
})

test('npm install <folder of a fresh clone>, plainly: the package works', async () => {
  // The folder as a clone has it: no node_modules. npm links it and
  // installs none of its dependencies; its postinstall installs them in
  // the folder, from where Node resolves the link's imports.
  const clone = path.join(dir, 'plain-clone', 'sdk', 'typescript')
  for (const f of ['package.json', 'package-lock.json', 'README.md', 'src', 'scripts']) {
    cpSync(path.join(sdk, f), path.join(clone, f), { recursive: true })
  }
  const app = project('from-folder-plain', '')
  run('npm', [...npmInstall, clone], app)
  assert.ok(run('ls', ['-l', path.join('node_modules', '@cablehub')], app).includes('->'))
  check(app)
})

test('npm install <folder of a fresh clone> with install-links: the package works', async () => {
  // The folder as a clone has it: no node_modules.
  const clone = path.join(dir, 'clone', 'sdk', 'typescript')
  for (const f of ['package.json', 'package-lock.json', 'README.md', 'src', 'scripts']) {
    cpSync(path.join(sdk, f), path.join(clone, f), { recursive: true })
  }
  const app = project('from-folder', 'install-links=true\n')
  run('npm', [...npmInstall, clone], app)
  // A copy, not a link into the clone: the dependencies sit beside it.
  assert.ok(!run('ls', ['-l', path.join('node_modules', '@cablehub')], app).includes('->'))
  check(app)
  // npm ci from the project's lock file keeps it a copy (the .npmrc).
  rmSync(path.join(app, 'node_modules'), { recursive: true })
  run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], app)
  assert.ok(!run('ls', ['-l', path.join('node_modules', '@cablehub')], app).includes('->'))
})
