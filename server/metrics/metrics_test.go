package metrics

import "testing"

// The counters GetInfo reports are the served metrics: deliveries as
// cablehub_deliveries_total (read when scraped, with the global tags),
// publications accepted and RPC calls from their counters.
func TestGetInfoCountersAreMetrics(t *testing.T) {
	m := NewWithTags(map[string]string{"env": "test"})
	var deliveries uint64 = 41
	m.CountDeliveries(func() uint64 { return deliveries })
	deliveries++
	m.BroadcastMsgTotal.Add(3)
	m.RPC.Done("connect", 0, 0)
	hasLines(t, scrape(t, m),
		`cablehub_deliveries_total{env="test"} 42`,
		`anycable_go_broadcast_msg_total{env="test"} 3`)
	if m.Published() != 3 || m.RPC.Calls() != 1 {
		t.Fatalf("Published = %d, RPC.Calls = %d; want 3, 1", m.Published(), m.RPC.Calls())
	}
}
