package metrics

import (
	"fmt"
	"log/slog"
	"math"
	"sort"

	"github.com/cactus/go-statsd-client/v5/statsd"
)

// StatsdOptions are --statsd_host, --statsd_prefix, --statsd_tags_format
// and --metrics_tags.
type StatsdOptions struct {
	// Host is host:port of the StatsD server (UDP).
	Host string
	// Prefix comes before every name as given: "anycable_go." makes
	// anycable_go.clients_num.
	Prefix string
	// TagsFormat is "datadog", "influxdb" or "graphite".
	TagsFormat string
	Tags       map[string]string
}

// statsdPacketSize is the largest datagram sent, as AnyCable's 1400: below
// the usual 1500-byte MTU.
const statsdPacketSize = 1400

// StatsdWriter sends each interval's samples to StatsD: counters as their
// increase (|c), gauges as their value (|g), both as integers, as AnyCable
// does. Several metrics share a datagram.
type StatsdWriter struct {
	client statsd.Statter
	prefix string
	tags   []statsd.Tag
	log    *slog.Logger
}

// NewStatsdWriter resolves the server's address and prepares the client;
// nothing is sent until Write.
func NewStatsdWriter(o StatsdOptions, log *slog.Logger) (*StatsdWriter, error) {
	format, ok := map[string]statsd.TagFormat{
		"datadog":  statsd.SuffixOctothorpe, // name:1|c|#k:v
		"influxdb": statsd.InfixComma,       // name,k=v:1|c
		"graphite": statsd.InfixSemicolon,   // name;k=v:1|c
	}[o.TagsFormat]
	if !ok {
		return nil, fmt.Errorf("invalid value %q for --statsd_tags_format: must be one of datadog, influxdb, graphite", o.TagsFormat)
	}
	// The client's own prefix would add a dot; AnyCable's is used as given.
	client, err := statsd.NewClientWithConfig(&statsd.ClientConfig{
		Address: o.Host, UseBuffered: true, FlushBytes: statsdPacketSize, TagFormat: format,
	})
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for --statsd_host: %v", o.Host, err)
	}
	w := &StatsdWriter{client: client, prefix: o.Prefix, log: log}
	for k, v := range o.Tags {
		w.tags = append(w.tags, statsd.Tag{k, v})
	}
	sort.Slice(w.tags, func(i, j int) bool { return w.tags[i][0] < w.tags[j][0] })
	return w, nil
}

func (w *StatsdWriter) Write(samples []Sample) {
	for _, s := range samples {
		v := int64(math.Round(s.Value))
		var err error
		if s.Counter {
			err = w.client.Inc(w.prefix+s.Name, v, 1, w.tags...)
		} else {
			err = w.client.Gauge(w.prefix+s.Name, v, 1, w.tags...)
		}
		if err != nil {
			w.log.Debug("statsd send failed", "metric", s.Name, "error", err)
		}
	}
}

// Close sends what is buffered and closes the socket.
func (w *StatsdWriter) Close() error { return w.client.Close() }
