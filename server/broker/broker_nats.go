package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
)

// NATS is the cluster broker on NATS JetStream (--broker nats): history and
// the session cache live in JetStream, so every node sees one view, and
// JetStream itself orders each stream's publications. Semantics match
// Memory, except that it keeps no presence.
//
// One JetStream stream, whatever the number of streams. Every stream's
// history is a subject of the JetStream stream cablehub_history:
//
//	subject    cablehub.h.<token(S)>
//	limits     MaxMsgsPerSubject = history_limit, MaxAge = 10 × history_ttl
//	republish  cablehub.h.* → cablehub.stream.* (the NATS pub/sub's subjects)
//
// token(S) is the NATS pub/sub's (pubsub.NATSStreamToken). So a client
// subscribing to any number of streams creates nothing in JetStream (the
// node listens to core subjects, see Delivery), and what expires is
// deleted by JetStream itself. A subject keeps its messages ten TTLs, as
// the memory and Redis brokers keep a stream's counter: the newest message
// is the stream's position; reads drop messages older than the TTL.
//
// Offsets are contiguous per stream, as the node requires (a session tells
// a lost publication from a late one by the next offset). JetStream's
// sequence counts the whole JetStream stream, so offsets are the broker's:
// each message carries its epoch and offset (in its body, the pub/sub's
// stream message), and a publisher writes offset n+1 only on top of the
// message holding n: its publish expects the subject's last sequence to be
// that message's (Nats-Expected-Last-Subject-Sequence). When another node
// published in between, JetStream refuses, and the publisher rereads the
// subject's last message and tries again. Stamping and publishing are one
// step: JetStream republishes each stored message on the pub/sub subject,
// in storage order, so every node gets each stream in offset order
// whichever node published.
//
// Epochs are per stream, and change whenever offsets could go back:
//
//   - the subject has no message (first publication, its messages expired
//     after ten TTLs, JetStream lost its store): a new epoch starts at 1;
//   - on a NATS server that is not part of a cluster, the last message was
//     stored by another server process (each message names the server it
//     was published through): the server restarted, maybe from an older
//     copy of its store, so its offsets may be behind what clients have;
//   - this node published or read a later message of the same epoch than
//     the subject's last one now (the store went back).
//
// A JetStream cluster keeps streams through server restarts and failovers
// (Raft): on a NATS cluster of three servers or more the history stream
// gets three replicas, and only the first and last rules apply.
//
// Delivery. JetStream republishes stored messages on core NATS, which is
// at most once: a node that lost its connection, or fell behind (a slow
// consumer), catches up from history (pubsub.Handler.HandleResubscribed),
// and sessions fill any other gap from history.
//
// Transient publications (whispers, presence events) and remote commands go
// over the core NATS pub/sub, which --broker nats implies.
//
// Sessions: see broker_nats_sessions.go. Presence: not kept
// (ErrPresenceUnsupported, as AnyCable's NATS broker).
type NATS struct {
	conn *nats.Conn
	js   jetstream.JetStream
	opts MemoryOptions
	now  func() time.Time
	log  *slog.Logger

	mu          sync.Mutex
	sessions    kvBucket
	idempotency kvBucket
	history     jetstream.Stream // nil until looked up or created

	// queues hold the publications waiting for their stream's next
	// JetStream publish, by stream (see Stamp).
	qmu    sync.Mutex
	queues map[string]*stampQueue
	// positions is what this node last wrote or read of each stream.
	positions positions
}

const (
	natsHistoryStream  = "cablehub_history"
	natsHistoryPrefix  = "cablehub.h."
	natsSessionsBucket = "cablehub_sessions"
	// natsServerHeader names the NATS server a message was published
	// through (its server id, new for every server process).
	natsServerHeader = "Cablehub-Server"
	// natsTimeHeader is when the publishing node stamped the message (unix
	// ms), for HistorySince and the TTL, as the Redis broker's "at".
	natsTimeHeader = "Cablehub-Time"
	// natsOpTimeout bounds a JetStream call made without a deadline of
	// the caller's (background work).
	natsOpTimeout = 2 * time.Second
	// natsOffsetWindow is how long JetStream remembers the message ids
	// that name offsets (see publish).
	natsOffsetWindow = 10 * time.Second
	// natsStampRetries bounds the publishes of one publication that lose
	// the race for the next offset to another node's (the caller's
	// deadline bounds them too).
	natsStampRetries = 64
)

// errNATSDown is returned at once while the connection is down, rather
// than waiting for a timeout.
var errNATSDown = errors.New("NATS is not connected")

// NewNATS returns a JetStream broker on conn.
func NewNATS(conn *nats.Conn, opts MemoryOptions, log *slog.Logger) (*NATS, error) {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, err
	}
	return &NATS{conn: conn, js: js, opts: opts, now: time.Now, log: log, positions: newPositions(maxPositions),
		queues: map[string]*stampQueue{}}, nil
}

