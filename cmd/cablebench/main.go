// Command cablebench is Cablehub's load tool. It opens N WebSocket clients
// against servers on loopback (spread over the --url list), each waiting
// for its welcome and subscribing to one of --streams public or --signed
// streams, and reports the connect+welcome+subscribe rate and the server's
// resident memory per idle subscribed connection (read from /proc/<pid>).
// With --rpc_channel the clients instead identify themselves by a user
// cookie (or query parameter) and subscribe to that application channel,
// so every connect and subscribe is an RPC call the server makes to its
// back end; nothing Cablehub-specific is then needed of the server (no
// $pubsub, no API unless publishing), so AnyCable can be measured alike.
// With --messages it then publishes through the REST API (--api), gRPC
// (--grpc) or one of AnyCable's broadcast adapters (--broadcast), at --rate or back to back, optionally --batch'ed, and reports
// delivered/expected, publish→receive latency percentiles, fan-out
// completion per message and deliveries/s; it exits non-zero when anything
// is lost.
//
// `cablebench storm` is a reconnect storm (storm.go): --clients clients
// (10,000 by default) dial and subscribe all at once, with --signed stream
// names and/or a --jwt token each; a refused client (connection refused or
// reset, a non-101 answer, a timeout, a disconnect or reject_subscription)
// retries with jittered exponential backoff as @anycable/core does. It
// reports the time until all are subscribed, connect and handshake time
// percentiles, refusals by kind, and the server's CPU seconds during the
// storm and RSS (--pid); it exits non-zero when not all are subscribed
// within --timeout.
//
// `cablebench rpc-backend` instead serves a minimal AnyCable RPC
// application over gRPC and HTTP (rpcbackend.go), for measuring a server's
// RPC hop.
//
// Its WebSocket client is its own (wsclient.go) and, on Linux, reads all
// connections through epoll (receive_linux.go), so that on a shared machine
// the cores go to the server being measured.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	run := run
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "rpc-backend":
			run = func() error { return runRPCBackend(os.Args[2:]) }
		case "storm":
			run = func() error { return runStorm(os.Args[2:], os.Stdout, os.Stderr) }
		}
	}
	flag.Usage = usage
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cablebench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(flag.CommandLine.Output(), `usage: cablebench [flags]              connect, subscribe, publish and measure
       cablebench storm [flags]        a reconnect storm (cablebench storm --help)
       cablebench rpc-backend [flags]  a minimal AnyCable RPC back end (cablebench rpc-backend --help)

Flags:
`)
	flag.PrintDefaults()
}

