package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// One run's clients may be more than one process holds (20,000 open
// files): then several cablebench processes connect with --expect, each
// from its own --local_addr and with its own --client_offset, create
// their --ready_file once connected, and receive what one more process
// (--clients 0 --messages N, started when all are ready) publishes; each
// writes its deliveries to --raw, and `cablebench merge` makes one result
// of them. The latencies are measured against the send time each
// publication carries, all processes reading the same clock.

// expectIdle is how long an --expect process waits for a delivery before
// giving up: the publisher starts only when every process is connected.
const expectIdle = time.Minute

// rawResult is what --raw writes: the process's result, and what the
// merge needs of every delivery.
type rawResult struct {
	Result result `json:"result"`
	// LatenciesUs is every delivery's publish→receive time, µs.
	LatenciesUs []int64 `json:"latencies_us"`
	// SentNs and LastNs are, per message, its send time and its last
	// arrival here, Unix ns (0: none arrived here).
	SentNs []int64 `json:"sent_ns"`
	LastNs []int64 `json:"last_ns"`
}

// receiveOnly is the receiving phase of an --expect process: it creates
// --ready_file, receives the --expect publications another process
// publishes, reports, and writes --raw. It fails when a delivery is lost.
func (o *benchOptions) receiveOnly(ctx context.Context, res *result, conns []*benchConn, streams []string) error {
	res.Messages = o.expect
	res.Expected = expectedDeliveries(o.clientOffset, len(conns), len(streams), o.expect)
	d := newDeliveries(len(conns), o.expect)
	d.payloadSent = make([]atomic.Int64, o.expect)
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, nil, 0o644); err != nil {
			return err
		}
	}
	cpu := serverCPU(o.pid)
	recvErr := receive(ctx, conns, d.onText, func() bool { return d.delivered.Load() >= res.Expected }, expectIdle)
	res.ServerCPUPublishS = cpu()
	d.summarize(res, 0)
	raw := rawResult{Result: *res, SentNs: make([]int64, o.expect), LastNs: make([]int64, o.expect)}
	for _, l := range d.latencies {
		for _, v := range l {
			raw.LatenciesUs = append(raw.LatenciesUs, v.Microseconds())
		}
	}
	for n := range o.expect {
		raw.SentNs[n], raw.LastNs[n] = d.sent(n), d.lastArrival[n].Load()
	}
	res.DeliveriesPerS = deliveryRate(res.Delivered, raw.SentNs, raw.LastNs)
	raw.Result = *res
	report(*res, o.asJSON, o.pid > 0)
	if o.rawFile != "" {
		b, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.rawFile, b, 0o644); err != nil {
			return err
		}
	}
	if res.Delivered < res.Expected {
		return fmt.Errorf("lost %d of %d deliveries: %v", res.Expected-res.Delivered, res.Expected, recvErr)
	}
	return nil
}

// deliveryRate is delivered over the time from the first message's send
// to the last arrival of any (0 when nothing arrived).
func deliveryRate(delivered int64, sentNs, lastNs []int64) float64 {
	var first, last int64
	for n := range sentNs {
		if lastNs[n] == 0 {
			continue
		}
		if first == 0 || sentNs[n] < first {
			first = sentNs[n]
		}
		last = max(last, lastNs[n])
	}
	if last <= first {
		return 0
	}
	return float64(delivered) / time.Duration(last-first).Seconds()
}

// runMerge is `cablebench merge`: one result of several --expect
// processes' --raw files. Clients, connections and deliveries add up;
// the connect time is the longest (the processes started together);
// latency percentiles are over every delivery of all of them, fan-out
// completion per message is to its last arrival in any, and deliveries/s
// is over the first send to the last arrival. It fails when a delivery
// was lost.
func runMerge(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("cablebench merge", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("merge: name the --raw files")
	}
	var m result
	var lat []time.Duration
	var sent, last []int64
	for _, name := range fs.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		var r rawResult
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		if len(r.SentNs) != len(r.LastNs) {
			return fmt.Errorf("%s: %d send times, %d arrivals", name, len(r.SentNs), len(r.LastNs))
		}
		if sent == nil {
			sent, last = make([]int64, len(r.SentNs)), make([]int64, len(r.SentNs))
		} else if len(r.SentNs) != len(sent) {
			return fmt.Errorf("%s: %d messages expected, another file %d", name, len(r.SentNs), len(sent))
		}
		m.Clients += r.Result.Clients
		m.Connected += r.Result.Connected
		m.ConnectSeconds = max(m.ConnectSeconds, r.Result.ConnectSeconds)
		m.Messages = r.Result.Messages
		m.Expected += r.Result.Expected
		m.Delivered += r.Result.Delivered
		for _, us := range r.LatenciesUs {
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
		for n := range sent {
			sent[n] = max(sent[n], r.SentNs[n])
			last[n] = max(last[n], r.LastNs[n])
		}
	}
	if m.ConnectSeconds > 0 {
		m.ConnectsPerSec = float64(m.Connected) / m.ConnectSeconds
	}
	m.LatencyMs = percentiles(lat)
	var fanout []time.Duration
	for n := range sent {
		if last[n] > 0 {
			fanout = append(fanout, time.Duration(last[n]-sent[n]))
		}
	}
	m.FanoutMs = percentiles(fanout)
	m.DeliveriesPerS = deliveryRate(m.Delivered, sent, last)
	if *asJSON {
		json.NewEncoder(w).Encode(m)
	} else {
		reportTo(w, m, false)
	}
	if m.Delivered < m.Expected {
		return fmt.Errorf("lost %d of %d deliveries", m.Expected-m.Delivered, m.Expected)
	}
	return nil
}
