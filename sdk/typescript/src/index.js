// Cablehub server API client: a thin layer over the stubs generated from
// proto/cablehub/v1/cable.proto (src/gen), talking gRPC over HTTP/2.
import { createHmac, randomUUID } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { create, toJson } from '@bufbuild/protobuf'
import { ValueSchema } from '@bufbuild/protobuf/wkt'
import { Code, ConnectError, createClient as createConnectClient } from '@connectrpc/connect'
import { createAsyncIterable } from '@connectrpc/connect/protocol'
import { Http2SessionManager, createGrpcTransport } from '@connectrpc/connect-node'
import {
  CableService,
  PublishRequestSchema,
  StreamPositionSchema,
  WatchRequestSchema
} from './gen/cablehub/v1/cable_pb.js'

// Connect's Code enum has gRPC's numbers (Code.Unauthenticated === 16), to
// compare CablehubError.code with.
export { Code } from '@connectrpc/connect'

/** Deadline of every unary call unless createClient is given timeoutMs. */
export const DEFAULT_TIMEOUT_MS = 5000

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
 * CablehubError is the base of every error a client method rejects with:
 * the server's answer, a missed deadline or an unreachable server. `code`
 * is the numeric gRPC status code, `codeName` its upper-case name (e.g.
 * "UNAUTHENTICATED"), `message` the status message as the server sent it;
 * `cause` holds the underlying ConnectError. The subclasses below narrow it
 * by code; any other code is a plain CablehubError.
 */
export class CablehubError extends Error {
  constructor(code, message, options) {
    super(message, options)
    // The class's own name, so a subclass needs no constructor for it.
    this.name = new.target.name
    this.code = code
    this.codeName = codeName(code)
  }
}

/** UNAUTHENTICATED or PERMISSION_DENIED: a missing or wrong API token. */
export class AuthError extends CablehubError {}

/**
 * UNAVAILABLE: the server could not be reached, the connection broke, or
 * the server could not confirm a publication in time.
 */
export class UnavailableError extends CablehubError {}

/** INVALID_ARGUMENT: the server refused the request as malformed. */
export class InvalidArgumentError extends CablehubError {}

/**
 * DEADLINE_EXCEEDED: no answer within the call's deadline. It shadows the
 * global TimeoutError inside a module that imports it by this name.
 */
export class TimeoutError extends CablehubError {}

/**
 * FAILED_PRECONDITION: a history or watch position (`since`, `epoch`) the
 * server cannot serve: another epoch, or publications no longer retained.
 * `epoch` and `offset` are the stream's current position from the error's
 * StreamPosition detail (undefined when the server sent none), where a
 * reader starts over.
 */
export class PositionError extends CablehubError {
  constructor(code, message, options) {
    super(code, message, options)
    this.epoch = options?.epoch
    this.offset = options?.offset
  }
}

/**
 * A call made after close() (message "client is closed"), or a watch
 * stopped before it was live: code CANCELLED.
 */
export class ClosedError extends CablehubError {
  constructor(message = 'client is closed', options) {
    super(Code.Canceled, message, options)
  }
}

// Errors of Node's sockets and HTTP/2 layer that mean the connection broke
// under a call: the call never got an answer, as with UNAVAILABLE (gRPC's
// own clients say UNAVAILABLE for them). Connect reports some as ABORTED,
// INTERNAL or UNKNOWN, and a stream reset because the connection closed
// (the server process ended) as CANCELLED.
const CONNECTION_LOST = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_STREAM_ERROR', 'ERR_STREAM_PREMATURE_CLOSE'
])

function connectionLost(err) {
  for (let e = err, seen = 0; e instanceof Error && seen < 10; e = e.cause, seen++) {
    if (typeof e.code === 'string' && CONNECTION_LOST.has(e.code)) return true
  }
  return false
}

/**
 * toCablehubError turns whatever a call threw into the CablehubError
 * subclass of its code.
 */
