package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
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
)

// NATS is the cluster broker on NATS JetStream (--broker nats): history and
// the session cache live in JetStream, so every node sees one view, and
// JetStream itself orders each stream's publications. Semantics match
// Memory, except that it keeps no presence.
//
// Streams. Each AnyCable stream S has one JetStream stream per epoch E:
//
//	name     cablehub_<E>_<enc(S)>
//	subject  cablehub.js.<E>.<enc(S)>
//
// enc(S) is "s" + base64url(S), or "h" + base64url(sha256(S)) when that
// would be longer than maxEncodedStream: stream names may hold characters
// JetStream names and subjects cannot (spaces, dots, wildcards), and a
// JetStream name is a directory name, so it must stay short. The stream
// keeps MaxMsgs = history_limit and MaxAge = history_ttl; the JetStream
// sequence is the offset, contiguous per stream. The epoch is in the name
// so that a node still holding an old epoch cannot append to a stream of
// the new one: its publish finds no stream, it rereads the epoch and moves
// on (see Stamp).
//
// Publish path. A non-transient publication is one JetStream publish to its
// stream's subject; the ack's sequence is its offset. Stamping and
// publishing are one step, so two nodes publishing to one stream cannot
// deliver offsets out of order (see StampAndPublish). Transient
// publications (whispers, presence events) and remote commands go over the
// core NATS pub/sub, which --broker nats implies.
//
// Delivery path. While the node has local subscribers of a stream (the
// NATS pub/sub's interest count calls Follow and Unfollow), it reads the
// stream with an ordered consumer starting after the stream's last
// sequence at the time of the subscription: every node gets each stream's
// publications in sequence order, and after a NATS reconnect the consumer
// resumes after the last sequence it delivered, so no publication is
// skipped. The JSON body carries data, broadcast type, exclude_socket and
// the publishing node's time (for HistorySince and the TTL filter, as the
// Redis broker's "at").
//
// Epoch. The KV bucket cablehub_epoch holds the key "epoch", created with
// KV Create by the first node (so all agree). Run rereads it every second:
// when JetStream lost its state (the key or bucket is gone) a new epoch is
// created, followed streams move to it, and history asked for in the old
// epoch is refused with ErrHistoryUnavailable, so clients resync.
//
// Sessions: see broker_nats_sessions.go. Presence: not kept
// (ErrPresenceUnsupported, as AnyCable's NATS broker). Presence needs
// per-session expiry with a node refreshing live sessions and exactly one
// node reporting each leave; JetStream KV can do it (per-key TTLs and
// revision-checked updates) but not as one atomic step over a stream's
// records like the Redis scripts, and that design is left for later.
type NATS struct {
	conn *nats.Conn
	js   jetstream.JetStream
	opts MemoryOptions
	now  func() time.Time
	log  *slog.Logger

	deliver func(*protocol.Publication)

	mu       sync.Mutex
	epoch    string // "" until first read
	sessions jetstream.KeyValue

	// kick wakes Run when the epoch changed, to move followed streams.
	kick chan struct{}

	fmu     sync.Mutex
	follows map[string]*follow // AnyCable stream -> its consumer
}

const (
	natsEpochBucket    = "cablehub_epoch"
	natsEpochKey       = "epoch"
	natsSessionsBucket = "cablehub_sessions"
	// maxEncodedStream bounds enc(S) so stream names stay far below
	// JetStream's 255 characters.
	maxEncodedStream = 200
	// natsOpTimeout bounds a JetStream call made without a deadline of
	// the caller's (subscriptions, background work).
	natsOpTimeout = 2 * time.Second
)

// errNATSDown is returned at once while the connection is down, rather
// than waiting for a timeout.
var errNATSDown = errors.New("NATS is not connected")

// NewNATS returns a JetStream broker on conn. Attach must be called before
// publications flow.
func NewNATS(conn *nats.Conn, opts MemoryOptions, log *slog.Logger) (*NATS, error) {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, err
	}
	return &NATS{conn: conn, js: js, opts: opts, now: time.Now, log: log,
		kick: make(chan struct{}, 1), follows: map[string]*follow{},
		deliver: func(*protocol.Publication) {}}, nil
}

// Attach sets where the publications JetStream delivers go: the node's
// pub/sub handler (node.HandlePublication).
func (b *NATS) Attach(deliver func(*protocol.Publication)) {
	b.deliver = deliver
}

// Describe names the broker and its settings for the startup log.
func (b *NATS) Describe() string {
	return fmt.Sprintf("Using NATS JetStream broker at %s (history limit: %d, history ttl: %s, sessions ttl: %s, presence: unsupported)",
		strings.Join(b.conn.Servers(), ","), b.opts.HistoryLimit, seconds(b.opts.HistoryTTL), seconds(b.opts.SessionsTTL))
}

