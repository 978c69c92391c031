package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Processes numbering their clients from --client_offset share the
// streams evenly: 100 clients over 10 streams in four processes of 25
// expect 10 deliveries per message between them, whatever the split.
func TestExpectedDeliveriesWithOffset(t *testing.T) {
	var total int64
	for p := range 4 {
		total += expectedDeliveries(p*25, 25, 10, 20)
	}
	if total != 100*20/10 {
		t.Errorf("four processes expect %d deliveries, want %d", total, 100*20/10)
	}
	if got := expectedDeliveries(5, 1, 10, 10); got != 1 {
		t.Errorf("client 5 of 10 streams expects %d of 10 messages, want 1", got)
	}
}

// merge adds up the processes' deliveries, takes the latency percentiles
// over all of them, each message's fan-out to its last arrival anywhere,
// and fails on a loss.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r rawResult) string {
		b, _ := json.Marshal(r)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const s = int64(1_000_000_000)
	a := write("a", rawResult{
		Result:      result{Clients: 2, Connected: 2, ConnectSeconds: 1, Expected: 4, Delivered: 4},
		LatenciesUs: []int64{1000, 2000, 1000, 2000},
		SentNs:      []int64{s, 2 * s}, LastNs: []int64{s + 2_000_000, 2*s + 2_000_000},
	})
	b := write("b", rawResult{
		Result:      result{Clients: 2, Connected: 2, ConnectSeconds: 2, Expected: 4, Delivered: 4},
		LatenciesUs: []int64{3000, 4000, 3000, 4000},
		SentNs:      []int64{s, 2 * s}, LastNs: []int64{s + 4_000_000, 2*s + 3_000_000},
	})
	var out bytes.Buffer
	if err := runMerge([]string{"--json", a, b}, &out); err != nil {
		t.Fatal(err)
	}
	var m result
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Connected != 4 || m.Delivered != 8 || m.Expected != 8 || m.ConnectsPerSec != 2 {
		t.Errorf("merged %+v", m)
	}
	if m.LatencyMs["p50"] != 3 || m.LatencyMs["max"] != 4 {
		t.Errorf("latency %v, want p50 3 max 4 ms", m.LatencyMs)
	}
	if m.FanoutMs["max"] != 4 || m.FanoutMs["p50"] != 4 {
		t.Errorf("fan-out %v, want 3 and 4 ms", m.FanoutMs)
	}
	if want := 8 / 1.003; m.DeliveriesPerS < want*0.999 || m.DeliveriesPerS > want*1.001 {
		t.Errorf("deliveries/s %v, want %v", m.DeliveriesPerS, want)
	}

	lost := write("lost", rawResult{Result: result{Expected: 4, Delivered: 3}, SentNs: []int64{s, 2 * s}, LastNs: []int64{s + 1, 0}})
	out.Reset()
	if err := runMerge([]string{a, lost}, &out); err == nil || !strings.Contains(err.Error(), "lost 1 of 8") {
		t.Errorf("merge with a loss: %v", err)
	}
}
