package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"time"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// PublishOptions are the optional delivery options of one publication.
type PublishOptions struct {
	// ExcludeSocket is the session id (the "sid" of a client's welcome) of
	// a client that must not receive the publication, typically its author.
	ExcludeSocket string
	// Transient publications are not kept in history and get no offset.
	Transient bool
	// BroadcastType, when set, is the "type" field of the message clients
	// receive.
	BroadcastType string
	// IdempotencyKey (at most 128 bytes) makes a repeated publish deliver
	// once: a publication whose stream and key equal those of one the server
	// accepted within its idempotency window (--idempotency_window, 120 s by
	// default) succeeds without being stored or delivered again. Empty means
	// none, unless Options.Retries > 0 (then the client picks a random one).
	IdempotencyKey string
}

// Publication is one message of a batch.
type Publication struct {
	Stream string
	// Data is the payload, usually JSON text; subscribers get it decoded
	// when it is valid JSON, else as a JSON string.
	Data string
	PublishOptions
}

// Publish sends data to the subscribers of stream on every node. A nil
// error means the server took the publication: it reaches every subscriber
// that stays connected, or is recoverable from history. ErrUnavailable means
// the outcome is unknown: a retry should carry an idempotency key (as the
// client's own retries do).
func (c *Client) Publish(ctx context.Context, stream, data string, opts PublishOptions) error {
	return c.PublishBatch(ctx, []Publication{{Stream: stream, Data: data, PublishOptions: opts}})
}

// PublishBatch sends several publications in one call, delivered in order.
// The batch is validated as a whole: one invalid publication fails the
// call with ErrInvalidArgument and nothing is delivered. pubs is not
// modified, also when the client gives publications idempotency keys.
func (c *Client) PublishBatch(ctx context.Context, pubs []Publication) error {
	req := &cablehubv1.PublishRequest{Publications: make([]*cablehubv1.Publication, len(pubs))}
	for i, p := range pubs {
		pub := &cablehubv1.Publication{Stream: p.Stream, Data: p.Data, IdempotencyKey: p.IdempotencyKey}
		if p.ExcludeSocket != "" || p.Transient || p.BroadcastType != "" {
			pub.Meta = &cablehubv1.PublicationMeta{ExcludeSocket: p.ExcludeSocket, Transient: p.Transient, BroadcastType: p.BroadcastType}
		}
		if pub.IdempotencyKey == "" && c.retries > 0 {
			pub.IdempotencyKey = randomKey()
		}
		req.Publications[i] = pub
	}
	_, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.PublishResponse, error) {
		return c.stub.Publish(ctx, req)
	})
	return err
}

// randomKey returns 128 random bits in hex, an idempotency key no other
// publication has.
func randomKey() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}

// Presence is who is present on a stream.
type Presence struct {
	// Total is the number of unique presence ids.
	Total int
	// Records holds one record per presence id, sorted by id: all of
	// them, or when Truncated the first ones, as many as fit in the
	// server's 1 MiB answer.
	Records []PresenceRecord
	// Truncated says Records holds only the first of Total ids.
	Truncated bool
}

// PresenceRecord is one presence id and the info it joined with.
type PresenceRecord struct {
	ID string
	// Info is the JSON value the client joined with, as encoding/json
	// would decode it into an any (map[string]any, []any, string, float64,
	// bool), or nil when it gave none.
	Info any
}

// Presence reads the presence records of stream. A server whose broker
// keeps no presence answers codes.Unimplemented.
func (c *Client) Presence(ctx context.Context, stream string) (*Presence, error) {
	resp, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.GetPresenceResponse, error) {
		return c.stub.GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: stream})
	})
	if err != nil {
		return nil, err
	}
	p := &Presence{Total: int(resp.GetTotal()), Records: make([]PresenceRecord, 0, len(resp.GetRecords())), Truncated: resp.GetTruncated()}
	for _, r := range resp.GetRecords() {
		rec := PresenceRecord{ID: r.GetId()}
		if r.Info != nil {
			rec.Info = r.Info.AsInterface()
		}
		p.Records = append(p.Records, rec)
	}
	return p, nil
}

