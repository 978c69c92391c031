package client

import (
	"context"

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
	// IdempotencyKey makes a retried publish deliver once: see the
	// idempotency_key field of cablehub.v1.Publication.
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
// that stays connected, or is recoverable from history.
func (c *Client) Publish(ctx context.Context, stream, data string, opts PublishOptions) error {
	return c.PublishBatch(ctx, []Publication{{Stream: stream, Data: data, PublishOptions: opts}})
}

// PublishBatch sends several publications in one call, delivered in order.
// The batch is validated as a whole: one invalid publication fails the
// call with codes.InvalidArgument and nothing is delivered.
func (c *Client) PublishBatch(ctx context.Context, pubs []Publication) error {
	req := &cablehubv1.PublishRequest{Publications: make([]*cablehubv1.Publication, len(pubs))}
	for i, p := range pubs {
		pub := &cablehubv1.Publication{Stream: p.Stream, Data: p.Data, IdempotencyKey: p.IdempotencyKey}
		if p.ExcludeSocket != "" || p.Transient || p.BroadcastType != "" {
			pub.Meta = &cablehubv1.PublicationMeta{ExcludeSocket: p.ExcludeSocket, Transient: p.Transient, BroadcastType: p.BroadcastType}
		}
		req.Publications[i] = pub
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.stub.Publish(ctx, req)
	return wrap(err)
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
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.stub.GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: stream})
	if err != nil {
		return nil, wrap(err)
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

// Disconnect closes every session, on every node, whose connection
// identifiers (a JWT's "ext" claim) equal identifier, telling the clients
// whether to reconnect. It returns once the command was taken; sessions
// close asynchronously.
func (c *Client) Disconnect(ctx context.Context, identifier string, reconnect bool) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.stub.Disconnect(ctx, &cablehubv1.DisconnectRequest{Identifier: identifier, Reconnect: reconnect})
	return wrap(err)
}