function toCablehubError(err) {
  if (err instanceof CablehubError) return err
  const ce = ConnectError.from(err)
  let code = ce.code
  // A status the server sent comes with its grpc-status; without one, the
  // code is Connect's reading of what happened to the connection. The
  // client cancels calls only on close(), which callers check first.
  if (!ce.metadata.has('grpc-status') &&
      (code === Code.Canceled || ([Code.Aborted, Code.Internal, Code.Unknown].includes(code) && connectionLost(ce)))) {
    code = Code.Unavailable
  }
  const options = { cause: ce }
  switch (code) {
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return new AuthError(code, ce.rawMessage, options)
    case Code.Unavailable:
      return new UnavailableError(code, ce.rawMessage, options)
    case Code.InvalidArgument:
      return new InvalidArgumentError(code, ce.rawMessage, options)
    case Code.DeadlineExceeded:
      return new TimeoutError(code, ce.rawMessage, options)
    case Code.FailedPrecondition: {
      const [position] = ce.findDetails(StreamPositionSchema)
      if (position) {
        options.epoch = position.epoch
        options.offset = Number(position.offset)
      }
      return new PositionError(code, ce.rawMessage, options)
    }
    default:
      return new CablehubError(code, ce.rawMessage, options)
  }
}

/**
 * apiToken derives the API bearer token from the application secret the
 * way the server does when --api_secret is unset: lowercase hex
 * HMAC-SHA256 of "api-cable" keyed with the secret.
 */
export function apiToken(secret) {
  return createHmac('sha256', secret).update('api-cable').digest('hex')
}

// baseUrl turns the address into the base URL of the transport:
// "host:port" and "http://host:port" are cleartext HTTP/2,
// "https://host:port" is TLS. Anything else (another scheme, a path, a
// query, credentials) is refused here rather than failing every call.
function baseUrl(address) {
  if (typeof address !== 'string' || address === '') {
    throw new TypeError('createClient: address is required ("host:port", "http://host:port" or "https://host:port")')
  }
  const scheme = address.match(/^([a-z][a-z0-9+.-]*):\/\//i)
  if (scheme && !/^https?$/i.test(scheme[1])) {
    throw new TypeError(`createClient: address ${JSON.stringify(address)}: scheme ${scheme[1]}:// is not supported (use host:port, http:// or https://)`)
  }
  let url
  try {
    url = new URL(scheme ? address : `http://${address}`)
  } catch {
    throw new TypeError(`createClient: address ${JSON.stringify(address)} is not host:port, http://host:port or https://host:port`)
  }
  if (!scheme && url.port === '') {
    throw new TypeError(`createClient: address ${JSON.stringify(address)} has no port (host:port)`)
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`createClient: address ${JSON.stringify(address)} must be host:port with no path, query or credentials`)
  }
  return `${url.protocol}//${url.host}`
}

// publication builds one Publication; meta is sent only when an option is
// set. Non-string data is sent as its JSON text, which subscribers receive
// decoded.
function publication({ stream, data, excludeSocket, transient, broadcastType, idempotencyKey }) {
  const pub = {
    stream,
    data: typeof data === 'string' ? data : JSON.stringify(data),
    idempotencyKey: idempotencyKey || ''
  }
  if (excludeSocket || transient || broadcastType) {
    pub.meta = {
      excludeSocket: excludeSocket || '',
      transient: Boolean(transient),
      broadcastType: broadcastType || ''
    }
  }
  return pub
}

