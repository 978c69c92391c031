package node

import (
	"context"
	"encoding/json"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
)

// Broker is the delivery contract: what the node relies on to publish each
// stream's publications in order, and to keep what outlives one delivery:
// history, presence and the session cache. broker.Memory (one node),
// broker.Redis and broker.NATS (JetStream; clusters) and broker.None (keeps
// nothing) implement it; the broker package's suite holds them to the same
// semantics, so the node never asks which one it has.
//
// A broker may live in another process, so every method but
// SupportsPresence and Idempotency, which answer from the broker's
// configuration, takes a context and may fail. When ctx ends first the
// call fails (with ctx's error or the transport's) and whatever it was to
// write may or may not have happened, unless the method says more. Errors
// other than the broker package's sentinels (broker.Err...) mean the broker
// could not be reached or answered wrongly: the node reports them as
// unavailability, never as the client's fault. All methods are safe for
// concurrent use.
type Broker interface {
	// StampAndPublish hands pubs to every node of the cluster, in the
	// order given, through ps (the node's pub/sub) or through a path of
	// the broker's own that reaches the same handlers. Each non-transient
	// publication is stamped first: given the stream's next offset and the
	// epoch it counts in (set in pubs in place) and kept in history.
	// Transient ones are published unstamped and never kept. A broker that
	// keeps no history (None) stamps nothing.
	//
	// Order is the broker's guarantee, not the caller's: of two
	// publications of a stream, the one with the lower offset reaches a
	// node's pub/sub handler first. Memory keeps it with a lock per stream
	// around its two steps (stamp, then ps). Redis as broker and pub/sub
	// stamps and publishes in one script run, and JetStream stamps by
	// storing, which delivers in sequence order: both hold it across nodes.
	// The Redis broker with another pub/sub keeps it between this node's
	// publishers only; Options.Reorder makes sessions sort what arrives out
	// of order then.
	//
	// On error, taken is the number of leading publications known to be
	// published (the node releases the idempotency keys of the rest, so a
	// retry delivers them); where a failure cannot say which ran (a Redis
	// pipeline), it is 0 and a retry may repeat some. A publication stamped
	// but not published is voided: taken back from history, so the error
	// answer means it is kept nowhere; its offset stays used, and sessions
	// pass the hole. If voiding fails too the error says so. Publications
	// with an idempotency key were claimed by the node before the call
	// (see Idempotency).
	StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps broker.Publisher) (taken int, err error)
	// Idempotency is where the broker keeps the idempotency keys of
	// publications, which the node claims before StampAndPublish: Memory,
	// Redis and NATS return themselves, so with Redis or NATS a retry
	// that reaches another node of the cluster is dropped too. It is nil
	// when the broker keeps none (None): the node then keeps the keys in
	// its own memory, per node, and a retry is dropped only on the node
	// that took the first try. The answer does not change.
	Idempotency() broker.IdempotencyStore

	// HistoryFrom returns the stream's publications after offset, oldest
	// first, for a client that has seen everything up to offset in epoch:
	// none when offset is the latest. It fails with
	// broker.ErrHistoryUnavailable when that position cannot be served
	// (another epoch, an unknown stream, an offset beyond the latest or
	// older than what is retained) and broker.ErrHistoryUnsupported when
	// the broker keeps no history; the client is then refused
	// (reject_history) and resyncs.
	HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error)
	// HistorySince returns the stream's retained publications made at or
	// after since (unix seconds) in the current epoch, oldest first; an
	// unknown stream has none. Fails like HistoryFrom when unsupported.
	HistorySince(ctx context.Context, stream string, since int64) ([]protocol.Publication, error)
	// Tail returns the stream's current epoch and the offset of its
	// latest publication, whether or not history still holds it: after
	// HistoryFrom(stream, epoch, last) returns none, not an error. An
	// unknown stream (never published, or whose epoch is no longer valid)
	// has "" and 0. Fails like HistoryFrom when unsupported.
	Tail(ctx context.Context, stream string) (epoch string, last uint64, err error)

	// SupportsPresence reports whether the broker keeps presence; it does
	// not change. Without presence, PresenceJoin, PresenceLeave and
	// PresenceInfo fail with broker.ErrPresenceUnsupported (the API answers
	// 501) and PresenceDisconnect does nothing.
	SupportsPresence() bool
	// PresenceJoin records session sid as present on stream under
	// presence id, with info (nil for none; a later join of the id, from
	// any session, replaces it). joined is true only when id was not
	// present on the stream before, on any node: exactly then subscribers
	// get a join event. A session present under another id gets
	// broker.ErrPresenceMismatch.
	PresenceJoin(ctx context.Context, stream, sid, id string, info json.RawMessage) (joined bool, err error)
	// PresenceLeave removes sid's presence from stream at once, reporting
	// its id ("" when it was not present). left is true when that was the
	// id's last session: exactly then subscribers get a leave event.
	PresenceLeave(ctx context.Context, stream, sid string) (id string, left bool, err error)
	// PresenceDisconnect says sid's connection is gone: its presence on
	// every stream expires after the broker's presence TTL. While a
	// connection lives its presence never expires.
	PresenceDisconnect(ctx context.Context, sid string) error
	// PresenceInfo returns the stream's presence records sorted by id; an
	// unknown stream has none.
	PresenceInfo(ctx context.Context, stream string) (*broker.PresenceInfo, error)

	// CacheSession keeps sid's restore state for the sessions TTL,
	// replacing an earlier one.
	CacheSession(ctx context.Context, sid string, data []byte) error
	// RestoreSession takes sid's cached state: a sid is restorable once,
	// whichever node asks (of concurrent restores one wins), and cannot be
	// cached again for the sessions TTL. It fails with
	// broker.ErrSessionNotFound when there is none, or it expired.
	RestoreSession(ctx context.Context, sid string) ([]byte, error)
	// ForgetSession drops sid's cached state, if any.
	ForgetSession(ctx context.Context, sid string) error
	// ReturnSession undoes a RestoreSession whose restore could not go on
	// (the node was shutting down): data is cached under sid again for the
	// sessions TTL, replacing the tombstone the take left, so the client
	// can restore on another node.
	ReturnSession(ctx context.Context, sid string, data []byte) error

	// Run does the broker's background work (expiring presence, history
	// and sessions; following JetStream's epoch) until ctx is done. onLeft
	// gets the presence ids whose last session's record expired; of all
	// nodes, exactly one reports each.
	Run(ctx context.Context, onLeft func([]broker.PresenceLeft))
}

// PubSub carries publications and commands to every node of the cluster,
// this one included (pubsub.Local, Redis or NATS); the broker publishes
// through it (broker.Publisher). Subscribe and Unsubscribe are called for
// every local subscription change. The pub/sub counts them itself rather
// than following the hub's subscriber sets: the first subscription of a
// stream subscribes the node to it, a round trip, and a second
// subscription must not be confirmed before that is done (its client may
// publish right after the confirmation). So the count and the subscribing
// share a lock per stream, which cannot be the hub's: a shard's lock is
// held while fanning out, which must not wait for the network.
//
// Subscribe counts a subscription and returns at once; its Ready yields
// nil once the node listens to the stream, or an error (the pub/sub server
// is down or did not confirm in time): the caller then unsubscribes, and
// the client is told to reconnect rather than confirmed to a stream that
// reaches it no publication. Waiting outside the pub/sub's lock lets one
// connection's many subscriptions, and many connections', wait for their
// round trips together.
type PubSub interface {
	broker.Publisher
	PublishCommand(ctx context.Context, c *pubsub.Command) error
	Subscribe(stream string) *pubsub.Ready
	Unsubscribe(stream string)
}