// PresenceStats counts who is present on a stream.
type PresenceStats struct {
	// Users is the number of unique presence ids.
	Users int
	// Sessions is the number of joined sessions (one user may have several).
	Sessions int
}

// PresenceStats counts the presence ids and joined sessions of stream
// without listing them. A server whose broker keeps no presence answers
// codes.Unimplemented.
func (c *Client) PresenceStats(ctx context.Context, stream string) (*PresenceStats, error) {
	resp, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.GetPresenceStatsResponse, error) {
		return c.stub.GetPresenceStats(ctx, &cablehubv1.GetPresenceStatsRequest{Stream: stream})
	})
	if err != nil {
		return nil, err
	}
	return &PresenceStats{Users: int(resp.GetUsers()), Sessions: int(resp.GetSessions())}, nil
}

// HistoryOptions selects what History reads.
type HistoryOptions struct {
	// Limit is the most publications returned: with Since the first ones
	// after it, without Since the latest ones; 0 means all retained.
	Limit int
	// Since, when set, asks for the publications after this position
	// (Offset 0: the whole epoch). Its epoch must be the stream's current
	// one and its publications still retained, else History fails with
	// ErrPosition.
	Since *Position
}

// History is a read of a stream's history.
type History struct {
	// Epoch is the epoch the stream's offsets count in; "" for a stream
	// never published to (or whose history expired with its epoch).
	Epoch string
	// Offset is the offset of the stream's latest publication, whether or
	// not history still holds it; 0 for an unknown stream.
	Offset uint64
	// Publications are the publications read, oldest first.
	Publications []HistoryPublication
	// Truncated says Publications was cut short to keep the answer within
	// 3 MiB: read on with Since at the last one.
	Truncated bool
}

// HistoryPublication is one publication kept in history.
type HistoryPublication struct {
	Offset uint64
	// Data is the data as it was published.
	Data string
}

// History reads what the history of stream retains (--history_limit,
// --history_ttl), oldest first, with the stream's position. A Since the
// history cannot serve fails with ErrPosition and the stream's current
// position in the *Error's Position. A server whose broker keeps no history
// answers codes.Unimplemented.
func (c *Client) History(ctx context.Context, stream string, opts HistoryOptions) (*History, error) {
	limit, err := limitArg(opts.Limit)
	if err != nil {
		return nil, err
	}
	req := &cablehubv1.GetHistoryRequest{Stream: stream, Limit: limit}
	if opts.Since != nil {
		since := opts.Since.Offset
		req.Epoch, req.Since = opts.Since.Epoch, &since
	}
	resp, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.GetHistoryResponse, error) {
		return c.stub.GetHistory(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	h := &History{Epoch: resp.GetEpoch(), Offset: resp.GetOffset(), Truncated: resp.GetTruncated(),
		Publications: make([]HistoryPublication, len(resp.GetPublications()))}
	for i, p := range resp.GetPublications() {
		h.Publications[i] = HistoryPublication{Offset: p.GetOffset(), Data: p.GetData()}
	}
	return h, nil
}

// limitArg checks a Limit option and converts it for the wire.
func limitArg(n int) (uint32, error) {
	if n < 0 || uint64(n) > math.MaxUint32 {
		return 0, argError("limit %d out of range", n)
	}
	return uint32(n), nil
}

// ListStreamsOptions selects the streams ListStreams lists.
type ListStreamsOptions struct {
	// Prefix keeps the streams whose names start with it; "" keeps all.
	Prefix string
	// Limit is the most streams returned, the first by name; 0 means 100,
	// and more than 1000 fails with ErrInvalidArgument.
	Limit int
}

// Streams lists streams with subscribers.
type Streams struct {
	// Streams are sorted by name.
	Streams []StreamInfo
	// UnavailableNodes are the ids of live nodes that did not answer in
	// time; their subscribers are missing from the counts.
	UnavailableNodes []string
	// Truncated says more streams match than Limit.
	Truncated bool
}

// StreamInfo is a stream with subscribers.
type StreamInfo struct {
	Name string
	// Subscribers counts the stream's subscriptions on all nodes that
	// answered.
	Subscribers int
}

// ListStreams lists the streams that have at least one subscriber on some
// node of the cluster, with their subscriber counts summed over the nodes,
// sorted by name.
func (c *Client) ListStreams(ctx context.Context, opts ListStreamsOptions) (*Streams, error) {
	limit, err := limitArg(opts.Limit)
	if err != nil {
		return nil, err
	}
	resp, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.ListStreamsResponse, error) {
		return c.stub.ListStreams(ctx, &cablehubv1.ListStreamsRequest{Prefix: opts.Prefix, Limit: limit})
	})
	if err != nil {
		return nil, err
	}
	s := &Streams{Streams: make([]StreamInfo, len(resp.GetStreams())), UnavailableNodes: resp.GetUnavailableNodes(), Truncated: resp.GetTruncated()}
	for i, st := range resp.GetStreams() {
		s.Streams[i] = StreamInfo{Name: st.GetName(), Subscribers: int(st.GetSubscribers())}
	}
	return s, nil
}

