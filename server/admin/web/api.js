// The console's calls: its own endpoints under the path the page is served
// at (session, config) and the REST API, both with the session cookie and
// the X-Cablehub-Console header (the server ignores the cookie without it).

// ApiError is an error answer: the HTTP status and the {code, message} body.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

// SignedOut is thrown after a 401: the handler given to configure() has
// already been told, so callers only stop what they were doing.
export class SignedOut extends Error {
  constructor() {
    super('signed out')
  }
}

const HEADERS = { 'X-Cablehub-Console': '1' }

// consolePath is where the page is served (/admin for /admin/ or
// /admin/index.html); the console's own endpoints are under it.
export const consolePath = location.pathname.replace(/\/(index\.html)?$/, '')

let apiPath = '/api'
let onSignedOut = () => {}

export function configure({ signedOut }) {
  onSignedOut = signedOut
}

export function setApiPath(path) {
  apiPath = String(path || '/api').replace(/\/$/, '')
}

function streamPath(stream) {
  return encodeURIComponent(stream)
}

async function errorOf(res) {
  let message = `${res.status} ${res.statusText || 'error'}`.trim()
  let code
  try {
    const body = await res.json()
    if (body && typeof body.message === 'string') message = body.message
    if (body && body.code !== undefined) code = body.code
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message)
}

// request answers the parsed JSON body (null for an empty one). A 401 ends
// the session unless quiet401 is set; other errors throw ApiError.
async function request(url, { method = 'GET', body, signal, quiet401 = false, raw = false } = {}) {
  const headers = { ...HEADERS }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(url, { method, headers, body, signal, credentials: 'same-origin', cache: 'no-store' })
  if (res.status === 401 && !quiet401) {
    onSignedOut()
    throw new SignedOut()
  }
  if (raw) return res
  if (!res.ok) throw await errorOf(res)
  const text = await res.text()
  return text ? JSON.parse(text) : null
}

// session answers {node_id, api_path, expires_at}, or null when signed out.
export async function session() {
  const res = await request(`${consolePath}/session`, { quiet401: true, raw: true })
  if (res.status === 401) return null
  if (!res.ok) throw await errorOf(res)
  return res.json()
}

// signIn resolves when the password was taken; a refusal throws ApiError
// with the server's message (wrong password, too many attempts).
export async function signIn(password) {
  await request(`${consolePath}/session`, {
    method: 'POST',
    body: JSON.stringify({ password }),
    quiet401: true
  })
}

export async function signOut() {
  await request(`${consolePath}/session`, { method: 'DELETE', quiet401: true })
}

export function config() {
  return request(`${consolePath}/config`)
}

export function info() {
  return request(`${apiPath}/info`)
}

export function streams(prefix, limit = 200) {
  const q = new URLSearchParams({ limit: String(limit) })
  if (prefix) q.set('prefix', prefix)
  return request(`${apiPath}/streams?${q}`)
}

export function presenceStats(stream) {
  return request(`${apiPath}/presence/${streamPath(stream)}/stats`)
}

export function presenceUsers(stream) {
  return request(`${apiPath}/presence/${streamPath(stream)}/users`)
}

export function history(stream, limit = 20) {
  return request(`${apiPath}/history/${streamPath(stream)}?limit=${limit}`)
}

// publish sends body (a JSON text: one publication or an array) as is.
export function publish(body) {
  return request(`${apiPath}/publish`, { method: 'POST', body })
}

export function disconnect(identifier, reconnect) {
  return request(`${apiPath}/disconnect`, {
    method: 'POST',
    body: JSON.stringify({ identifier, reconnect: Boolean(reconnect) })
  })
}

// watch reads {api}/watch/{stream}: onLive once the answer is 200 (the
// watch is live then), onPublication for each line. It resolves when the
// server ends the watch, throws ApiError for a refusal or an error line,
// and an AbortError when signal aborts.
export async function watch(stream, { signal, onLive, onPublication }) {
  const res = await request(`${apiPath}/watch/${streamPath(stream)}`, { signal, raw: true })
  if (!res.ok) throw await errorOf(res)
  onLive()
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    buffered += decoder.decode(value, { stream: true })
    let nl
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim()
      buffered = buffered.slice(nl + 1)
      if (!line) continue
      const msg = JSON.parse(line)
      if (msg.error) throw new ApiError(200, msg.error.code, msg.error.message)
      onPublication(msg)
    }
  }
}
