// The two RPC back ends of rpc_apps.test.js, run as real processes: the
// @anycable/serverless-js application over HTTP RPC (e2e/rpcapp) and the
// Ruby gRPC application (e2e/rpcapp_ruby, on Debian's ruby-grpc). Both
// serve the same ChatChannel (see their headers) and learn where Cablehub's
// REST API is from a "cablehub <url> <key>" line on stdin, since they start
// before the Cablehub that calls them.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { hmacHex } from './server.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const rpcAppDir = path.join(here, '..', 'rpcapp')
const rubyServer = path.join(here, '..', 'rpcapp_ruby', 'server.rb')
const RUBY = '/usr/bin/ruby'

// rpcKey is the HTTP RPC bearer token Cablehub derives from --secret.
export function rpcKey(secret) {
  return hmacHex(secret, 'rpc-cable')
}

// npmCI installs e2e/rpcapp's locked dependencies when node_modules is
// missing or older than the lock (npm rewrites node_modules/.package-lock.json
// on every install), as e2e/rpc_http_serverless_test.go does.
function npmCI() {
  const lock = fs.statSync(path.join(rpcAppDir, 'package-lock.json'))
  let installed
  try {
    installed = fs.statSync(path.join(rpcAppDir, 'node_modules', '.package-lock.json'))
  } catch {}
  if (installed && installed.mtimeMs >= lock.mtimeMs) return
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: rpcAppDir, stdio: 'inherit' })
}

// rubyMissing says why the Ruby back end cannot run here, or '' when it can.
export function rubyMissing() {
  try {
    execFileSync(RUBY, ['-e', 'require "grpc"; require "google/protobuf"'], { stdio: 'pipe' })
    return ''
  } catch (err) {
    return `${RUBY} with ruby-grpc and ruby-google-protobuf is needed (apt-get install ruby ruby-grpc ruby-google-protobuf): ${err.message}`
  }
}

// startPeer spawns a back end and resolves once a stdout line matches
// ready, with what that match captured. Its output is kept for failures.
function startPeer(name, cmd, args, opts, ready) {
  const proc = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters = []
  const check = () => {
    for (const w of [...waiters]) {
      const m = stdout.match(w.re)
      if (m) {
        waiters.splice(waiters.indexOf(w), 1)
        clearTimeout(w.timer)
        w.resolve(m)
      }
    }
  }
  proc.stdout.on('data', d => { stdout += d; check() })
  proc.stderr.on('data', d => { stderr += d })
  // A write after the process died fails in waitLine's timeout, with the logs.
  proc.stdin.on('error', () => {})
  const peer = {
    name,
    stdin: proc.stdin,
    logs: () => `${name} stdout:\n${stdout}\n${name} stderr:\n${stderr}`,
    // waitLine resolves with the match of re in stdout, within ms.
    waitLine(re, ms = 30000) {
      return new Promise((resolve, reject) => {
        const w = { re, resolve }
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1)
          reject(new Error(`the ${name} printed no line matching ${re} within ${ms} ms\n${peer.logs()}`))
        }, ms)
        waiters.push(w)
        check()
      })
    },
    stop: () => new Promise(done => {
      if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return done()
      proc.once('exit', done)
      proc.kill('SIGTERM')
    })
  }
  const ended = note => {
    stderr += note
    for (const w of waiters.splice(0)) {
      clearTimeout(w.timer)
      w.resolve(null)
    }
  }
  proc.once('exit', code => ended(code ? `\n(exited ${code})` : ''))
  proc.once('error', err => ended(`\n(${err.message})`))
  return peer.waitLine(ready).then(m => {
    if (!m) throw new Error(`the ${name} exited during startup\n${peer.logs()}`)
    return { peer, match: m }
  })
}

// configure tells a back end where Cablehub's REST API is and waits for its
// acknowledgement.
async function configure(peer, ack, apiURL, apiKey) {
  peer.stdin.write(`cablehub ${apiURL} ${apiKey}\n`)
  await peer.waitLine(new RegExp(`^${ack} ${apiURL.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'), 10000)
}

// startServerlessApp runs the serverless-js application expecting the
// given HTTP RPC key; rpcHost is what --rpc_host takes.
export async function startServerlessApp(key) {
  npmCI()
  const env = { ...process.env, RPC_SECRET: key }
  delete env.PORT
  const { peer, match } = await startPeer('serverless-js app', 'node', ['--import', './register.mjs', 'server.mjs'],
    { cwd: rpcAppDir, env }, /^listening (\d+)$/m)
  return {
    ...peer,
    rpcHost: `http://127.0.0.1:${match[1]}/_anycable`,
    configure: (url, apiKey) => configure(peer, 'configured', url, apiKey)
  }
}

// startRubyApp runs the Ruby gRPC application; rpcHost is its host:port.
export async function startRubyApp() {
  const { peer, match } = await startPeer('Ruby RPC app', RUBY, [rubyServer], {}, /^LISTENING (\d+)$/m)
  return {
    ...peer,
    rpcHost: `127.0.0.1:${match[1]}`,
    configure: (url, apiKey) => configure(peer, 'CONFIGURED', url, apiKey)
  }
}
