package node

import (
	"context"

	"github.com/cablehub/cablehub/server/protocol"
)

// StreamHistory is a read of one stream's history for clients that read
// it without a session's subscription (the Durable Streams API): the
// publications after a position and the stream's tail.
type StreamHistory struct {
	// Epoch and Last are the stream's tail: the epoch its offsets count
	// in and the offset of its latest publication ("" and 0 for a stream
	// the broker does not know).
	Epoch string
	Last  uint64
	// Pubs are the publications after the position asked for, oldest
	// first, as many as the broker retains (--history_limit, its TTL).
	Pubs []protocol.Publication
}

// Message returns the JSON value delivered as p's "message": its data
// decoded when it is JSON, else as a JSON string. It is cached like the
// messages of history replays.
func (n *Node) Message(p *protocol.Publication) []byte {
	return n.messages.message(p)
}

// History reads stream after offset in epoch; with epoch "" every
// publication retained in the current epoch. The tail is read first, so
// Pubs never end past it unless the stream was written in between (then
// the caller must take the last publication's position as the tail). It
// fails with broker.ErrHistoryUnavailable when the position cannot be
// served (another epoch, beyond the tail, older than what is retained)
// and broker.ErrHistoryUnsupported when the broker keeps no history; a
// position equal to the tail has no publications even when the history
// has expired meanwhile.
func (n *Node) History(ctx context.Context, stream, epoch string, offset uint64) (*StreamHistory, error) {
	tail, last, err := n.broker.Tail(ctx, stream)
	if err != nil {
		return nil, err
	}
	h := &StreamHistory{Epoch: tail, Last: last}
	if epoch == "" {
		h.Pubs, err = n.broker.HistorySince(ctx, stream, 0)
	} else {
		h.Pubs, err = n.broker.HistoryFrom(ctx, stream, epoch, offset)
	}
	if err != nil {
		return nil, err
	}
	if k := len(h.Pubs); k > 0 && (h.Pubs[k-1].Epoch != h.Epoch || h.Pubs[k-1].Offset > h.Last) {
		h.Epoch, h.Last = h.Pubs[k-1].Epoch, h.Pubs[k-1].Offset
	}
	return h, nil
}

// Tail returns stream's epoch and latest offset; see Broker.Tail.
func (n *Node) Tail(ctx context.Context, stream string) (epoch string, last uint64, err error) {
	return n.broker.Tail(ctx, stream)
}
