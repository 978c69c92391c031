package node

import "time"

// Options are the node's session settings.
type Options struct {
	// PingInterval is the default time between pings; 0 disables them.
	PingInterval time.Duration
	// PingPrecision is the default ping timestamp unit: "s", "ms" or "ns".
	PingPrecision string
	// PongTimeout, when positive, disconnects extended-protocol clients that
	// send nothing within it after a ping.
	PongTimeout time.Duration
	// SessionsTTL, when positive, lets extended-protocol clients restore
	// their session (subscriptions) for this long after a disconnect.
	SessionsTTL time.Duration

	// The limits below bound what one connection can make the server hold;
	// zero means unlimited (tests only: the configuration always sets them).

	// MaxSubscriptions bounds a session's subscriptions; one more is
	// rejected (reject_subscription).
	MaxSubscriptions int
	// MaxPresence bounds the streams a session is present on at once.
	MaxPresence int
	// MaxPresenceInfo bounds the bytes of one presence info value.
	MaxPresenceInfo int
	// PresenceFromIdentifiers makes a session's presence id its connection
	// identifiers (the JWT's ext claim), whatever id the client sends, so
	// nobody can join or overwrite another user's presence record; sessions
	// without identifiers cannot join. Off, the client chooses, as in
	// AnyCable.
	PresenceFromIdentifiers bool
	// MaxPresenceReply bounds the bytes of the reply to a presence command
	// (the whole frame): it lists the records that fit, in id order, and
	// says "truncated":true when some did not. The process sets it to what
	// the client's queue takes with room to spare (see ws.Options.MaxPending);
	// zero, and anything above it, means DefaultMaxPresenceReply.
	MaxPresenceReply int
	// MaxCachedSession bounds the bytes of one session's restore state; a
	// larger state is not cached.
	MaxCachedSession int
	// CatchUp reads history for the subscribed streams after a pub/sub
	// reconnect (see HandleResubscribed). It needs a broker whose history
	// covers every node's publications (Redis, NATS JetStream).
	CatchUp bool
	// Reorder says publications of a stream may reach this node out of
	// offset order (stamping and publishing are two steps: the Redis broker
	// with NATS pub/sub), so a subscription's first publications wait
	// GapWait to be sorted before it takes a position.
	Reorder bool
	// RestoreHold is how long a restored session holds the live messages of
	// its subscriptions for the client's history request; zero is
	// DefaultRestoreHold.
	RestoreHold time.Duration
	// GapWait is how long messages past an offset gap wait for the missing
	// ones to arrive live before history is read; zero is DefaultGapWait.
	GapWait time.Duration
	// MaxConns bounds the WebSocket connections open at once (--max-conn);
	// one more is refused (see Handler). 0 is unlimited.
	MaxConns int
	// IdempotencyWindow is how long a publication's idempotency key makes
	// publications with the same stream and key no-ops; 0 turns keys off
	// (see broker.IdempotencyStore).
	IdempotencyWindow time.Duration

	// App is the RPC back end; nil means none (--norpc): connections that
	// no local identifier accepts, and channels the router does not know,
	// are refused.
	App App
	// AppOptions configure the calls to App.
	AppOptions AppOptions

	// Observer, when set, hears of the cluster's stream events (see
	// Observer); nil costs nothing.
	Observer Observer
	// OccupancyID is the presence id under which every node of the
	// cluster records, in the broker, that it has subscribers of a stream
	// the Observer watches: it must be the same on every node and
	// unguessable by clients (the runner derives it from a secret), so no
	// client's presence can pass for a node's.
	OccupancyID string
}

// DefaultOptions are the node's settings without flags. CatchUp and
// Reorder depend on the broker and pub/sub in use, and SessionsTTL on the
// broker's, so the process sets them; here they are off.
func DefaultOptions() Options {
	return Options{
		PingInterval:      3 * time.Second,
		PingPrecision:     defaultPingPrecision,
		MaxSubscriptions:  1000,
		MaxPresence:       100,
		MaxPresenceInfo:   4096,
		IdempotencyWindow: 120 * time.Second,
		// Room for the subscriptions a connection may hold with ordinary
		// identifiers, not for what the largest frames could make of them.
		MaxCachedSession: 256 << 10,
		AppOptions:       DefaultAppOptions(),
	}
}

// DefaultMaxPresenceReply is the most a presence reply may be, 1 MiB: what
// every client can take in one message.
const DefaultMaxPresenceReply = 1 << 20

func (o *Options) maxPresenceReply() int {
	if o.MaxPresenceReply > 0 && o.MaxPresenceReply < DefaultMaxPresenceReply {
		return o.MaxPresenceReply
	}
	return DefaultMaxPresenceReply
}

func (o *Options) restoreHold() time.Duration {
	if o.RestoreHold > 0 {
		return o.RestoreHold
	}
	return DefaultRestoreHold
}

func (o *Options) gapWait() time.Duration {
	if o.GapWait > 0 {
		return o.GapWait
	}
	return DefaultGapWait
}

// defaultPingPrecision is the ping timestamp unit when Options leave it
// empty.
const defaultPingPrecision = "s"
