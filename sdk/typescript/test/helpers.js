// Test helpers: the built cablehub binary on a random port, and a raw
// WebSocket client that records every frame it receives.
import { execFileSync, spawn } from 'node:child_process'
import net from 'node:net'
import { createHmac } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import WebSocket from 'ws'

const here = path.dirname(fileURLToPath(import.meta.url))
const binary = process.env.CABLEHUB_BIN || path.join(here, '..', '..', '..', 'bin', 'cablehub')

/** SECRET is the --secret every test server runs with. */
export const SECRET = 'sdk-test-secret'

/** binaryVersion is what the server binary's --version prints. */
export function binaryVersion() {
  return execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim()
}

/**
 * freePort finds a TCP port free on 127.0.0.1 now, for a server that has
 * to come back on the same address after a restart.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * startServer runs cablehub on 127.0.0.1 (port `port`, a random one by
 * default) with --secret SECRET --public plus `args`, and resolves once it
 * logged its last startup line (health), with the gRPC address, the
 * WebSocket URL and the broker's epoch it logged. stop() ends it with
 * SIGTERM, kill() with SIGKILL.
 */
export function startServer(args = [], { port = 0 } = {}) {
  return new Promise((resolve, reject) => {
    // ANYCABLE_* variables configure the server too; keep the test's flags
    // the only configuration.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANYCABLE_') && k !== 'PORT'))
    const argv = ['--host', '127.0.0.1', '--port', String(port), '--secret', SECRET, '--public', ...args]
    const proc = spawn(binary, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    // However this test process ends, the server must not outlive it.
    const reap = () => proc.kill('SIGKILL')
    process.once('exit', reap)
    proc.once('exit', () => process.removeListener('exit', reap))
    let logs = ''
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('cablehub did not start:\n' + logs)) }, 20000)
    const onData = chunk => {
      logs += chunk
      if (!/Handle health requests at https?:\/\//.test(logs)) return
      clearTimeout(timer)
      const grpc = logs.match(/Handle gRPC API requests at (\S+) /)
      const ws = logs.match(/clients connect to (wss?:\/\/\S+?)\)/)
      const epoch = logs.match(/broker \(epoch: ([^,]+),/)
      if (!grpc || !ws) return reject(new Error('no gRPC address or WebSocket URL in the log:\n' + logs))
      resolve({
        grpcAddr: grpc[1],
        wsUrl: ws[1],
        // The memory broker's epoch, that of all its streams (the Redis
        // broker logs none: its streams have their own).
        epoch: epoch?.[1],
        logs: () => logs,
        // stop asks for a graceful shutdown and kills the server if it
        // has not exited within 10 s.
        stop: () => new Promise(done => {
          if (proc.exitCode !== null || proc.signalCode !== null) return done()
          const force = setTimeout(() => proc.kill('SIGKILL'), 10000)
          proc.once('exit', () => { clearTimeout(force); done() })
          proc.kill('SIGTERM')
        }),
        // kill ends the server at once, as a crash would.
        kill: () => new Promise(done => {
          if (proc.exitCode !== null || proc.signalCode !== null) return done()
          proc.once('exit', () => done())
          proc.kill('SIGKILL')
        })
      })
    }
    proc.stdout.on('data', onData)
    proc.stderr.on('data', onData)
    proc.once('exit', code => { clearTimeout(timer); reject(new Error(`cablehub exited (${code}):\n${logs}`)) })
  })
}

function base64url(s) {
  return Buffer.from(s).toString('base64url')
}

/** jwt builds an HS256 token with the given claims, signed with `secret`. */
export function jwt(secret, claims) {
  const signed = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`
}

/** pubsub is the identifier of a public stream subscription. */
export function pubsub(stream) {
  return JSON.stringify({ channel: '$pubsub', stream_name: stream })
}

/**
 * Cable is a WebSocket client (actioncable-v1-json unless told). Frames are
 * queued as received text (pings dropped); nextRaw() takes them in order,
 * next() parsed.
 */
export class Cable {
  static async connect(url, protocol = 'actioncable-v1-json') {
    const cable = new Cable(new WebSocket(url, protocol))
    await new Promise((resolve, reject) => {
      cable.ws.once('open', resolve)
      cable.ws.once('error', reject)
    })
    const welcome = await cable.next()
    if (welcome.type !== 'welcome') throw new Error('expected welcome, got ' + JSON.stringify(welcome))
    cable.welcome = welcome
    return cable
  }

  constructor(ws) {
    this.ws = ws
    this.frames = []
    this.wake = null
    this.closed = new Promise(resolve => ws.once('close', code => resolve(code)))
    ws.on('message', data => {
      const text = data.toString()
      if (JSON.parse(text).type === 'ping') return
      this.frames.push(text)
      this.wake?.()
    })
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj))
  }

  /** nextRaw resolves with the next frame's text, or rejects after `ms`. */
  async nextRaw(ms = 5000) {
    if (this.frames.length === 0) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => { this.wake = null; reject(new Error(`no frame within ${ms}ms`)) }, ms)
        this.wake = () => { this.wake = null; clearTimeout(timer); resolve() }
      })
    }
    return this.frames.shift()
  }

  async next(ms) {
    return JSON.parse(await this.nextRaw(ms))
  }

  /** subscribe subscribes to a public stream and waits for the confirmation. */
  async subscribe(stream) {
    const identifier = pubsub(stream)
    this.send({ command: 'subscribe', identifier })
    const confirm = await this.next()
    if (confirm.type !== 'confirm_subscription') throw new Error('not confirmed: ' + JSON.stringify(confirm))
    return identifier
  }

  close() {
    this.ws.close()
  }
}

/** waitFor polls cond until it returns true, failing after `ms`. */
export async function waitFor(what, cond, ms = 5000) {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/**
 * within resolves with what `promise` resolves with, or rejects naming
 * `what` after `ms`.
 */
export function within(what, promise, ms = 5000) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * take reads the next `n` publications of a watch's iterator, each within
 * `ms`.
 */
export async function take(iterator, n, ms = 5000) {
  const got = []
  for (let i = 0; i < n; i++) {
    const r = await within(`publication ${i + 1} of ${n}`, iterator.next(), ms)
    if (r.done) throw new Error(`the watch ended after ${got.length} of ${n} publications`)
    got.push(r.value)
  }
  return got
}

/** uniqueName is a stream name no other run shares (servers on one Redis). */
export function uniqueName(prefix) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}
