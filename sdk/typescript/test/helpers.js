// Test helpers: the built cablehub binary on a random port, and a raw
// WebSocket client that records every frame it receives.
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import WebSocket from 'ws'

const here = path.dirname(fileURLToPath(import.meta.url))
const binary = process.env.CABLEHUB_BIN || path.join(here, '..', '..', '..', 'bin', 'cablehub')

/** SECRET is the --secret every test server runs with. */
export const SECRET = 'sdk-test-secret'

/**
 * startServer runs cablehub on 127.0.0.1:0 with --secret SECRET --public
 * plus `args`, and resolves once it logged its last startup line (health),
 * with the gRPC address, the WebSocket URL and the broker's epoch it logged.
 */
export function startServer(args = []) {
  return new Promise((resolve, reject) => {
    // ANYCABLE_* variables configure the server too; keep the test's flags
    // the only configuration.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANYCABLE_') && k !== 'PORT'))
    const argv = ['--host', '127.0.0.1', '--port', '0', '--secret', SECRET, '--public', ...args]
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
      if (!grpc || !ws || !epoch) return reject(new Error('no gRPC address, WebSocket URL or epoch in the log:\n' + logs))
      resolve({
        grpcAddr: grpc[1],
        wsUrl: ws[1],
        epoch: epoch[1],
        logs: () => logs,
        // stop asks for a graceful shutdown and kills the server if it
        // has not exited within 10 s.
        stop: () => new Promise(done => {
          if (proc.exitCode !== null || proc.signalCode !== null) return done()
          const force = setTimeout(() => proc.kill('SIGKILL'), 10000)
          proc.once('exit', () => { clearTimeout(force); done() })
          proc.kill('SIGTERM')
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
