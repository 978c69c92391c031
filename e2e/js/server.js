// Starts the built cablehub binary for a test file and talks to its API.
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
const binary = process.env.CABLEHUB_BIN || path.join(here, '..', '..', 'bin', 'cablehub')

// startServer runs cablehub on 127.0.0.1 with a random port and resolves
// once it has logged that it is ready.
export function startServer(args) {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANYCABLE_') && k !== 'PORT'))
    const proc = spawn(binary, ['--host', '127.0.0.1', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let logs = ''
    const timer = setTimeout(() => reject(new Error('cablehub did not start:\n' + logs)), 20000)
    const onData = chunk => {
      logs += chunk
      const m = logs.match(/Handle health requests at https?:\/\/([^/\s"]+)\//)
      if (m) {
        clearTimeout(timer)
        resolve({
          proc,
          addr: m[1],
          logs: () => logs,
          stop: () => new Promise(done => {
            if (proc.exitCode !== null) return done()
            proc.once('exit', done)
            proc.kill('SIGTERM')
          })
        })
      }
    }
    proc.stdout.on('data', onData)
    proc.stderr.on('data', onData)
    proc.once('exit', code => {
      clearTimeout(timer)
      reject(new Error(`cablehub exited (${code}):\n${logs}`))
    })
  })
}

// SECRET is the --secret the test servers run with; API_TOKEN the API
// bearer token AnyCable derives from it.
export const SECRET = 'test-secret'

export function hmacHex(secret, text) {
  return createHmac('sha256', secret).update(text).digest('hex')
}

// sign makes a signed stream name the way Rails and AnyCable do.
export function sign(name, secret) {
  const payload = Buffer.from(JSON.stringify(name)).toString('base64')
  return `${payload}--${hmacHex(secret, payload)}`
}

function base64url(s) {
  return Buffer.from(s).toString('base64url')
}

// jwt builds an HS256 token with the given claims.
export function jwt(secret, claims) {
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const body = base64url(JSON.stringify(claims))
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

export async function publish(server, token, body) {
  const res = await fetch(`http://${server.addr}/api/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(body)
  })
  if (res.status !== 201) throw new Error(`publish: ${res.status} ${await res.text()}`)
}

// waitFor polls cond until it is true or the deadline passes.
export async function waitFor(what, cond, ms = 5000) {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await new Promise(r => setTimeout(r, 10))
  }
}

export const API_TOKEN = hmacHex(SECRET, 'api-cable')