// Describe names the broker and its settings for the startup log.
func (b *NATS) Describe() string {
	return fmt.Sprintf("Using NATS JetStream broker at %s (history limit: %d, history ttl: %s, sessions ttl: %s, presence: unsupported)",
		strings.Join(b.conn.Servers(), ","), b.opts.HistoryLimit, seconds(b.opts.HistoryTTL), seconds(b.opts.SessionsTTL))
}

func historySubject(stream string) string { return natsHistoryPrefix + pubsub.NATSStreamToken(stream) }

// Healthy reports whether JetStream answers.
func (b *NATS) Healthy(ctx context.Context) error {
	if !b.conn.IsConnected() {
		return errNATSDown
	}
	_, err := b.js.AccountInfo(ctx)
	return err
}

// Run makes sure the history stream exists, retrying every second until it
// does or ctx is done, so that the first publication does not pay for it.
// There is no presence to expire, and JetStream expires history itself.
func (b *NATS) Run(ctx context.Context, _ func([]PresenceLeft)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if b.conn.IsConnected() {
			cctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
			_, err := b.historyStream(cctx)
			cancel()
			if err == nil {
				return
			}
			b.log.Debug("JetStream history stream not ready; retried", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// historyStream returns the history stream, creating it when missing. A
// stream that exists already (another node made it, maybe with other
// limits) is used as it is.
func (b *NATS) historyStream(ctx context.Context) (jetstream.Stream, error) {
	b.mu.Lock()
	s := b.history
	b.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if !b.conn.IsConnected() {
		return nil, errNATSDown
	}
	cfg := jetstream.StreamConfig{
		Name:              natsHistoryStream,
		Subjects:          []string{natsHistoryPrefix + "*"},
		MaxMsgsPerSubject: int64(b.opts.HistoryLimit),
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		RePublish: &jetstream.RePublish{
			Source:      natsHistoryPrefix + "*",
			Destination: pubsub.NATSStreamSubjectPrefix + "{{wildcard(1)}}",
		},
	}
	// Message ids only keep two claims of one offset apart, which happen
	// within a round trip of each other.
	cfg.Duplicates = natsOffsetWindow
	if b.opts.HistoryTTL > 0 {
		cfg.MaxAge = 10 * b.opts.HistoryTTL
		// The duplicate window may not exceed MaxAge.
		cfg.Duplicates = min(natsOffsetWindow, cfg.MaxAge)
	}
	cfg.Replicas = b.replicas()
	s, err := b.js.CreateStream(ctx, cfg)
	if err != nil && cfg.Replicas > 1 && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// A NATS cluster whose JetStream is not clustered.
		b.log.Warn("JetStream history stream not replicated", "replicas", cfg.Replicas, "error", err)
		cfg.Replicas = 1
		s, err = b.js.CreateStream(ctx, cfg)
	}
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = b.js.Stream(ctx, natsHistoryStream)
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.history = s
	b.mu.Unlock()
	return s, nil
}

// replicas is how many copies of the history stream a new one gets: three
// on a NATS cluster of three servers or more, so that JetStream keeps
// history through a server's loss (a failover loses nothing it
// acknowledged), else one.
func (b *NATS) replicas() int {
	if b.standalone() {
		return 1
	}
	return min(3, len(b.conn.Servers()))
}

// forgetStream drops the history stream's handle after an error that says
// it is gone (JetStream lost its store), so the next call creates it.
func (b *NATS) forgetStream(err error) {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		b.mu.Lock()
		b.history = nil
		b.mu.Unlock()
	}
}

// StampAndPublish publishes pubs in order; see node.Broker.StampAndPublish.
// A non-transient publication goes to JetStream (Stamp), which stores and
// delivers it to every node in one step, in storage order, whichever node
// published it; a transient one goes through ps. Nothing is stamped but
// unpublished, so nothing is voided; taken is exact, as each publication is
// confirmed before the next is sent.
func (b *NATS) StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps Publisher) (taken int, err error) {
	for i := range pubs {
		if pubs[i].Transient {
			err = ps.Publish(ctx, pubs[i:i+1])
		} else {
			err = b.Stamp(ctx, &pubs[i])
		}
		if err != nil {
			return i, err
		}
	}
	return len(pubs), nil
}

// standalone reports whether the NATS server is not part of a cluster:
// then a new server process means the store may have gone back.
func (b *NATS) standalone() bool { return b.conn.ConnectedClusterName() == "" }

// --- presence: not kept ---

// SupportsPresence reports false.
func (b *NATS) SupportsPresence() bool { return false }

// PresenceJoin fails with ErrPresenceUnsupported.
func (b *NATS) PresenceJoin(context.Context, string, string, string, json.RawMessage) (bool, error) {
	return false, ErrPresenceUnsupported
}

// PresenceLeave fails with ErrPresenceUnsupported.
func (b *NATS) PresenceLeave(context.Context, string, string) (string, bool, error) {
	return "", false, ErrPresenceUnsupported
}

// PresenceDisconnect does nothing: there is no presence to expire.
func (b *NATS) PresenceDisconnect(context.Context, string) error { return nil }

// PresenceInfo fails with ErrPresenceUnsupported.
func (b *NATS) PresenceInfo(context.Context, string) (*PresenceInfo, error) {
	return nil, ErrPresenceUnsupported
}
