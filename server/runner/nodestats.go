package runner

import (
	"github.com/cablehub/cablehub/server/cluster"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
)

// nodeStats is what the node tells the cluster about itself
// (cluster.Local).
type nodeStats struct {
	n *node.Node
	m *metrics.Metrics
}

func (s nodeStats) Counters() (publications, deliveries, rpcCalls uint64) {
	return s.m.Published(), s.n.Delivered(), s.m.RPC.Calls()
}

func (s nodeStats) Stats() (connections, subscriptions, streams int) {
	streams, subscriptions = s.n.Totals()
	return s.n.Sessions(), subscriptions, streams
}

func (s nodeStats) StreamCounts(prefix string) []cluster.StreamCount {
	counts := s.n.StreamCounts(prefix, 0)
	out := make([]cluster.StreamCount, len(counts))
	for i, c := range counts {
		out[i] = cluster.StreamCount{Name: c.Stream, Subscribers: c.Subscriptions}
	}
	return out
}
