package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

type result struct {
	Clients    int    `json:"clients"`
	RPCChannel string `json:"rpc_channel,omitempty"`
	Connected  int    `json:"connected"`
	// Compressed is how many connected clients agreed permessage-deflate
	// (--compress).
	Compressed      int     `json:"compressed,omitempty"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	ConnectsPerSec  float64 `json:"connects_per_sec"`
	RSSBeforeKiB    int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB     int64   `json:"rss_after_kib,omitempty"`
	RSSPerConnBytes float64 `json:"rss_per_conn_bytes,omitempty"`
	// With --pid: the server's CPU (user+system, /proc/<pid>/stat) while
	// the clients connected, and during the publish phase.
	ServerCPUConnectS float64 `json:"server_cpu_connect_seconds,omitempty"`
	ServerCPUPublishS float64 `json:"server_cpu_publish_seconds,omitempty"`

	Messages        int     `json:"messages,omitempty"`
	PublishSeconds  float64 `json:"publish_seconds,omitempty"`
	PublishesPerSec float64 `json:"publishes_per_sec,omitempty"`
	Expected        int64   `json:"expected,omitempty"`
	Delivered       int64   `json:"delivered,omitempty"`
	DeliveriesPerS  float64 `json:"deliveries_per_sec,omitempty"`
	// LatencyMs is publish→receive per delivery; FanoutMs is, per message,
	// publish→receive by the last subscriber (fan-out completion).
	LatencyMs map[string]float64 `json:"latency_ms,omitempty"`
	FanoutMs  map[string]float64 `json:"fanout_ms,omitempty"`

	// Pusher is the channel type of Pusher clients (--pusher): public,
	// private or presence. What they received besides publications: the
	// server's pusher:ping (answered), presence member_added and
	// member_removed events, and pusher:error frames.
	Pusher             string `json:"pusher,omitempty"`
	PusherPings        int64  `json:"pusher_pings,omitempty"`
	PusherMemberEvents int64  `json:"pusher_member_events,omitempty"`
	PusherErrors       int64  `json:"pusher_errors,omitempty"`
}

func percentiles(ds []time.Duration) map[string]float64 {
	if len(ds) == 0 {
		return nil
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	pct := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	return map[string]float64{"p50": pct(.5), "p90": pct(.9), "p99": pct(.99), "p99.9": pct(.999), "max": pct(1)}
}

func report(res result, asJSON, rss bool) {
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	reportTo(os.Stdout, res, rss)
}

// reportTo writes res as text to w, with the server's RSS if rss.
func reportTo(w io.Writer, res result, rss bool) {
	through := ""
	switch {
	case res.RPCChannel != "":
		through = " (Connect and subscribe to " + res.RPCChannel + " through RPC)"
	case res.Pusher != "":
		through = " (Pusher, " + res.Pusher + " channels)"
	}
	fmt.Fprintf(w, "connected %d/%d in %.2fs: %.0f connect+welcome+subscribe/s%s\n", res.Connected, res.Clients, res.ConnectSeconds, res.ConnectsPerSec, through)
	if res.Compressed > 0 {
		fmt.Fprintf(w, "permessage-deflate agreed by %d/%d clients\n", res.Compressed, res.Connected)
	}
	if res.ServerCPUConnectS > 0 && res.Connected > 0 {
		fmt.Fprintf(w, "server CPU while connecting %.2fs: %.1f µs per connection\n", res.ServerCPUConnectS, res.ServerCPUConnectS*1e6/float64(res.Connected))
	}
	if res.Pusher != "" {
		fmt.Fprintf(w, "Pusher frames besides publications: %d pusher:ping (answered), %d member events, %d pusher:error\n",
			res.PusherPings, res.PusherMemberEvents, res.PusherErrors)
	}
	if rss {
		fmt.Fprintf(w, "server RSS %d KiB -> %d KiB: %.1f KiB per connection\n", res.RSSBeforeKiB, res.RSSAfterKiB, res.RSSPerConnBytes/1024)
	}
	if res.Messages > 0 {
		fmt.Fprintf(w, "published %d in %.2fs (%.0f/s); delivered %d/%d (%.0f deliveries/s)\n",
			res.Messages, res.PublishSeconds, res.PublishesPerSec, res.Delivered, res.Expected, res.DeliveriesPerS)
		for _, row := range []struct {
			name string
			l    map[string]float64
		}{{"latency", res.LatencyMs}, {"fan-out completion", res.FanoutMs}} {
			l := row.l
			if l == nil {
				continue
			}
			fmt.Fprintf(w, "%s ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", row.name, l["p50"], l["p90"], l["p99"], l["p99.9"], l["max"])
		}
		if res.ServerCPUPublishS > 0 && res.Delivered > 0 {
			fmt.Fprintf(w, "server CPU while publishing %.2fs: %.2f µs per delivery\n", res.ServerCPUPublishS, res.ServerCPUPublishS*1e6/float64(res.Delivered))
		}
	}
}

// serverCPU starts measuring process pid's CPU time; the function it
// returns gives the seconds spent since (0 when pid is 0 or unreadable).
func serverCPU(pid int) func() float64 {
	start, ok := cpuSeconds(pid)
	return func() float64 {
		now, ok2 := cpuSeconds(pid)
		if pid <= 0 || !ok || !ok2 {
			return 0
		}
		return now - start
	}
}

// rssKiB reads VmRSS of a process, 0 when unknown.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
