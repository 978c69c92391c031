// Type declarations of the hand-written client in index.js.
import type { JsonValue } from '@bufbuild/protobuf'

export { Code } from '@connectrpc/connect'

/** Deadline of every call unless createClient is given timeoutMs. */
export declare const DEFAULT_TIMEOUT_MS: number

/**
 * The one error every client method rejects with. `code` is the numeric
 * gRPC status code (16 for UNAUTHENTICATED), `codeName` its gRPC name,
 * `message` the status message as the server sent it.
 */
export declare class CablehubError extends Error {
  constructor(code: number, message: string, options?: { cause?: unknown })
  readonly code: number
  readonly codeName: string
}

/** The API token the server derives from `secret` (hex HMAC-SHA256 of "api-cable"). */
export declare function apiToken(secret: string): string

export interface ClientOptions {
  /** gRPC address: "http://host:port", "https://host:port" or "host:port". */
  url: string
  /** Application secret; the API token is derived from it. */
  secret?: string
  /** API token used as is; wins over `secret`. */
  apiSecret?: string
  /** Deadline of each call in milliseconds (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number
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

export interface CablehubClient {
  publish(stream: string, data: unknown, options?: PublishOptions): Promise<void>
  publishBatch(publications: Publication[]): Promise<void>
  presence(stream: string): Promise<Presence>
  disconnect(identifier: string, options?: { reconnect?: boolean }): Promise<void>
  /** Drops the HTTP/2 connection; a later call opens a new one. */
  close(): void
}

export declare function createClient(options: ClientOptions): CablehubClient
