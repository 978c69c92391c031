// Package cluster lets the nodes of a cluster know each other and answer
// questions about the whole of it (the server API's ListStreams and
// GetInfo) over the pub/sub they already share (Redis, NATS).
//
// Every node announces itself on pubsub.ClusterChannel each
// AnnounceInterval; a node that has not been heard of for PeerTTL is taken
// for gone (killed, partitioned), and one that stops says so at once. A
// question fans out as one query message; each node answers for itself,
// and the asker collects the answers until every live node it knows has
// answered or the deadline passes, then answers with what came back and
// the ids of the nodes that did not answer. A node alone (the in-process
// pub/sub) answers for itself without a round trip.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// Timing of the announcements: a killed node drops out of answers within
// PeerTTL.
const (
	AnnounceInterval = time.Second
	PeerTTL          = 5 * time.Second
)

// QueryTimeout bounds the wait for other nodes' answers when the caller's
// deadline is later.
const QueryTimeout = time.Second

// Transport carries the nodes' messages: the pub/sub's PublishCluster.
// What it publishes reaches Cluster.Handle on every node, this one
// included.
type Transport interface {
	PublishCluster(ctx context.Context, payload []byte) error
}

// Local is what a node reports about itself: *node.Node through a small
// adapter in the runner.
type Local interface {
	// Stats counts the node's connections, subscriptions and streams with
	// subscribers.
	Stats() (connections, subscriptions, streams int)
	// Counters are the node's counts since it started: publications
	// accepted through it, publications queued to its clients (one per
	// subscriber reached) and calls to the RPC back end.
	Counters() (publications, deliveries, rpcCalls uint64)
	// StreamCounts lists the node's streams starting with prefix that
	// have subscribers, with their numbers of subscriptions, in any order.
	StreamCounts(prefix string) []StreamCount
}

// StreamCount is a stream with its number of subscriptions.
type StreamCount struct {
	Name        string `json:"name"`
	Subscribers int    `json:"subscribers"`
}

// NodeInfo describes one node.
type NodeInfo struct {
	ID            string `json:"id"`
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	Connections   int    `json:"connections"`
	Subscriptions int    `json:"subscriptions"`
	Streams       int    `json:"streams"`
	// The counters since the node started (Local.Counters); a node of an
	// older version sends none, read as 0.
	PublishedTotal  uint64 `json:"published_total,omitempty"`
	DeliveriesTotal uint64 `json:"deliveries_total,omitempty"`
	RPCCallsTotal   uint64 `json:"rpc_calls_total,omitempty"`
}

// Cluster is one node's view of the cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	id      string
	version string
	started time.Time
	tr      Transport
	local   Local
	log     *slog.Logger
	// alone: the transport reaches no other node (in-process pub/sub).
	alone bool

	mu sync.Mutex
	// peers maps the other nodes' ids to when they were last heard of.
	peers   map[string]time.Time
	pending map[string]*query
}

// Options configure a Cluster.
type Options struct {
	// Version is what GetInfo reports of this node.
	Version string
	// Alone says the transport reaches no other node: questions are
	// answered locally at once.
	Alone bool
}

// New returns this node's view; its id is new at every start.
func New(tr Transport, local Local, o Options, log *slog.Logger) *Cluster {
	var b [8]byte
	rand.Read(b[:])
	return &Cluster{
		id: hex.EncodeToString(b[:]), version: o.Version, started: time.Now(),
		tr: tr, local: local, log: log, alone: o.Alone,
		peers: map[string]time.Time{}, pending: map[string]*query{},
	}
}

// ID is this node's id.
func (c *Cluster) ID() string { return c.id }

// message is every message on the cluster channel; Type says which fields
// mean something.
type message struct {
	Type string `json:"type"` // announce, leave, query, reply
	Node string `json:"node"` // the sender
	// query and reply
	ID     string `json:"id,omitempty"`
	To     string `json:"to,omitempty"` // reply: the asker
	Kind   string `json:"kind,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// reply
	Info      *NodeInfo     `json:"info,omitempty"`
	Streams   []StreamCount `json:"streams,omitempty"`
	Truncated bool          `json:"truncated,omitempty"`
}

func (c *Cluster) send(ctx context.Context, m *message) error {
	b, _ := json.Marshal(m)
	return c.tr.PublishCluster(ctx, b)
}

// Run announces the node every AnnounceInterval until ctx ends, then says
// it leaves.
func (c *Cluster) Run(ctx context.Context) {
	if c.alone {
		return
	}
	t := time.NewTicker(AnnounceInterval)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, AnnounceInterval)
		if err := c.send(actx, &message{Type: "announce", Node: c.id}); err != nil && ctx.Err() == nil {
			c.log.Debug("cluster announcement not sent", "error", err)
		}
		cancel()
		c.expire(time.Now())
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c.send(lctx, &message{Type: "leave", Node: c.id})
			cancel()
			return
		case <-t.C:
		}
	}
}

// expire forgets the peers not heard of for PeerTTL.
func (c *Cluster) expire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, seen := range c.peers {
		if now.Sub(seen) > PeerTTL {
			delete(c.peers, id)
		}
	}
}

// Handle takes a message of the cluster channel (pubsub.Handler's
// HandleCluster). It does not block: answers are sent from a goroutine of
// their own. Malformed messages are dropped.
func (c *Cluster) Handle(payload []byte) {
	var m message
	if err := json.Unmarshal(payload, &m); err != nil || m.Node == "" || m.Node == c.id {
		return
	}
	switch m.Type {
	case "announce":
		c.heard(m.Node)
	case "leave":
		c.mu.Lock()
		delete(c.peers, m.Node)
		c.mu.Unlock()
	case "query":
		c.heard(m.Node)
		go c.answer(&m)
	case "reply":
		if m.To != c.id {
			return
		}
		c.heard(m.Node)
		c.mu.Lock()
		q := c.pending[m.ID]
		c.mu.Unlock()
		if q != nil {
			q.add(&m)
		}
	}
}

func (c *Cluster) heard(id string) {
	c.mu.Lock()
	c.peers[id] = time.Now()
	c.mu.Unlock()
}

// answer replies to another node's query.
func (c *Cluster) answer(q *message) {
	r := c.localAnswer(q.Kind, q.Prefix, q.Limit)
	r.Type, r.Node, r.ID, r.To = "reply", c.id, q.ID, q.Node
	ctx, cancel := context.WithTimeout(context.Background(), QueryTimeout)
	defer cancel()
	if err := c.send(ctx, r); err != nil {
		c.log.Debug("cluster answer not sent", "error", err)
	}
}
