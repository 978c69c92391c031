package metrics

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Sample is one core metric as the periodic writers (StatsD, the log) see
// it: its name without the Prometheus namespace (clients_num), and for a
// counter its increase over the interval, for a gauge its value.
type Sample struct {
	Name    string
	Value   float64
	Counter bool
}

// Writer receives the samples of each interval.
type Writer interface {
	Write(samples []Sample)
}

// namespaces are the metric name prefixes the writers send, stripped.
var namespaces = []string{namespace + "_", "cablehub_"}

// snapshot reads the current value of every core metric: the counters and
// gauges of Cablehub's and AnyCable's namespaces with no label but the
// global tags (histograms, and counters by route or method, stay
// Prometheus-only), sorted by name.
func (m *Metrics) snapshot() map[string]Sample {
	families, _ := m.registry.Gather()
	out := map[string]Sample{}
	for _, f := range families {
		name, ok := strip(f.GetName())
		if !ok || len(f.GetMetric()) != 1 {
			continue
		}
		metric := f.GetMetric()[0]
		if len(metric.GetLabel()) != len(m.tags) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			out[name] = Sample{Name: name, Value: metric.GetCounter().GetValue(), Counter: true}
		case dto.MetricType_GAUGE:
			out[name] = Sample{Name: name, Value: metric.GetGauge().GetValue()}
		}
	}
	return out
}

func strip(name string) (string, bool) {
	for _, ns := range namespaces {
		if rest, ok := strings.CutPrefix(name, ns); ok {
			return rest, true
		}
	}
	return "", false
}

// RunWriters hands every writer the interval's samples each interval
// (--metrics_rotate_interval) until ctx is done: counters as their
// increase since the previous interval, gauges as their value, as
// AnyCable's writers send them.
func (m *Metrics) RunWriters(ctx context.Context, interval time.Duration, writers ...Writer) {
	if len(writers) == 0 {
		return
	}
	last := map[string]float64{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.snapshot()
		samples := make([]Sample, 0, len(now))
		for name, s := range now {
			if s.Counter {
				s.Value, last[name] = s.Value-last[name], s.Value
			}
			samples = append(samples, s)
		}
		sort.Slice(samples, func(i, j int) bool { return samples[i].Name < samples[j].Name })
		for _, w := range writers {
			w.Write(samples)
		}
	}
}

// LogWriter logs each interval's samples at INFO in one line (--metrics_log),
// only those named in filter when it is not empty (--metrics_log_filter).
type LogWriter struct {
	Log    *slog.Logger
	Filter []string
}

func (w LogWriter) Write(samples []Sample) {
	attrs := make([]any, 0, 2*len(samples))
	for _, s := range samples {
		if len(w.Filter) > 0 && !slices.Contains(w.Filter, s.Name) {
			continue
		}
		attrs = append(attrs, s.Name, int64(math.Round(s.Value)))
	}
	w.Log.Info("metrics", attrs...)
}
