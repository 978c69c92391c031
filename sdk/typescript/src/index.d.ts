// Type declarations of the hand-written client in index.js.
import type { JsonValue } from '@bufbuild/protobuf'

export { Code } from '@connectrpc/connect'

/** Deadline of every unary call unless createClient is given timeoutMs. */
export declare const DEFAULT_TIMEOUT_MS: number

/**
 * The base of every error a client method rejects with. `code` is the
 * numeric gRPC status code (16 for UNAUTHENTICATED), `codeName` its gRPC
 * name, `message` the status message as the server sent it, `cause` the
 * underlying ConnectError. Codes without a subclass below are plain
 * CablehubErrors.
 */
export declare class CablehubError extends Error {
  constructor(code: number, message: string, options?: { cause?: unknown })
  readonly code: number
  readonly codeName: string
}

/** UNAUTHENTICATED (16) or PERMISSION_DENIED (7): a missing or wrong API token. */
export declare class AuthError extends CablehubError {}

/** UNAVAILABLE (14): server unreachable, connection lost, or a publication not confirmed in time. */
export declare class UnavailableError extends CablehubError {}

/** INVALID_ARGUMENT (3): the server refused the request as malformed. */
export declare class InvalidArgumentError extends CablehubError {}

/** DEADLINE_EXCEEDED (4): no answer within timeoutMs. */
export declare class TimeoutError extends CablehubError {}

/**
 * FAILED_PRECONDITION (9): a history or watch position the server cannot
 * serve (another epoch, or publications no longer retained). `epoch` and
 * `offset` are the stream's current position (undefined when the server
 * sent no StreamPosition detail).
 */
export declare class PositionError extends CablehubError {
  constructor(code: number, message: string, options?: { cause?: unknown, epoch?: string, offset?: number })
  readonly epoch: string | undefined
  readonly offset: number | undefined
}

/**
 * CANCELLED (1): a call made after close() ("client is closed"), a call in
 * flight when close() was called, or a watch stopped before it was live.
 */
export declare class ClosedError extends CablehubError {
  constructor(message?: string, options?: { cause?: unknown })
}

/** The API token the server derives from `secret` (hex HMAC-SHA256 of "api-cable"). */
export declare function apiToken(secret: string): string

export interface ClientOptions {
  /**
   * gRPC address: "host:port" or "http://host:port" (cleartext HTTP/2),
   * "https://host:port" (TLS). Another scheme, a path or a query throws a
   * TypeError.
   */
  address?: string
  /** The older name of `address`. */
  url?: string
  /** Application secret (--secret); the API token is derived from it. Not with apiSecret. */
  secret?: string
  /** API token (--api_secret) used as is. Not with secret. */
  apiSecret?: string
  /** Deadline of each unary call (each attempt) in milliseconds (default DEFAULT_TIMEOUT_MS). Watches have none. */
  timeoutMs?: number
  /**
   * How many times a unary call failing with UNAVAILABLE is retried
   * (default 0), after 100 ms doubling up to 5 s. With retries, every
   * publication without an idempotencyKey gets a random one.
   */
  retries?: number
  /** Over https: PEM of the CA that signed the server's certificate. */
  ca?: string | Buffer | Array<string | Buffer>
  /** Over https: other options of Node's TLS connect (cert, key, servername...). */
  tls?: import('node:tls').ConnectionOptions
}

export interface PublishOptions {
  /** Session id ("sid" of the welcome message) that must not receive it. */
  excludeSocket?: string
  /** Not stored in stream history, no offset. */
  transient?: boolean
  /** Delivered as the "type" field of the message clients receive. */
  broadcastType?: string
  /**
   * A publication with the stream and key of one accepted within the
   * server's --idempotency_window is neither stored nor delivered again.
   * At most 128 bytes.
   */
  idempotencyKey?: string
}

export interface Publication extends PublishOptions {
  stream: string
  /** JSON text (or any other text); a non-string is sent as its JSON text. */
  data: unknown
}

export interface PresenceRecord {
  id: string
  /** The JSON value the client joined with; null when it gave none. */
  info: JsonValue
}

