package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"
)

// query collects the answers to one question.
type query struct {
	mu      sync.Mutex
	answers map[string]*message
	// waiting are the nodes whose answer is awaited; done is closed when
	// none is left.
	waiting map[string]bool
	done    chan struct{}
}

func (q *query) add(m *message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.answers[m.Node]; ok {
		return
	}
	q.answers[m.Node] = m
	delete(q.waiting, m.Node)
	if len(q.waiting) == 0 {
		select {
		case <-q.done:
		default:
			close(q.done)
		}
	}
}

// ask puts a question to every node and returns the answers that came
// back (this node's first) and the ids of the live nodes that did not
// answer by ctx's deadline or QueryTimeout, whichever comes first. When
// the question cannot be sent (the pub/sub is down) no other node
// answers: the answer is this node's, and every peer is missing.
func (c *Cluster) ask(ctx context.Context, kind, prefix string, limit int) ([]*message, []string, error) {
	own := c.localAnswer(kind, prefix, limit)
	own.Node = c.id
	if c.alone {
		return []*message{own}, nil, nil
	}
	var b [8]byte
	rand.Read(b[:])
	q := &query{answers: map[string]*message{}, waiting: map[string]bool{}, done: make(chan struct{})}
	id := hex.EncodeToString(b[:])
	c.expire(time.Now())
	c.mu.Lock()
	for peer := range c.peers {
		q.waiting[peer] = true
	}
	c.pending[id] = q
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if len(q.waiting) == 0 {
		return []*message{own}, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	if err := c.send(ctx, &message{Type: "query", Node: c.id, ID: id, Kind: kind, Prefix: prefix, Limit: limit}); err != nil {
		c.log.Debug("cluster query not sent", "error", err)
	} else {
		select {
		case <-q.done:
		case <-ctx.Done():
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	answers := []*message{own}
	for _, m := range q.answers {
		answers = append(answers, m)
	}
	var missing []string
	for peer := range q.waiting {
		missing = append(missing, peer)
	}
	slices.Sort(missing)
	return answers, missing, nil
}

// localAnswer is this node's answer to a question.
func (c *Cluster) localAnswer(kind, prefix string, limit int) *message {
	m := &message{}
	switch kind {
	case "info":
		conns, subs, streams := c.local.Stats()
		pubs, deliveries, calls := c.local.Counters()
		m.Info = &NodeInfo{ID: c.id, Version: c.version, UptimeSeconds: int64(time.Since(c.started) / time.Second),
			Connections: conns, Subscriptions: subs, Streams: streams,
			PublishedTotal: pubs, DeliveriesTotal: deliveries, RPCCallsTotal: calls}
	case "streams":
		m.Streams, m.Truncated = firstByName(c.local.StreamCounts(prefix), limit)
	}
	return m
}

// firstByName sorts counts by name and keeps the first limit, saying
// whether any were left out.
func firstByName(counts []StreamCount, limit int) ([]StreamCount, bool) {
	slices.SortFunc(counts, func(a, b StreamCount) int { return strings.Compare(a.Name, b.Name) })
	if limit > 0 && len(counts) > limit {
		return counts[:limit], true
	}
	return counts, false
}

// Nodes describes every node that answered, sorted by id, and names the
// live ones that did not.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeInfo, []string, error) {
	answers, missing, err := c.ask(ctx, "info", "", 0)
	if err != nil {
		return nil, nil, err
	}
	var nodes []NodeInfo
	for _, a := range answers {
		if a.Info != nil {
			info := *a.Info
			info.ID = a.Node
			nodes = append(nodes, info)
		}
	}
	slices.SortFunc(nodes, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return nodes, missing, nil
}

// Streams lists the streams starting with prefix that have subscribers on
// the nodes that answered, their counts summed, the first limit by name
// (each node sends its own first limit, which holds every name of the
// cluster's first limit). truncated says more matched.
func (c *Cluster) Streams(ctx context.Context, prefix string, limit int) (streams []StreamCount, truncated bool, missing []string, err error) {
	answers, missing, err := c.ask(ctx, "streams", prefix, limit)
	if err != nil {
		return nil, false, nil, err
	}
	sums := map[string]int{}
	for _, a := range answers {
		truncated = truncated || a.Truncated
		for _, s := range a.Streams {
			sums[s.Name] += s.Subscribers
		}
	}
	all := make([]StreamCount, 0, len(sums))
	for name, n := range sums {
		all = append(all, StreamCount{Name: name, Subscribers: n})
	}
	streams, cut := firstByName(all, limit)
	return streams, truncated || cut, missing, nil
}
