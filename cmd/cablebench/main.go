// Command cablebench is Cablehub's load tool. It opens N WebSocket clients
// against servers on loopback (spread over the --url list), each waiting
// for its welcome and subscribing to a public stream, and reports the
// connect+welcome+subscribe rate and the server's resident memory per idle
// subscribed connection (read from /proc/<pid>). With --messages it then
// publishes through the REST API (--api, at --rate or back to back) and
// reports delivered/expected, publish→receive latency percentiles and
// deliveries/s; it exits non-zero when anything is lost.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cablebench:", err)
		os.Exit(1)
	}
}

type result struct {
	Clients         int     `json:"clients"`
	Connected       int     `json:"connected"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	ConnectsPerSec  float64 `json:"connects_per_sec"`
	RSSBeforeKiB    int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB     int64   `json:"rss_after_kib,omitempty"`
	RSSPerConnBytes float64 `json:"rss_per_conn_bytes,omitempty"`

	Messages        int                `json:"messages,omitempty"`
	PublishSeconds  float64            `json:"publish_seconds,omitempty"`
	PublishesPerSec float64            `json:"publishes_per_sec,omitempty"`
	Expected        int64              `json:"expected,omitempty"`
	Delivered       int64              `json:"delivered,omitempty"`
	DeliveriesPerS  float64            `json:"deliveries_per_sec,omitempty"`
	LatencyMs       map[string]float64 `json:"latency_ms,omitempty"`
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
	stream := flag.String("stream", "bench", "public stream each client subscribes to")
	protocol := flag.String("protocol", "actioncable-v1-json", "subprotocol")
	pid := flag.Int("pid", 0, "server process id, for RSS (0: not measured)")
	settle := flag.Duration("settle", 2*time.Second, "wait before reading RSS after connecting")
	api := flag.String("api", "", "REST API base for publishing, e.g. http://127.0.0.1:8080/api (loopback only)")
	token := flag.String("token", "", "API bearer token")
	messages := flag.Int("messages", 0, "publications to send (at most 1000000)")
	rate := flag.Float64("rate", 0, "publications per second (0: back to back)")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall time limit")
	asJSON := flag.Bool("json", false, "print the result as JSON")
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
	if *messages > 0 {
		if *api == "" {
			return errors.New("--messages needs --api")
		}
		if err := checkLoopback(*api); err != nil {
			return fmt.Errorf("--api: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := result{Clients: *clients}
	if *pid > 0 {
		res.RSSBeforeKiB = rssKiB(*pid)
	}
	ident, _ := json.Marshal(map[string]string{"channel": "$pubsub", "stream_name": *stream})
	sub, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": string(ident)})
	confirm := `{"type":"confirm_subscription","identifier":` + strconv.Quote(string(ident)) + `}`

	conns := make([]*websocket.Conn, *clients)
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	dialer := websocket.Dialer{Subprotocols: []string{*protocol}, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 512}
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
				c, err := connect(ctx, &dialer, urls[i%len(urls)], sub, confirm)
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
				c.Close()
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
		if err := publishPhase(ctx, &res, conns, *api, *token, *stream, *messages, *rate, *concurrency, *asJSON); err != nil {
			report(res, *asJSON, *pid > 0)
			return err
		}
	}
	report(res, *asJSON, *pid > 0)
	if res.Delivered < res.Expected {
		return fmt.Errorf("lost %d of %d deliveries", res.Expected-res.Delivered, res.Expected)
	}
	return nil
}

// publishPhase publishes messages carrying their send time and collects,
// from every client, how long each took to arrive.
func publishPhase(ctx context.Context, res *result, conns []*websocket.Conn, api, token, stream string, messages int, rate float64, concurrency int, quiet bool) error {
	res.Messages = messages
	res.Expected = int64(messages) * int64(len(conns))
	var delivered atomic.Int64
	latencies := make([][]time.Duration, len(conns))
	var readers sync.WaitGroup
	for i, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			lat := make([]time.Duration, 0, messages)
			for len(lat) < messages {
				c.SetReadDeadline(time.Now().Add(15 * time.Second))
				_, data, err := c.ReadMessage()
				if err != nil {
					break
				}
				i := bytes.Index(data, []byte(`"t":`))
				if i < 0 || !bytes.Contains(data, []byte(`"message":{`)) {
					continue // pings and other frames
				}
				rest := data[i+4:]
				j := bytes.IndexAny(rest, ",}")
				sent, err := strconv.ParseInt(string(rest[:j]), 10, 64)
				if err != nil {
					continue
				}
				lat = append(lat, time.Duration(time.Now().UnixNano()-sent))
				delivered.Add(1)
			}
			latencies[i] = lat
		}()
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	var sent atomic.Int64
	var pubErr error
	var errOnce sync.Once
	start := time.Now()
	var pubs sync.WaitGroup
	for w := range concurrency {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for {
				n := sent.Add(1) - 1
				if n >= int64(messages) || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				data := fmt.Sprintf(`{"n":%d,"t":%d}`, n, time.Now().UnixNano())
				body, _ := json.Marshal(map[string]string{"stream": stream, "data": data})
				req, _ := http.NewRequestWithContext(ctx, "POST", api+"/publish", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != 201 {
						err = fmt.Errorf("publish answered %d", resp.StatusCode)
					}
				}
				if err != nil {
					errOnce.Do(func() { pubErr = err })
					return
				}
				if !quiet && n%5000 == 0 && w == 0 {
					fmt.Fprintf(os.Stderr, "\rpublished %d/%d, delivered %d", n, messages, delivered.Load())
				}
			}
		}()
	}
	pubs.Wait()
	res.PublishSeconds = time.Since(start).Seconds()
	res.PublishesPerSec = float64(messages) / res.PublishSeconds
	readers.Wait()
	total := time.Since(start).Seconds()
	res.Delivered = delivered.Load()
	res.DeliveriesPerS = float64(res.Delivered) / total
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		pct := func(p float64) float64 {
			return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
		}
		res.LatencyMs = map[string]float64{"p50": pct(.5), "p90": pct(.9), "p99": pct(.99), "p99.9": pct(.999), "max": pct(1)}
	}
	if !quiet {
		fmt.Fprintln(os.Stderr)
	}
	return pubErr
}

func report(res result, asJSON, rss bool) {
	if asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Printf("connected %d/%d in %.2fs: %.0f connect+welcome+subscribe/s\n", res.Connected, res.Clients, res.ConnectSeconds, res.ConnectsPerSec)
	if rss {
		fmt.Printf("server RSS %d KiB -> %d KiB: %.1f KiB per connection\n", res.RSSBeforeKiB, res.RSSAfterKiB, res.RSSPerConnBytes/1024)
	}
	if res.Messages > 0 {
		fmt.Printf("published %d in %.2fs (%.0f/s); delivered %d/%d (%.0f deliveries/s)\n",
			res.Messages, res.PublishSeconds, res.PublishesPerSec, res.Delivered, res.Expected, res.DeliveriesPerS)
		l := res.LatencyMs
		fmt.Printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", l["p50"], l["p90"], l["p99"], l["p99.9"], l["max"])
	}
}

// connect opens one client and waits for its welcome and its subscription's
// confirmation.
func connect(ctx context.Context, d *websocket.Dialer, target string, sub []byte, confirm string) (*websocket.Conn, error) {
	c, _, err := d.DialContext(ctx, target, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := waitFor(c, `{"type":"welcome"`); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.WriteMessage(websocket.TextMessage, sub); err != nil {
		c.Close()
		return nil, err
	}
	if err := waitFor(c, confirm); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

func waitFor(c *websocket.Conn, prefix string) error {
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if strings.HasPrefix(string(data), prefix) {
			return nil
		}
		if strings.HasPrefix(string(data), `{"type":"disconnect"`) || strings.HasPrefix(string(data), `{"type":"reject`) {
			return fmt.Errorf("server answered %s", data)
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
