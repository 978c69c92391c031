// Pusher mode (--pusher_app_*) for pusher.test.js and pusher_api.test.js:
// the server, the official server SDK (`pusher`) pointed at it, and
// pusher-js clients that record what their user sees.
import Pusher from 'pusher-js'
import PusherServer from 'pusher'
import { startServer, SECRET, API_TOKEN, publish, waitFor } from './server.js'

export const APP_ID = 'app-1'
export const KEY = 'key-1'
export const PUSHER_SECRET = 'psecret'

// startPusher starts cablehub in Pusher mode with the memory broker
// (presence), the API secret (/api/publish) and only the HTTP broadcast
// adapter (no shared Redis channel to hear others' broadcasts on), plus
// args, and tells whether its
// Pusher HTTP API (/apps/app-1/*) answers: apiWired is false while the
// runner does not route it (a 404 to a signed request).
export async function startPusher(args = []) {
  const server = await startServer(['--secret', SECRET, '--norpc', '--broker', 'memory', '--broadcast_adapter', 'http',
    '--pusher_app_id', APP_ID, '--pusher_app_key', KEY, '--pusher_secret', PUSHER_SECRET, ...args])
  const [host, port] = server.addr.split(':')
  const sdk = sdkFor(server, PUSHER_SECRET)
  let apiWired = true
  try {
    await sdk.get({ path: '/channels' })
  } catch (err) {
    if (err.status === 404) apiWired = false
  }
  const env = { server, host, port: Number(port), sdk, apiWired, clients: [], fences: 0 }
  env.stop = async () => {
    for (const c of env.clients) c.pusher.disconnect()
    await server.stop()
  }
  return env
}

// sdkFor is the Pusher server SDK for server's app, signing with secret.
export function sdkFor(server, secret) {
  const [host, port] = server.addr.split(':')
  return new PusherServer({ appId: APP_ID, key: KEY, secret, host, port, useTLS: false })
}

// clientOptions are the pusher-js options for env's server: WebSocket
// only, no stats, channel authorization and user authentication by the
// custom handlers authorize and authenticate ((params) => auth data),
// which default to the app's SDK signing what the client asks for,
// presence channels with presence ({user_id, user_info}), sign-ins as user.
export function clientOptions(env, { presence, user = { id: 'u1' }, authorize, authenticate } = {}) {
  authorize ??= ({ socketId, channelName }) =>
    env.sdk.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? presence : undefined)
  authenticate ??= ({ socketId }) => env.sdk.authenticateUser(socketId, user)
  const handler = fn => (params, cb) => {
    let data
    try {
      data = fn(params)
    } catch (err) {
      return cb(err, null)
    }
    cb(null, data)
  }
  return {
    wsHost: env.host,
    wsPort: env.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    cluster: 'mt1',
    channelAuthorization: { customHandler: handler(authorize) },
    userAuthentication: { customHandler: handler(authenticate) }
  }
}

// connect opens a pusher-js client (see clientOptions) for test t and
// records every frame it receives (frames: {event, channel, data, user_id}
// as pusher-js decoded them), its connection states and pusher:error
// events. It is disconnected after t (or earlier by t itself).
export function connect(t, env, opts) {
  const pusher = new Pusher(KEY, clientOptions(env, opts))
  return record(t, env, pusher)
}

// record watches pusher, a pusher-js client (perhaps Echo's), as connect does.
export function record(t, env, pusher) {
  const c = { pusher, frames: [], states: [], errors: [] }
  pusher.connection.bind('message', m => c.frames.push(m))
  pusher.connection.bind('state_change', s => c.states.push(s.current))
  pusher.connection.bind('error', e => c.errors.push(e))
  c.connected = () => waitFor('pusher-js connected', () => pusher.connection.state === 'connected')
    .then(() => pusher.connection.socket_id)
  // got lists the frames of event (on channel, when given).
  c.got = (event, channel) => c.frames.filter(f => f.event === event && (channel === undefined || f.channel === channel))
  c.subscribe = async name => {
    const ch = pusher.subscribe(name)
    await waitFor(`subscription to ${name}`, () => ch.subscribed || c.got('pusher:subscription_error', name).length > 0)
    if (!ch.subscribed) throw new Error(`subscription to ${name} refused: ${JSON.stringify(c.got('pusher:subscription_error', name))}`)
    return ch
  }
  env.clients.push(c)
  t.after(() => pusher.disconnect())
  return c
}

// publishEvent publishes event with data on channel through /api/publish
// (the stream is the channel), with meta (e.g. exclude_socket) when given.
export function publishEvent(env, channel, event, data, meta) {
  const body = { stream: channel, data: JSON.stringify({ event, data }) }
  if (meta) body.meta = meta
  return publish(env.server, API_TOKEN, body)
}

// fence publishes a marker event on channel and waits until each of
// clients has it: what the server sent them on channel before the marker
// has arrived too, so the absence of a frame can be asserted after it.
export async function fence(env, channel, ...clients) {
  const n = ++env.fences
  await publishEvent(env, channel, 'fence', { n })
  await waitFor(`fence ${n} on ${channel}`,
    () => clients.every(c => c.got('fence', channel).some(f => f.data?.n === n)))
}
