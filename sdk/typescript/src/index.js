// Cablehub server API client: a thin layer over the stubs generated from
// proto/cablehub/v1/cable.proto (src/gen), talking gRPC over HTTP/2.
import { createHmac } from 'node:crypto'
import { create, toJson } from '@bufbuild/protobuf'
import { ValueSchema } from '@bufbuild/protobuf/wkt'
import { ConnectError, createClient as createConnectClient } from '@connectrpc/connect'
import { Http2SessionManager, createGrpcTransport } from '@connectrpc/connect-node'
import { CableService, PublishRequestSchema } from './gen/cablehub/v1/cable_pb.js'

// Connect's Code enum has gRPC's numbers (Code.Unauthenticated === 16), to
// compare CablehubError.code with.
export { Code } from '@connectrpc/connect'

/** Deadline of every call unless createClient is given timeoutMs. */
export const DEFAULT_TIMEOUT_MS = 5000

/**
 * CablehubError is the one error every client method rejects with: the
 * server's answer, a missed deadline (DEADLINE_EXCEEDED) or an unreachable
 * server (UNAVAILABLE). `code` is the numeric gRPC status code, `codeName`
 * its upper-case name (e.g. "UNAUTHENTICATED"), `message` the status
 * message as the server sent it; `cause` holds the underlying ConnectError.
 */
export class CablehubError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = 'CablehubError'
    this.code = code
    this.codeName = codeName(code)
  }
}

// gRPC's status code names, indexed by code.
const CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED',
  'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'
]

function codeName(code) {
  return CODE_NAMES[code] ?? 'UNKNOWN'
}

/**
 * apiToken derives the API bearer token from the application secret the
 * way the server does when --api_secret is unset: lowercase hex
 * HMAC-SHA256 of "api-cable" keyed with the secret.
 */
export function apiToken(secret) {
  return createHmac('sha256', secret).update('api-cable').digest('hex')
}

// baseUrl accepts "http://host:port", "https://host:port" or a bare
// "host:port" (taken as cleartext HTTP/2, like the server's default gRPC
// listener).
function baseUrl(url) {
  if (typeof url !== 'string' || url === '') throw new TypeError('createClient: url is required')
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`
}

function toCablehubError(err) {
  if (err instanceof CablehubError) return err
  const ce = ConnectError.from(err)
  return new CablehubError(ce.code, ce.rawMessage, { cause: ce })
}

// call runs one RPC and turns whatever it throws into a CablehubError.
async function call(fn) {
  try {
    return await fn()
  } catch (err) {
    throw toCablehubError(err)
  }
}

// publication builds one Publication; meta is sent only when an option is
// set. Non-string data is sent as its JSON text, which subscribers receive
// decoded.
function publication({ stream, data, excludeSocket, transient, broadcastType }) {
  const pub = { stream, data: typeof data === 'string' ? data : JSON.stringify(data) }
  if (excludeSocket || transient || broadcastType) {
    pub.meta = {
      excludeSocket: excludeSocket || '',
      transient: Boolean(transient),
      broadcastType: broadcastType || ''
    }
  }
  return pub
}

/**
 * createClient connects to a Cablehub node's gRPC API.
 *
 * `url` is the gRPC address: "http://127.0.0.1:8080" or "127.0.0.1:8080"
 * (cleartext HTTP/2), "https://..." for TLS. `apiSecret` is used as the
 * bearer token as is; otherwise `secret` (the application secret) derives
 * it; with neither, calls carry no authorization. `timeoutMs` is each
 * call's deadline (DEFAULT_TIMEOUT_MS by default). Over https, `ca` is the
 * PEM of the CA that signed the server's certificate (--ssl_cert), for a
 * certificate the system does not trust; `tls` passes any other options
 * of Node's TLS connect (client certificate, servername...).
 *
 * The HTTP/2 connection is opened on the first call and reused; it does
 * not keep the process alive while idle. close() drops it at once (calls in
 * flight fail with CANCELLED); a later call opens a new one.
 */
export function createClient({ url, secret, apiSecret, timeoutMs = DEFAULT_TIMEOUT_MS, ca, tls } = {}) {
  const token = apiSecret || (secret ? apiToken(secret) : '')
  const auth = next => req => {
    if (token) req.header.set('authorization', `Bearer ${token}`)
    return next(req)
  }
  const base = baseUrl(url)
  const tlsOptions = ca || tls ? { ...tls, ...(ca ? { ca } : {}) } : undefined
  const session = new Http2SessionManager(base, undefined, tlsOptions)
  const transport = createGrpcTransport({
    baseUrl: base,
    sessionManager: session,
    interceptors: [auth],
    defaultTimeoutMs: timeoutMs
  })
  const rpc = createConnectClient(CableService, transport)

  return {
    /** publish sends one publication to `stream`. */
    async publish(stream, data, { excludeSocket, transient, broadcastType } = {}) {
      const pub = publication({ stream, data, excludeSocket, transient, broadcastType })
      await call(() => rpc.publish(create(PublishRequestSchema, { publications: [pub] })))
    },

    /**
     * publishBatch sends the publications in one request: validated as a
     * whole (one invalid publication rejects all) and delivered in order.
     */
    async publishBatch(publications) {
      const pubs = publications.map(publication)
      await call(() => rpc.publish(create(PublishRequestSchema, { publications: pubs })))
    },

    /**
     * presence reads who is present on `stream`: `total` unique ids and one
     * record per id, sorted by id, whose `info` is the JSON value the client
     * joined with as a plain JavaScript value (null when it gave none).
     * `truncated` says `records` holds only the first ids, as many as fit in
     * the server's 1 MiB answer.
     */
    async presence(stream) {
      const res = await call(() => rpc.getPresence({ stream }))
      return {
        total: res.total ?? 0,
        records: res.records.map(r => ({
          id: r.id,
          info: r.info ? toJson(ValueSchema, r.info) : null
        })),
        truncated: res.truncated
      }
    },

    /**
     * disconnect closes, on every node, the sessions whose connection
     * identifiers equal `identifier`; they are told whether to reconnect.
     */
    async disconnect(identifier, { reconnect = false } = {}) {
      await call(() => rpc.disconnect({ identifier, reconnect }))
    },

    /** close drops the HTTP/2 connection, cancelling calls in flight. */
    close() {
      session.abort()
    }
  }
}
