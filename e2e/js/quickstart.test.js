// Runs the README's quick start as a newcomer would: the server command,
// the Node subscriber, then the curl publish and presence snippets in bash
// with the real openssl and curl. The snippets are taken from README.md
// verbatim; only "localhost:8080" is replaced by the test server's address.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServer, waitFor } from './server.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.join(here, '..', '..')
const DOC_ADDR = 'localhost:8080'

// markedBlocks returns the fenced code blocks of a markdown text that follow
// a "<!-- KIND: NAME -->" comment line, by NAME. KIND is "quickstart" for
// what the reader runs and "quickstart-output" for what they should see.
function markedBlocks(text, kind) {
  const blocks = {}
  const re = new RegExp(`^<!-- ${kind}: ([\\w.-]+) -->\\n+\`\`\`[\\w-]*\\n([\\s\\S]*?)\\n\`\`\`$`, 'gm')
  for (const [, name, body] of text.matchAll(re)) {
    assert.equal(blocks[name], undefined, `two ${kind} blocks named ${name}`)
    blocks[name] = body
  }
  return blocks
}

const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8')
const snippets = markedBlocks(readme, 'quickstart')
const outputs = markedBlocks(readme, 'quickstart-output')

// run starts a command and collects what it prints; exited resolves with
// its exit code.
function run(cmd, args, opts) {
  const proc = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
  const out = { stdout: '', stderr: '' }
  proc.stdout.on('data', d => { out.stdout += d })
  proc.stderr.on('data', d => { out.stderr += d })
  const exited = new Promise(resolve => proc.once('exit', code => resolve(code)))
  return { proc, out, exited }
}

// assertShows checks that every line of an expected-output block is a line
// of what the command printed (so the docs show what a reader will see).
function assertShows(printed, expected, what) {
  const lines = printed.split('\n').map(l => l.trimEnd())
  for (const want of expected.split('\n').filter(l => l.trim() !== '')) {
    assert.ok(lines.includes(want.trimEnd()), `${what}: expected the line\n  ${want}\nin:\n${printed}`)
  }
}

let server
let workdir

before(async () => {
  // The server command is run with the built binary in place of `go run`,
  // on a free port.
  const cmd = snippets.server
  assert.ok(cmd, 'README.md has no <!-- quickstart: server --> block')
  const m = cmd.match(/^go run \.\/cmd\/cablehub((?: [\w.=-]+)+)$/)
  assert.ok(m, `the server block is not one plain "go run ./cmd/cablehub ..." line: ${cmd}`)
  const args = m[1].trim().split(' ')
  assert.ok(!args.some(a => /^--?(host|port)\b/.test(a)), 'the server block must not set --host or --port')
  server = await startServer(args)
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'cablehub-quickstart-'))
  // The packages the README installs, from this directory's pinned copy.
  fs.symlinkSync(path.join(here, 'node_modules'), path.join(workdir, 'node_modules'), 'dir')
})

after(async () => {
  if (server) await server.stop()
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true })
})

function withAddr(text) {
  assert.ok(text.includes(DOC_ADDR), `snippet does not mention ${DOC_ADDR}:\n${text}`)
  return text.replaceAll(DOC_ADDR, server.addr)
}

test('README and docs/quickstart.md show the same quick start', () => {
  const doc = fs.readFileSync(path.join(repo, 'docs', 'quickstart.md'), 'utf8')
  assert.deepEqual(markedBlocks(doc, 'quickstart'), snippets)
  assert.deepEqual(markedBlocks(doc, 'quickstart-output'), outputs)
  assert.deepEqual(Object.keys(snippets).sort(), ['install', 'presence.sh', 'publish.sh', 'server', 'subscribe.mjs'])
})

test('the npm install line pins the versions e2e/js tests with', () => {
  const pinned = JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8')).dependencies
  assert.equal(snippets.install, `npm install @anycable/core@${pinned['@anycable/core']} ws@${pinned.ws}`)
})

test('quick start: subscribe from node, publish and read presence with curl', async t => {
  t.diagnostic(`node ${process.version}`)
  fs.writeFileSync(path.join(workdir, 'subscribe.mjs'), withAddr(snippets['subscribe.mjs']))
  // process.execPath: the node running this suite (node 20 in CI).
  const sub = run(process.execPath, ['subscribe.mjs'], { cwd: workdir })
  try {
    const ready = outputs['subscribe.mjs'].split('\n')[0]
    await waitFor('the subscriber to say it is ready', () => sub.out.stdout.includes(ready) || sub.proc.exitCode !== null, 10000)
    assert.equal(sub.proc.exitCode, null, `subscribe.mjs exited:\n${sub.out.stdout}${sub.out.stderr}`)

    // The token must be required, so that a 201 below proves the recipe's
    // token is the server's.
    const noToken = await fetch(`http://${server.addr}/api/publish`, { method: 'POST', body: '{"stream":"chat","data":"x"}' })
    assert.equal(noToken.status, 401)

    // Both snippets in one bash, as in one terminal (presence.sh uses the
    // TOKEN publish.sh set); a marker line separates their outputs.
    const marker = '<<<quickstart: presence.sh>>>'
    const script = `${withAddr(snippets['publish.sh'])}\nprintf '\\n%s\\n' '${marker}'\n${withAddr(snippets['presence.sh'])}\n`
    const sh = run('bash', ['-c', script], { cwd: workdir })
    const code = await sh.exited
    assert.equal(code, 0, `bash exited ${code}:\n${sh.out.stdout}${sh.out.stderr}`)
    assert.equal(sh.out.stderr, '')
    const [published, presence] = sh.out.stdout.split(`\n${marker}\n`)
    assertShows(published, outputs['publish.sh'], 'publish.sh')
    assertShows(presence, outputs['presence.sh'], 'presence.sh')

    const want = outputs['subscribe.mjs']
    const last = want.split('\n').filter(l => l.trim()).at(-1)
    await waitFor('the published message at the subscriber', () => sub.out.stdout.includes(last), 10000)
    assertShows(sub.out.stdout, want, 'subscribe.mjs')
    assert.equal(sub.out.stderr, '')
  } finally {
    sub.proc.kill('SIGINT')
    await sub.exited
  }
})
