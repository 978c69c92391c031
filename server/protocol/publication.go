// Package protocol defines the messages Cablehub exchanges with clients and
// between its own parts: publications and the Action Cable replies built
// from them.
package protocol

// Publication is one message for the subscribers of one stream, as accepted
// by the API (REST or gRPC) and handed to the node for delivery.
type Publication struct {
	// Stream is the target stream; never empty once validated.
	Stream string
	// Data is the payload as published: delivered decoded when it is valid
	// JSON (other than null), else as a JSON string.
	Data string
	// ExcludeSocket is the sid of a session that must not receive it.
	ExcludeSocket string
	// BroadcastType, when set, becomes the "type" of delivered messages.
	BroadcastType string
	// Transient publications are not kept in history and get no offset.
	Transient bool
	// IdempotencyKey, when set, makes a publication with the same stream
	// and key accepted within the node's idempotency window a no-op (see
	// broker.IdempotencyStore). At most MaxIdempotencyKeySize bytes. It is
	// not sent to clients or between nodes.
	IdempotencyKey string
	// Epoch and Offset are set by a broker that keeps history; Offset is 0
	// for unstamped publications.
	Epoch  string
	Offset uint64
	// Recovered marks a publication read back from history after the node
	// lost its pub/sub connection: it goes only to subscriptions that have
	// a position in the stream, and only if they lack it.
	Recovered bool
}

// MaxIdempotencyKeySize is the largest idempotency key in bytes, which
// bounds what one remembered key costs; the API rejects longer keys.
const MaxIdempotencyKeySize = 128