type result struct {
	Clients         int     `json:"clients"`
	RPCChannel      string  `json:"rpc_channel,omitempty"`
	Connected       int     `json:"connected"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	ConnectsPerSec  float64 `json:"connects_per_sec"`
	RSSBeforeKiB    int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB     int64   `json:"rss_after_kib,omitempty"`
	RSSPerConnBytes float64 `json:"rss_per_conn_bytes,omitempty"`

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
}

func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("%q is not a loopback address", raw)
	}
	return nil
}

func run() error {
	targets := flag.String("url", "ws://127.0.0.1:8080/cable", "WebSocket URLs, comma-separated; clients are spread over them (loopback only)")
	clients := flag.Int("clients", 1000, "number of clients (0..20000)")
	concurrency := flag.Int("concurrency", 64, "connections opened (and publishes sent) at once")
	stream := flag.String("stream", "bench", "stream the clients subscribe to (with --streams N: <stream>-0 .. <stream>-N-1, client i on i%N)")
	nStreams := flag.Int("streams", 1, "number of streams, 1..1000; publications go round-robin over them")
	signSecret := flag.String("signed", "", "subscribe with signed stream names made with this secret (--streams_secret) instead of public ones")
	protocol := flag.String("protocol", "actioncable-v1-json", "subprotocol")
	pid := flag.Int("pid", 0, "server process id, for RSS (0: not measured)")
	settle := flag.Duration("settle", 2*time.Second, "wait before reading RSS after connecting")
	api := flag.String("api", "", "REST API base for publishing, e.g. http://127.0.0.1:8080/api (loopback only)")
	grpcAddr := flag.String("grpc", "", "publish through gRPC at host:port instead of REST (loopback only)")
	bcast := flag.String("broadcast", "", "publish as an application does through a broadcast adapter instead of the API: http=<URL of /_broadcast> (with --token), redis=<Redis URL>, redisx=<Redis URL> or nats=<NATS URL> (loopback only)")
	bcastChannel := flag.String("broadcast_channel", "__anycable__", "with --broadcast redis, redisx or nats: the channel, stream or subject")
	batch := flag.Int("batch", 1, "publications per publish request")
	token := flag.String("token", "", "API bearer token")
	messages := flag.Int("messages", 0, "publications to send (at most 1000000)")
	rate := flag.Float64("rate", 0, "publications per second (0: back to back)")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall time limit")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	hold := flag.Duration("hold", 0, "keep the clients connected this long after measuring, for profiling the server (at most 10m)")
	rpcChannel := flag.String("rpc_channel", "", "subscribe to this application channel through the server's RPC back end (BenchRPCChannel with `cablebench rpc-backend`) instead of a $pubsub stream; client i is user bench-<i>")
	rpcUser := flag.String("rpc_user", "cookie", "with --rpc_channel, how a client names its user: cookie (Cookie: user=…) or query (?user=…)")
	flag.Parse()

	urls := strings.Split(*targets, ",")
	for _, u := range urls {
		if err := checkLoopback(u); err != nil {
			return fmt.Errorf("--url: %v", err)
		}
	}
	if *clients < 0 || *clients > 20000 {
		return errors.New("--clients must be 0..20000")
	}
	if *messages < 0 || *messages > 1_000_000 {
		return errors.New("--messages must be 0..1000000")
	}
	if *hold < 0 || *hold > 10*time.Minute {
		return errors.New("--hold must be 0..10m")
	}
	if *nStreams < 1 || *nStreams > 1000 {
		return errors.New("--streams must be 1..1000")
	}
	if *batch < 1 || *batch > 1000 {
		return errors.New("--batch must be 1..1000")
	}
	if *rpcChannel != "" && *signSecret != "" {
		return errors.New("--signed is for $pubsub streams, not --rpc_channel")
	}
	if *rpcUser != "cookie" && *rpcUser != "query" {
		return errors.New("--rpc_user must be cookie or query")
	}
	var pub publisher
	if *messages > 0 {
		var err error
		switch {
		case *bcast != "":
			if pub, err = newBroadcastPublisher(*bcast, *bcastChannel, *token, *concurrency); err != nil {
				return fmt.Errorf("--broadcast: %v", err)
			}
		case *grpcAddr != "":
			if err := checkLoopback("grpc://" + *grpcAddr); err != nil {
				return fmt.Errorf("--grpc: %v", err)
			}
			pub, err = newGRPCPublisher(*grpcAddr, *token)
		case *api != "":
			if err := checkLoopback(*api); err != nil {
				return fmt.Errorf("--api: %v", err)
			}
			pub = newRESTPublisher(*api, *token, *concurrency)
		default:
			return errors.New("--messages needs --api, --grpc or --broadcast")
		}
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := result{Clients: *clients, RPCChannel: *rpcChannel}
	if *pid > 0 {
		res.RSSBeforeKiB = rssKiB(*pid)
	}
	streams := make([]string, *nStreams)
	subs := make([]subscription, *nStreams)
	for i := range streams {
		streams[i] = *stream
		if *nStreams > 1 {
			streams[i] = fmt.Sprintf("%s-%d", *stream, i)
		}
		subs[i] = newSubscription(streams[i], *signSecret)
		if *rpcChannel != "" {
			subs[i] = newRPCSubscription(*rpcChannel, streams[i])
		}
	}

	conns := make([]*benchConn, *clients)
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *clients || ctx.Err() != nil {
					return
				}
				target, header := urls[i%len(urls)], ""
				var err error
				if *rpcChannel != "" {
					if target, header, err = identify(target, i, *rpcUser); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
				c, err := connect(ctx, target, header, *protocol, subs[i%len(subs)])
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				conns[i] = c
				if n := done.Add(1); n%1000 == 0 && !*asJSON {
					fmt.Fprintf(os.Stderr, "\r%d/%d connected", n, *clients)
				}
			}
		}()
	}
	wg.Wait()
	res.ConnectSeconds = time.Since(start).Seconds()
	res.Connected = int(done.Load())
	if res.ConnectSeconds > 0 {
		res.ConnectsPerSec = float64(res.Connected) / res.ConnectSeconds
	}
	if !*asJSON && *clients >= 1000 {
		fmt.Fprintln(os.Stderr)
	}
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	if firstErr != nil {
		return fmt.Errorf("after %d connections: %v", res.Connected, firstErr)
	}
	if *pid > 0 {
		time.Sleep(*settle)
		res.RSSAfterKiB = rssKiB(*pid)
		if res.Connected > 0 {
			res.RSSPerConnBytes = float64(res.RSSAfterKiB-res.RSSBeforeKiB) * 1024 / float64(res.Connected)
		}
	}
	if *messages > 0 {
		if err := publishPhase(ctx, &res, conns, pub, streams, *messages, *batch, *rate, *concurrency, *asJSON); err != nil {
			report(res, *asJSON, *pid > 0)
			return err
		}
	}
	report(res, *asJSON, *pid > 0)
	if *hold > 0 {
		time.Sleep(*hold)
	}
	if res.Delivered < res.Expected {
		return fmt.Errorf("lost %d of %d deliveries", res.Expected-res.Delivered, res.Expected)
	}
	return nil
}

// publishPhase publishes messages carrying their index and send time,
// round-robin over streams, and collects, from every client, how long each
// took to arrive.
func publishPhase(ctx context.Context, res *result, conns []*benchConn, pub publisher, streams []string, messages, batch int, rate float64, concurrency int, quiet bool) error {
	res.Messages = messages
	// Client i listens to stream i%len(streams); message n goes to stream
	// n%len(streams).
	perStream := make([]int64, len(streams))
	for i := range conns {
		perStream[i%len(streams)]++
	}
	for n := range messages {
		res.Expected += perStream[n%len(streams)]
	}
	var delivered atomic.Int64
	sentAt := make([]int64, messages)
	lastArrival := make([]atomic.Int64, messages)
	latencies := make([][]time.Duration, len(conns))
	onText := func(i int, data []byte) {
		now := time.Now().UnixNano()
		n, sent, ok := parseMessage(data)
		if !ok || n < 0 || n >= messages {
			return // pings and other frames
		}
		latencies[i] = append(latencies[i], time.Duration(now-sent))
		for {
			prev := lastArrival[n].Load()
			if prev >= now || lastArrival[n].CompareAndSwap(prev, now) {
				break
			}
		}
		delivered.Add(1)
	}
	var recvErr error
	received := make(chan struct{})
	go func() {
		defer close(received)
		recvErr = receive(ctx, conns, onText, func() bool { return delivered.Load() >= res.Expected }, 15*time.Second)
	}()

	var next atomic.Int64
	var pubErr error
	var errOnce sync.Once
	start := time.Now()
	stopProgress := make(chan struct{})
	if !quiet {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					fmt.Fprintf(os.Stderr, "\rpublished %d/%d, delivered %d/%d", min(next.Load(), int64(messages)), messages, delivered.Load(), res.Expected)
				}
			}
		}()
	}
	var pubs sync.WaitGroup
	for range concurrency {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for {
				first := int(next.Add(int64(batch)) - int64(batch))
				if first >= messages || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(first) / rate * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				items := make([]item, 0, batch)
				for n := first; n < min(first+batch, messages); n++ {
					t := time.Now().UnixNano()
					sentAt[n] = t
					items = append(items, item{stream: streams[n%len(streams)], data: fmt.Sprintf(`{"n":%d,"t":%d}`, n, t)})
				}
				if err := pub.publish(ctx, items); err != nil {
					errOnce.Do(func() { pubErr = err })
					return
				}
			}
		}()
	}
	pubs.Wait()
	res.PublishSeconds = time.Since(start).Seconds()
	res.PublishesPerSec = float64(messages) / res.PublishSeconds
	<-received
	close(stopProgress)
	total := time.Since(start).Seconds()
	res.Delivered = delivered.Load()
	res.DeliveriesPerS = float64(res.Delivered) / total
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	res.LatencyMs = percentiles(all)
	var fanout []time.Duration
	for n := range messages {
		if last := lastArrival[n].Load(); last > 0 {
			fanout = append(fanout, time.Duration(last-sentAt[n]))
		}
	}
	res.FanoutMs = percentiles(fanout)
	if !quiet {
		fmt.Fprintln(os.Stderr)
	}
	if pubErr != nil {
		return pubErr
	}
	if recvErr != nil && res.Delivered < res.Expected {
		return recvErr
	}
	return nil
}

// parseMessage finds {"n":..,"t":..} in a broadcast frame.
func parseMessage(data []byte) (n int, sent int64, ok bool) {
	i := bytes.Index(data, []byte(`"message":{"n":`))
	if i < 0 {
		return 0, 0, false
	}
	rest := data[i+len(`"message":{"n":`):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return 0, 0, false
	}
	rest = rest[j+1:]
	if !bytes.HasPrefix(rest, []byte(`"t":`)) {
		return 0, 0, false
	}
	rest = rest[4:]
	k := bytes.IndexByte(rest, '}')
	if k < 0 {
		return 0, 0, false
	}
	sent, err = strconv.ParseInt(string(rest[:k]), 10, 64)
	return n, sent, err == nil
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
	through := ""
	if res.RPCChannel != "" {
		through = " (Connect and subscribe to " + res.RPCChannel + " through RPC)"
	}
	fmt.Printf("connected %d/%d in %.2fs: %.0f connect+welcome+subscribe/s%s\n", res.Connected, res.Clients, res.ConnectSeconds, res.ConnectsPerSec, through)
	if rss {
		fmt.Printf("server RSS %d KiB -> %d KiB: %.1f KiB per connection\n", res.RSSBeforeKiB, res.RSSAfterKiB, res.RSSPerConnBytes/1024)
	}
	if res.Messages > 0 {
		fmt.Printf("published %d in %.2fs (%.0f/s); delivered %d/%d (%.0f deliveries/s)\n",
			res.Messages, res.PublishSeconds, res.PublishesPerSec, res.Delivered, res.Expected, res.DeliveriesPerS)
		for _, row := range []struct {
			name string
			l    map[string]float64
		}{{"latency", res.LatencyMs}, {"fan-out completion", res.FanoutMs}} {
			l := row.l
			if l == nil {
				continue
			}
			fmt.Printf("%s ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", row.name, l["p50"], l["p90"], l["p99"], l["p99.9"], l["max"])
		}
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