// uint64 turns a since (number or bigint) into the bigint the stubs take.
function uint64(name, value) {
  if (typeof value === 'bigint') {
    if (value < 0n) throw new TypeError(`${name} must not be negative`)
    return value
  }
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer`)
  return BigInt(value)
}

// uint32 checks a limit before the stubs would fail to encode it.
function uint32(name, value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new TypeError(`${name} must be a non-negative integer`)
  return value
}

const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 5000

// sleep waits `ms`, or less when `signal` aborts (it then resolves false).
function sleep(ms, signal) {
  return new Promise(resolve => {
    if (signal.aborted) return resolve(false)
    const done = ok => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(ok)
    }
    const onAbort = () => done(false)
    const timer = setTimeout(done, ms, true)
    signal.addEventListener('abort', onAbort)
  })
}

/**
 * createClient connects to a Cablehub node's gRPC API. See ClientOptions in
 * index.d.ts and the README for every option.
 *
 * The HTTP/2 connection is opened on the first call and reused; it does
 * not keep the process alive while idle. close() drops it at once: calls
 * in flight reject with ClosedError, watches end, later calls reject with
 * ClosedError without touching the network.
 */
export function createClient(options = {}) {
  const {
    url, address = url, secret, apiSecret, timeoutMs = DEFAULT_TIMEOUT_MS, retries = 0, ca, tls
  } = options
  if (url && options.address && url !== options.address) {
    throw new TypeError('createClient: give address or url (its older name), not both')
  }
  if (secret && apiSecret) throw new TypeError('createClient: give secret or apiSecret, not both')
  if (!Number.isSafeInteger(retries) || retries < 0) throw new TypeError('createClient: retries must be a non-negative integer')
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw new TypeError('createClient: timeoutMs must be a positive number')
  const base = baseUrl(address)
  const token = apiSecret || (secret ? apiToken(secret) : '')
  const auth = next => req => {
    if (token) req.header.set('authorization', `Bearer ${token}`)
    return next(req)
  }
  const tlsOptions = ca || tls ? { ...tls, ...(ca ? { ca } : {}) } : undefined
  // While calls are open (a watch may be for days) the connection is
  // pinged every 30 s, so that a peer gone without a word (no RST) is
  // found within 45 s and the watch resumes; the server allows a ping
  // every 5 s.
  const session = new Http2SessionManager(base, { pingIntervalMs: 30000 }, tlsOptions)
  const transport = createGrpcTransport({
    baseUrl: base,
    sessionManager: session,
    interceptors: [auth],
    defaultTimeoutMs: timeoutMs
  })
  const rpc = createConnectClient(CableService, transport)
  // Aborted by close(): cancels calls in flight, retry waits and watches.
  const closing = new AbortController()
  // Every call and watch in flight listens to it: no limit to warn at.
  setMaxListeners(0, closing.signal)

  // call runs one unary RPC, retrying UNAVAILABLE up to `retries` times
  // with a doubling backoff, and turns what it throws into a CablehubError.
  async function call(fn) {
    if (closing.signal.aborted) throw new ClosedError()
    let wait = RETRY_FIRST_MS
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn({ signal: closing.signal })
      } catch (err) {
        if (closing.signal.aborted) throw new ClosedError(undefined, { cause: err })
        const e = toCablehubError(err)
        if (!(e instanceof UnavailableError) || attempt >= retries) throw e
      }
      if (!(await sleep(wait, closing.signal))) throw new ClosedError()
      wait = Math.min(wait * 2, RETRY_MAX_MS)
    }
  }

  // publishAll publishes built publications; with retries each gets an
  // idempotency key first (unless it has one), so that a retry of a
  // publication the server did take is not delivered twice.
  function publishAll(pubs) {
    if (retries > 0) for (const p of pubs) if (!p.idempotencyKey) p.idempotencyKey = randomUUID()
    const req = create(PublishRequestSchema, { publications: pubs })
    return call(opts => rpc.publish(req, opts))
  }

  // openWatch starts one Watch call; it resolves with its messages once the
  // server sent the response headers (it listens to the stream then).
  function openWatch(stream, epoch, since, signal) {
    const req = create(WatchRequestSchema, { stream, epoch })
    if (since !== undefined) req.since = since
    // A zero timeout means none: a watch lasts until it is stopped.
    return transport.stream(CableService.method.watch, signal, 0, undefined, createAsyncIterable([req]), undefined)
  }

  return {
    /** publish sends one publication to `stream`. */
    async publish(stream, data, { excludeSocket, transient, broadcastType, idempotencyKey } = {}) {
      await publishAll([publication({ stream, data, excludeSocket, transient, broadcastType, idempotencyKey })])
    },

    /**
     * publishBatch sends the publications in one request: validated as a
     * whole (one invalid publication rejects all) and delivered in order.
     */
    async publishBatch(publications) {
      await publishAll(publications.map(publication))
    },

    /**
     * presence reads who is present on `stream`: `total` unique ids and one
     * record per id, sorted by id, whose `info` is the JSON value the client
     * joined with as a plain JavaScript value (null when it gave none).
     * `truncated` says `records` holds only the first ids, as many as fit in
     * the server's 1 MiB answer.
     */
    async presence(stream) {
      const res = await call(opts => rpc.getPresence({ stream }, opts))
      return {
        total: res.total ?? 0,
        records: res.records.map(r => ({
          id: r.id,
          info: r.info ? toJson(ValueSchema, r.info) : null
        })),
        truncated: res.truncated
      }
    },

    /** presenceStats counts unique presence ids (users) and joined sessions. */
    async presenceStats(stream) {
      const res = await call(opts => rpc.getPresenceStats({ stream }, opts))
      return { users: res.users, sessions: res.sessions }
    },

    /**
     * history reads what the stream's history retains, oldest first, and
     * the stream's position (epoch, offset of its latest publication).
     */
    async history(stream, { limit = 0, epoch = '', since } = {}) {
      const req = { stream, limit: uint32('limit', limit), epoch }
      if (since !== undefined && since !== null) req.since = uint64('since', since)
      const res = await call(opts => rpc.getHistory(req, opts))
      return {
        epoch: res.epoch,
        offset: Number(res.offset),
        publications: res.publications.map(p => ({ offset: Number(p.offset), data: p.data })),
        truncated: res.truncated
      }
    },

    /** listStreams lists the streams with subscribers on the cluster's nodes. */
    async listStreams({ prefix = '', limit = 0 } = {}) {
      const req = { prefix, limit: uint32('limit', limit) }
      const res = await call(opts => rpc.listStreams(req, opts))
      return {
        streams: res.streams.map(s => ({ name: s.name, subscribers: s.subscribers })),
        unavailableNodes: [...res.unavailableNodes],
        truncated: res.truncated
      }
    },

    /** info describes every live node of the cluster. */
    async info() {
      const res = await call(opts => rpc.getInfo({}, opts))
      return {
        nodes: res.nodes.map(n => ({
          id: n.id,
          version: n.version,
          uptimeSeconds: n.uptimeSeconds,
          connections: n.connections,
          subscriptions: n.subscriptions,
          streams: n.streams,
          // uint64 counters: bigints in the stubs, numbers here as offsets are.
          publishedTotal: Number(n.publishedTotal),
          deliveriesTotal: Number(n.deliveriesTotal),
          rpcCallsTotal: Number(n.rpcCallsTotal)
        })),
        unavailableNodes: [...res.unavailableNodes]
      }
    },

    /**
     * disconnect closes, on every node, the sessions whose connection
     * identifiers equal `identifier`; they are told whether to reconnect.
     */
    async disconnect(identifier, { reconnect = false } = {}) {
      await call(opts => rpc.disconnect({ identifier, reconnect }, opts))
    },

    /**
     * watch follows `stream`'s publications: an async iterable of
     * { stream, epoch, offset, data }, started at once. See Watch in
     * index.d.ts.
     */
    watch(stream, { epoch = '', since, resume = true, signal } = {}) {
      return new Watch({ stream, epoch, since, resume, signal, open: openWatch, closing: closing.signal })
    },

    /**
     * close drops the HTTP/2 connection: calls in flight reject with
     * ClosedError, watches end, later calls reject with ClosedError.
     * Closing twice is harmless.
     */
    close() {
      if (closing.signal.aborted) return
      closing.abort()
      session.abort()
    }
  }
}

// STOPPED is what connecting throws when the watch was stopped meanwhile.
const STOPPED = Symbol('stopped')

/**
 * Watch is one watch of a stream: an async iterable (iterate it once) of
 * its publications. The call starts when watch() is called; `ready`
 * resolves once the server listens to the stream (a publication made after
 * that is delivered), or rejects with the error that ended the watch
 * before. When the call breaks with UNAVAILABLE (server restarted,
 * connection lost) it is re-opened from the last position delivered, with
 * a backoff of 100 ms doubling to 5 s, until the watch is stopped; unless
 * `resume` is false. Any other error ends the iteration with that error.
 * Breaking out of the loop, close() or the `signal` stop it quietly: the
 * gRPC call is cancelled and the iteration ends. The client's close() ends
 * it with ClosedError.
 */
class Watch {
  #stream
  #resume
  #open
  #closing
  #stop = new AbortController()
  #call = null
  #pending
  #wait = RETRY_FIRST_MS
  #position
  #iterator

  constructor({ stream, epoch, since, resume, signal, open, closing }) {
    this.#stream = stream
    this.#resume = resume
    this.#open = open
    this.#closing = closing
    this.#position = { epoch, since: since === undefined || since === null ? undefined : uint64('since', since) }
    const stopped = this.#stop.signal
    stopped.addEventListener('abort', () => this.#call?.abort(), { once: true })
    for (const s of [closing, signal]) {
      if (!s) continue
      if (s.aborted) this.#stop.abort()
      else s.addEventListener('abort', () => this.#stop.abort(), { once: true, signal: stopped })
    }
    this.#pending = this.#connect()
    this.#pending.catch(() => {})
    this.ready = this.#pending.then(() => {}, err => {
      throw err === STOPPED ? new ClosedError('watch is closed') : err
    })
    // Nobody has to await ready: its rejection ends the iteration too.
    this.ready.catch(() => {})
    this.#iterator = this.#run()
  }

  /**
   * The position the watch has delivered up to: the epoch and offset of
   * the last stored publication it yielded, or those it started from
   * (offset undefined when it started without since and got none yet).
   */
  get position() {
    const { epoch, since } = this.#position
    return { epoch, offset: since === undefined ? undefined : Number(since) }
  }

  // connect opens a Watch call from the current position, retrying
  // UNAVAILABLE with the backoff while resuming is on. It resolves once
  // the server sent the response headers.
  async #connect() {
    for (;;) {
      if (this.#closing.aborted) throw new ClosedError()
      if (this.#stop.signal.aborted) throw STOPPED
      const call = new AbortController()
      this.#call = call
      try {
        return await this.#open(this.#stream, this.#position.epoch, this.#position.since, call.signal)
      } catch (err) {
        call.abort()
        if (this.#closing.aborted) throw new ClosedError(undefined, { cause: err })
        if (this.#stop.signal.aborted) throw STOPPED
        const e = toCablehubError(err)
        if (!this.#resume || !(e instanceof UnavailableError)) throw e
      }
      await this.#backoff()
    }
  }

  async #backoff() {
    await sleep(this.#wait, this.#stop.signal)
    this.#wait = Math.min(this.#wait * 2, RETRY_MAX_MS)
  }

  async * #run() {
    try {
      for (;;) {
        let res
        try {
          res = await (this.#pending ?? this.#connect())
        } catch (err) {
          if (err === STOPPED) return
          throw err
        } finally {
          this.#pending = null
        }
        let got = false
        try {
          for await (const m of res.message) {
            got = true
            this.#wait = RETRY_FIRST_MS
            // A transient publication (offset 0) does not move the position.
            if (m.offset > 0n) this.#position = { epoch: m.epoch, since: m.offset }
            yield { stream: m.stream, epoch: m.epoch, offset: Number(m.offset), data: m.data }
          }
          // The server ended the call without an error: only a server
          // going away does that, so it is resumed like UNAVAILABLE.
          if (!this.#resume) return
        } catch (err) {
          if (this.#closing.aborted) throw new ClosedError(undefined, { cause: err })
          if (this.#stop.signal.aborted) return
          const e = toCablehubError(err)
          if (!this.#resume || !(e instanceof UnavailableError)) throw e
        } finally {
          this.#call?.abort()
        }
        // A call that broke before delivering anything waits before the
        // next attempt; one that delivered re-opens at once.
        if (!got) await this.#backoff()
      }
    } finally {
      this.#stop.abort()
    }
  }

  [Symbol.asyncIterator]() {
    return this.#iterator
  }

  /** close stops the watch: the call is cancelled, the iteration ends. */
  close() {
    this.#stop.abort()
  }
}