export interface Presence {
  total: number
  records: PresenceRecord[]
  /** True when records holds only the first ids, as many as fit in the server's 1 MiB answer. */
  truncated: boolean
}

export interface PresenceStats {
  /** Unique presence ids. */
  users: number
  /** Joined sessions (one user may have several). */
  sessions: number
}

export interface HistoryOptions {
  /** At most this many: with since the first after it, without the latest. 0: all retained. */
  limit?: number
  /** Epoch of since (required with it); alone it asks for the whole epoch. */
  epoch?: string
  /** Offset read up to: the answer holds the publications after it. */
  since?: number | bigint
}

export interface HistoryPublication {
  offset: number
  /** The data as it was published. */
  data: string
}

export interface History {
  /** Epoch the offsets count in; "" for a stream never published to. */
  epoch: string
  /** Offset of the stream's latest publication; 0 for an unknown stream. */
  offset: number
  /** Oldest first. */
  publications: HistoryPublication[]
  /** True when cut short to fit 3 MiB: read on with since = the last offset. */
  truncated: boolean
}

export interface StreamInfo {
  name: string
  /** Subscriptions on all nodes that answered. */
  subscribers: number
}

export interface StreamList {
  /** Sorted by name. */
  streams: StreamInfo[]
  /** Ids of live nodes that did not answer in time. */
  unavailableNodes: string[]
  /** True when more streams match than limit. */
  truncated: boolean
}

export interface NodeInfo {
  id: string
  version: string
  uptimeSeconds: number
  connections: number
  subscriptions: number
  streams: number
  /**
   * Publications accepted through the node (its API and broadcast
   * adapters) since it started. This and the next two are counters: a rate
   * is the difference between two reads over the time between them, and a
   * smaller value than before means the node restarted (its id changes
   * too). Numbers, exact below 2^53.
   */
  publishedTotal: number
  /** Publications the node queued to its clients since it started: one per subscriber a publication reached. */
  deliveriesTotal: number
  /** Calls the node made to the RPC back end since it started. */
  rpcCallsTotal: number
}

export interface ClusterInfo {
  /** The nodes that answered, sorted by id. */
  nodes: NodeInfo[]
  /** Ids of live nodes that did not answer in time. */
  unavailableNodes: string[]
}

export interface WatchOptions {
  /** Epoch of since; required with since. */
  epoch?: string
  /** Replay the publications after this offset from history first. */
  since?: number | bigint
  /** Re-open the watch from the last position after UNAVAILABLE (default true). */
  resume?: boolean
  /** Aborting it stops the watch, as Watch.close() does. */
  signal?: AbortSignal
}

export interface StreamPublication {
  stream: string
  /** "" for a transient publication. */
  epoch: string
  /** 0 for a transient publication. */
  offset: number
  /** The data as it was published. */
  data: string
}

/**
 * A running watch: iterate it once with for await. The call starts when
 * watch() is called.
 */
export interface Watch extends AsyncIterable<StreamPublication> {
  /**
   * Resolves once the server listens to the stream (a publication made
   * after that is delivered); rejects with the error that ended the watch
   * before.
   */
  readonly ready: Promise<void>
  /** Epoch and offset of the last stored publication delivered (or the start position). */
  readonly position: { epoch: string, offset: number | undefined }
  /** Stops the watch: the call is cancelled, the iteration ends. */
  close(): void
  [Symbol.asyncIterator](): AsyncIterator<StreamPublication>
}

export interface CablehubClient {
  publish(stream: string, data: unknown, options?: PublishOptions): Promise<void>
  publishBatch(publications: Publication[]): Promise<void>
  presence(stream: string): Promise<Presence>
  presenceStats(stream: string): Promise<PresenceStats>
  history(stream: string, options?: HistoryOptions): Promise<History>
  listStreams(options?: { prefix?: string, limit?: number }): Promise<StreamList>
  info(): Promise<ClusterInfo>
  /** Follows the stream's publications as they happen. */
  watch(stream: string, options?: WatchOptions): Watch
  disconnect(identifier: string, options?: { reconnect?: boolean }): Promise<void>
  /** Drops the connection; calls in flight and later calls reject with ClosedError. */
  close(): void
}

export declare function createClient(options: ClientOptions): CablehubClient
