package runner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/redisconn"
)

// deployParts are the parts the deployment flags add around the server:
// the periodic metrics writers (--statsd_host, --metrics_log).
type deployParts struct {
	writers []metrics.Writer
	statsd  *metrics.StatsdWriter
	// describe are the startup lines naming the writers.
	describe []string
}

// newDeployParts builds the metrics writers the configuration asks for;
// a StatsD host that cannot be resolved is an error.
func newDeployParts(cfg *config.Config, r *Runner) (deployParts, error) {
	var p deployParts
	m := cfg.Metrics
	every := secondsOr(m.RotateInterval)
	if m.Statsd.Host != "" {
		w, err := metrics.NewStatsdWriter(metrics.StatsdOptions{
			Host: m.Statsd.Host, Prefix: m.Statsd.Prefix, TagsFormat: m.Statsd.TagsFormat, Tags: m.Tags,
		}, r.log.With("context", "statsd"))
		if err != nil {
			return p, err
		}
		p.statsd = w
		p.writers = append(p.writers, w)
		p.describe = append(p.describe, fmt.Sprintf("Send StatsD metrics to %s every %s (prefix: %s, tags format: %s, tags: %s)",
			m.Statsd.Host, every, m.Statsd.Prefix, m.Statsd.TagsFormat, formatTags(m.Tags)))
	}
	if m.Log {
		p.writers = append(p.writers, metrics.LogWriter{Log: r.log.With("context", "metrics"), Filter: m.LogFilter})
		fields := "all"
		if len(m.LogFilter) > 0 {
			fields = strings.Join(m.LogFilter, ",")
		}
		p.describe = append(p.describe, fmt.Sprintf("Log metrics every %s (fields: %s)", every, fields))
	}
	return p, nil
}

// secondsOr writes whole seconds as AnyCable's logs do ("15s"), other
// durations as Go does.
func secondsOr(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

func formatTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "none"
	}
	items := make([]string, 0, len(tags))
	for k, v := range tags {
		items = append(items, k+":"+v)
	}
	sort.Strings(items)
	return strings.Join(items, ",")
}

// run sends metrics every --metrics_rotate_interval until ctx is done.
func (p *deployParts) run(ctx context.Context, m *metrics.Metrics, every time.Duration) {
	m.RunWriters(ctx, every, p.writers...)
}

// close flushes and closes the StatsD socket.
func (p *deployParts) close() {
	if p.statsd != nil {
		p.statsd.Close()
	}
}

// deployWarnings are the WARN lines of the deployment flags: features set
// that Cablehub does not have yet, Redis TLS without verification, a
// topology Cablehub could not determine, a delay that eats the whole
// shutdown.
func (r *Runner) deployWarnings() []string {
	cfg := r.cfg
	var w []string
	if d, t := cfg.Server.ShutdownDelay, cfg.Server.ShutdownTimeout; d > 0 && d >= t {
		w = append(w, fmt.Sprintf("--shutdown_delay (%s) is not shorter than --shutdown_timeout (%s), which it counts against: clients will be cut without the server_restart message", d, t))
	}
	if r.deps.redis == nil {
		return w
	}
	info := r.deps.redisInfo
	if info.TLS && !info.Verified {
		w = append(w, "Redis TLS does not verify the server's certificate (--redis_tls_verify is off, as in AnyCable): set --redis_tls_verify, with --redis_tls_ca_cert_path for a private CA")
	}
	if !info.Probed {
		w = append(w, fmt.Sprintf("Redis at %s did not answer at startup, so Cablehub could not ask whether it is a cluster node: it is used as a single server; list two or more cluster nodes in --redis_url to use Redis Cluster", strings.Join(info.Addrs, ",")))
	}
	return w
}

// clusterBrokerNote is the INFO line of the Redis broker on a Redis
// Cluster: how its keys and channels spread over the masters.
func (r *Runner) clusterBrokerNote() string {
	if r.cfg.Cluster.Broker != "redis" || !redisconn.IsCluster(r.deps.redis) {
		return ""
	}
	note := "Redis Cluster: each stream's keys share a hash slot of the stream's own ({<stream>}), so streams spread over the masters, sessions by their id"
	if r.cfg.Cluster.PubSub == "redis" && r.cfg.Cluster.Redis.ShardedPubSub {
		note += "; streams travel on sharded channels (SSUBSCRIBE/SPUBLISH), each publication stamped and published on its stream's shard in one step"
	}
	return note
}

// waitShutdownDelay keeps serving for --shutdown_delay (bounded by ctx)
// before the shutdown proper, so a load balancer that has been told the
// node is going can stop routing to it while connections are still
// accepted.
func (r *Runner) waitShutdownDelay(ctx context.Context) {
	d := r.cfg.Server.ShutdownDelay
	if d <= 0 {
		return
	}
	r.log.Info(fmt.Sprintf("Waiting %s before shutting down (--shutdown_delay); still accepting connections", secondsOr(d)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