func encodeStream(stream string) string {
	if base64.RawURLEncoding.EncodedLen(len(stream)) <= maxEncodedStream {
		return "s" + base64.RawURLEncoding.EncodeToString([]byte(stream))
	}
	sum := sha256.Sum256([]byte(stream))
	return "h" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func jsStreamName(epoch, stream string) string {
	return "cablehub_" + epoch + "_" + encodeStream(stream)
}
func jsSubject(epoch, stream string) string {
	return "cablehub.js." + epoch + "." + encodeStream(stream)
}

// Healthy reports whether JetStream answers.
func (b *NATS) Healthy(ctx context.Context) error {
	if !b.conn.IsConnected() {
		return errNATSDown
	}
	_, err := b.js.AccountInfo(ctx)
	return err
}

// Epoch returns the cluster's epoch, reading (or creating) it on first
// use. An error means JetStream could not be reached; the next call
// retries.
func (b *NATS) Epoch(ctx context.Context) (string, error) {
	b.mu.Lock()
	e := b.epoch
	b.mu.Unlock()
	if e != "" {
		return e, nil
	}
	return b.loadEpoch(ctx)
}

// loadEpoch reads the epoch from its KV bucket, creating the bucket and
// the key when they are gone (first use, or JetStream lost its state). Of
// nodes racing to create the key, KV Create lets one win and the others
// read its value.
func (b *NATS) loadEpoch(ctx context.Context) (string, error) {
	if !b.conn.IsConnected() {
		return "", errNATSDown
	}
	kv, err := b.js.KeyValue(ctx, natsEpochBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: natsEpochBucket, Storage: jetstream.FileStorage})
		if err != nil { // another node may have just created it
			kv, err = b.js.KeyValue(ctx, natsEpochBucket)
		}
	}
	if err != nil {
		return "", err
	}
	entry, err := kv.Get(ctx, natsEpochKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if _, err = kv.Create(ctx, natsEpochKey, []byte(newEpoch())); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return "", err
		}
		entry, err = kv.Get(ctx, natsEpochKey)
	}
	if err != nil {
		return "", err
	}
	e := string(entry.Value())
	b.mu.Lock()
	changed := b.epoch != "" && b.epoch != e
	if changed {
		b.log.Warn("JetStream epoch changed: JetStream lost its state; history before it is gone", "old", b.epoch, "new", e)
	}
	b.epoch = e
	b.mu.Unlock()
	if changed {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return e, nil
}

// Run keeps the epoch current and followed streams consuming until ctx is
// done: every second it rereads the epoch (see loadEpoch) and (re)starts
// the consumers of followed streams that have none or follow an old epoch.
// There is no presence to expire.
func (b *NATS) Run(ctx context.Context, _ func([]PresenceLeft)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.stopFollows()
			return
		case <-t.C:
		case <-b.kick:
		}
		if !b.conn.IsConnected() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
		if _, err := b.loadEpoch(cctx); err != nil {
			b.log.Debug("JetStream epoch check failed", "error", err)
		}
		cancel()
		b.refollow(ctx)
	}
}

// natsStored is a publication's body in JetStream.
type natsStored struct {
	Data          string `json:"d"`
	BroadcastType string `json:"t,omitempty"`
	ExcludeSocket string `json:"x,omitempty"`
	// At is when the publishing node stamped it (unix ms).
	At int64 `json:"at"`
}

// StampAndPublish publishes pubs in order; see node.Broker.StampAndPublish.
// A non-transient publication goes to JetStream (Stamp), which stamps and
// delivers it to every following node in one step, in sequence order,
// whichever node published it; a transient one goes through ps. Nothing
// is stamped but unpublished, so nothing is voided; taken is exact, as
// each publication is confirmed before the next is sent.
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

// Stamp appends p to its stream in JetStream and gives it the sequence as
// offset and the epoch. Since every node follows JetStream, this also
// delivers p: a node must not publish it again over the pub/sub. When no
// stream takes the subject (first publication, or JetStream lost its
// state, or this node's epoch is old) it rereads the epoch, creates the
// stream and publishes once more.
func (b *NATS) Stamp(ctx context.Context, p *protocol.Publication) error {
	if !b.conn.IsConnected() {
		return errNATSDown
	}
	epoch, err := b.Epoch(ctx)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(natsStored{Data: p.Data, BroadcastType: p.BroadcastType, ExcludeSocket: p.ExcludeSocket, At: b.now().UnixMilli()})
	// An idempotency key is also JetStream's message id: within the
	// stream's duplicate window a retry through any node is not stored
	// again (the node's own claim store only sees its own retries).
	opts := []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}
	if p.IdempotencyKey != "" {
		opts = append(opts, jetstream.WithMsgID(p.IdempotencyKey))
	}
	ack, err := b.js.Publish(ctx, jsSubject(epoch, p.Stream), body, opts...)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		if epoch, _, err = b.ensureStream(ctx, p.Stream); err != nil {
			return err
		}
		ack, err = b.js.Publish(ctx, jsSubject(epoch, p.Stream), body, opts[1:]...)
	}
	if err != nil {
		return err
	}
	p.Epoch, p.Offset = epoch, ack.Sequence
	return nil
}

// ensureStream creates stream's JetStream stream in the current epoch,
// reread from KV first, and returns that epoch and the stream's last
// sequence. A stream that exists already (another node made it, maybe
// with other limits) is used as it is.
func (b *NATS) ensureStream(ctx context.Context, stream string) (epoch string, last uint64, err error) {
	if epoch, err = b.loadEpoch(ctx); err != nil {
		return "", 0, err
	}
	cfg := jetstream.StreamConfig{
		Name:      jsStreamName(epoch, stream),
		Subjects:  []string{jsSubject(epoch, stream)},
		MaxMsgs:   int64(b.opts.HistoryLimit),
		MaxAge:    b.opts.HistoryTTL,
		Discard:   jetstream.DiscardOld,
		Storage:   jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy,
	}
	if b.opts.HistoryTTL > 0 {
		// The duplicate window may not exceed MaxAge.
		cfg.Duplicates = min(b.opts.HistoryTTL, 2*time.Minute)
	}
	s, err := b.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = b.js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return "", 0, err
	}
	return epoch, s.CachedInfo().State.LastSeq, nil
}

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
