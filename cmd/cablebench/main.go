// Command cablebench is Cablehub's load tool. This first version measures
// connections: it opens N WebSocket clients against a server on loopback,
// each waiting for its welcome and subscribing to a public stream, and
// reports the connect+welcome+subscribe rate and the server's resident
// memory per idle subscribed connection (read from /proc/<pid>).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
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
}

func run() error {
	target := flag.String("url", "ws://127.0.0.1:8080/cable", "WebSocket URL (loopback only)")
	clients := flag.Int("clients", 1000, "number of clients (at most 20000)")
	concurrency := flag.Int("concurrency", 64, "connections opened at once")
	stream := flag.String("stream", "bench", "public stream each client subscribes to")
	protocol := flag.String("protocol", "actioncable-v1-json", "subprotocol")
	pid := flag.Int("pid", 0, "server process id, for RSS (0: not measured)")
	settle := flag.Duration("settle", 2*time.Second, "wait before reading RSS after connecting")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall time limit")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()

	u, err := url.Parse(*target)
	if err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("--url must point at loopback, not %q", u.Hostname())
	}
	if *clients < 1 || *clients > 20000 {
		return errors.New("--clients must be 1..20000")
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
	dialer := websocket.Dialer{Subprotocols: []string{*protocol}, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}
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
				c, err := connect(ctx, &dialer, *target, sub, confirm)
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
	res.ConnectsPerSec = float64(res.Connected) / res.ConnectSeconds
	if *pid > 0 {
		time.Sleep(*settle)
		res.RSSAfterKiB = rssKiB(*pid)
		if res.Connected > 0 {
			res.RSSPerConnBytes = float64(res.RSSAfterKiB-res.RSSBeforeKiB) * 1024 / float64(res.Connected)
		}
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
	} else {
		fmt.Fprintf(os.Stderr, "\r")
		fmt.Printf("connected %d/%d in %.2fs: %.0f connect+welcome+subscribe/s\n", res.Connected, res.Clients, res.ConnectSeconds, res.ConnectsPerSec)
		if *pid > 0 {
			fmt.Printf("server RSS %d KiB -> %d KiB: %.1f KiB per connection\n", res.RSSBeforeKiB, res.RSSAfterKiB, res.RSSPerConnBytes/1024)
		}
	}
	if firstErr != nil {
		return fmt.Errorf("after %d connections: %v", res.Connected, firstErr)
	}
	return nil
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
