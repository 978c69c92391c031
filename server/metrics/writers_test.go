package metrics

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// collect is a Writer keeping what it was handed.
type collect struct {
	mu   sync.Mutex
	runs [][]Sample
}

func (c *collect) Write(s []Sample) {
	c.mu.Lock()
	c.runs = append(c.runs, s)
	c.mu.Unlock()
}

func (c *collect) get() [][]Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.runs)
}

func find(samples []Sample, name string) (Sample, bool) {
	for _, s := range samples {
		if s.Name == name {
			return s, true
		}
	}
	return Sample{}, false
}

// Counters go out as their increase over each interval, gauges as their
// value; labelled vectors and Go's own metrics stay Prometheus-only; the
// global tags do not hide a metric.
func TestRunWritersSendsIntervalValues(t *testing.T) {
	m := NewWithTags(map[string]string{"env": "test"})
	m.ClientMsgTotal.Add(5)
	m.ClientsNum.Set(3)
	m.APIRequests.WithLabelValues("publish", "201").Inc()
	w := &collect{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.RunWriters(ctx, 20*time.Millisecond, w)
		close(done)
	}()
	waitFor(t, func() bool { return len(w.get()) >= 1 })
	m.ClientMsgTotal.Add(2)
	m.ConnLimitRefusedTotal.Inc()
	n := len(w.get())
	waitFor(t, func() bool { return len(w.get()) > n })
	cancel()
	<-done
	runs := w.get()
	first, later := runs[0], runs[n]
	if s, ok := find(first, "client_msg_total"); !ok || s.Value != 5 || !s.Counter {
		t.Errorf("first interval client_msg_total: %+v %v", s, ok)
	}
	if s, ok := find(later, "client_msg_total"); !ok || s.Value != 2 {
		t.Errorf("later interval client_msg_total: %+v (want the increase, 2)", s)
	}
	if s, ok := find(later, "conn_limit_refused_total"); !ok || s.Value != 1 {
		t.Errorf("cablehub counters are sent too: %+v", s)
	}
	if s, ok := find(later, "clients_num"); !ok || s.Value != 3 || s.Counter {
		t.Errorf("gauge: %+v", s)
	}
	for _, s := range first {
		if strings.HasPrefix(s.Name, "api_requests") || strings.HasPrefix(s.Name, "go_") || strings.HasPrefix(s.Name, "process_") {
			t.Errorf("%s must stay Prometheus-only", s.Name)
		}
	}
	if !slices.IsSortedFunc(first, func(a, b Sample) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("samples must be sorted by name")
	}
}

// The StatsD writer's datagrams, read from a real UDP socket, in each tag
// format AnyCable offers.
func TestStatsdWriterPackets(t *testing.T) {
	samples := []Sample{{Name: "clients_num", Value: 3}, {Name: "client_msg_total", Value: 2, Counter: true}}
	tags := map[string]string{"env": "prod", "app": "chat"}
	cases := map[string][]string{
		"datadog":  {"anycable_go.clients_num:3|g|#app:chat,env:prod", "anycable_go.client_msg_total:2|c|#app:chat,env:prod"},
		"influxdb": {"anycable_go.clients_num,app=chat,env=prod:3|g", "anycable_go.client_msg_total,app=chat,env=prod:2|c"},
		"graphite": {"anycable_go.clients_num;app=chat;env=prod:3|g", "anycable_go.client_msg_total;app=chat;env=prod:2|c"},
	}
	for format, want := range cases {
		t.Run(format, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			w, err := NewStatsdWriter(StatsdOptions{Host: pc.LocalAddr().String(), Prefix: "anycable_go.", TagsFormat: format, Tags: tags}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(samples)
			w.Close() // flushes the buffer
			if got := readLines(t, pc, len(want)); !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	if _, err := NewStatsdWriter(StatsdOptions{Host: "127.0.0.1:1", TagsFormat: "json"}, nil); err == nil {
		t.Error("an unknown tags format must be an error")
	}
}

func TestLogWriterFilters(t *testing.T) {
	var buf bytes.Buffer
	w := LogWriter{Log: slog.New(slog.NewTextHandler(&buf, nil)), Filter: []string{"clients_num"}}
	w.Write([]Sample{{Name: "clients_num", Value: 3}, {Name: "client_msg_total", Value: 2, Counter: true}})
	if got := buf.String(); !strings.Contains(got, "msg=metrics clients_num=3") || strings.Contains(got, "client_msg_total") {
		t.Errorf("log line: %s", got)
	}
}

// readLines reads datagrams until n metric lines have arrived.
func readLines(t *testing.T, pc net.PacketConn, n int) []string {
	t.Helper()
	var lines []string
	buf := make([]byte, 2048)
	for len(lines) < n {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, strings.Split(strings.TrimRight(string(buf[:k]), "\n"), "\n")...)
	}
	return lines
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