// Info describes the cluster's live nodes.
type Info struct {
	// Nodes are the nodes that answered, sorted by id.
	Nodes []NodeInfo
	// UnavailableNodes are the ids of live nodes that did not answer in
	// time.
	UnavailableNodes []string
}

// NodeInfo describes one node.
type NodeInfo struct {
	// ID is the node's id, new at every start.
	ID string
	// Version is the node's version (cablehub --version).
	Version string
	// Uptime is the time since the node started, in whole seconds.
	Uptime time.Duration
	// Connections counts client sessions of every transport on the node.
	Connections int
	// Subscriptions counts those sessions' subscriptions to streams.
	Subscriptions int
	// Streams counts the streams with at least one subscriber on the node.
	Streams int
	// Published counts the publications accepted through the node (its API
	// and broadcast adapters) since it started. This and the next two are
	// counters: a rate is the difference between two reads over the time
	// between them, and a smaller value than before means the node
	// restarted (its ID changes too).
	Published uint64
	// Deliveries counts the publications the node queued to its clients
	// since it started: one per subscriber a publication reached.
	Deliveries uint64
	// RPCCalls counts the calls the node made to the RPC back end since it
	// started.
	RPCCalls uint64
}

// Info describes every live node of the cluster (the nodes that announced
// themselves recently), the answering one included.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	resp, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.GetInfoResponse, error) {
		return c.stub.GetInfo(ctx, &cablehubv1.GetInfoRequest{})
	})
	if err != nil {
		return nil, err
	}
	info := &Info{Nodes: make([]NodeInfo, len(resp.GetNodes())), UnavailableNodes: resp.GetUnavailableNodes()}
	for i, n := range resp.GetNodes() {
		info.Nodes[i] = NodeInfo{ID: n.GetId(), Version: n.GetVersion(), Uptime: time.Duration(n.GetUptimeSeconds()) * time.Second,
			Connections: int(n.GetConnections()), Subscriptions: int(n.GetSubscriptions()), Streams: int(n.GetStreams()),
			Published: n.GetPublishedTotal(), Deliveries: n.GetDeliveriesTotal(), RPCCalls: n.GetRpcCallsTotal()}
	}
	return info, nil
}

// Disconnect closes every session, on every node, whose connection
// identifiers (a JWT's "ext" claim) equal identifier, telling the clients
// whether to reconnect. It returns once the command was taken; sessions
// close asynchronously.
func (c *Client) Disconnect(ctx context.Context, identifier string, reconnect bool) error {
	_, err := unary(ctx, c, func(ctx context.Context) (*cablehubv1.DisconnectResponse, error) {
		return c.stub.Disconnect(ctx, &cablehubv1.DisconnectRequest{Identifier: identifier, Reconnect: reconnect})
	})
	return err
}
