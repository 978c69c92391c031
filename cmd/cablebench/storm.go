package main

// The storm subcommand: a reconnect storm, what a server sees after a
// deploy or a network blip when every client reconnects at once. All
// --clients clients dial together (no --concurrency limit), each waiting
// for its welcome and subscribing; a client the server refuses retries
// with jittered exponential backoff, as @anycable/core's clients do, so
// the storm ends when every client is subscribed (or --timeout passes) and
// "time until all subscribed" is defined.
//
// Clients dial from 127.0.0.1 with ports the kernel picks at connect():
// such a port is shared between destinations, and loopback TIME_WAIT
// sockets are reused (net.ipv4.tcp_tw_reuse=2, the default), so 20,000
// clients and their retries fit in the 28,232 default ephemeral ports; a
// client that finds none is counted as a client_limit refusal, not hidden.
// What the server's listen backlog (net.core.somaxconn) drops is part of
// the storm: the kernel retransmits the SYN after 1 s, 3 s, ..., and the
// client waits for it, up to --attempt_timeout.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// stormOptions are the storm's settings, checked.
type stormOptions struct {
	targets        []string // the URL client i dials, its token included
	subs           []subscription
	protocol       string
	attemptTimeout time.Duration
	backoff        time.Duration // first retry's base delay
	backoffMax     time.Duration
	pid            int       // server process, 0: not measured
	progress       io.Writer // nil: no progress lines
}

// stormResult is what `cablebench storm` reports.
type stormResult struct {
	Clients    int   `json:"clients"`
	Subscribed int   `json:"subscribed"`
	Attempts   int64 `json:"attempts"`
	// Refusals counts failed attempts by kind: connection_refused, reset,
	// closed (EOF or a close frame without a message), timeout, http_<code>
	// (a non-101 answer), disconnect, reject_subscription, client_limit
	// (no local port or file descriptor) and other; RefusalExamples holds
	// the first error of each kind.
	Refusals        int64             `json:"refusals"`
	RefusalsByKind  map[string]int64  `json:"refusals_by_kind"`
	RefusalExamples map[string]string `json:"refusal_examples,omitempty"`
	// AllSubscribedSeconds is from the start of the storm to the last
	// client's confirmation; null when not every client subscribed within
	// --timeout. ElapsedSeconds is until the last client subscribed or
	// gave up.
	AllSubscribedSeconds *float64 `json:"all_subscribed_seconds"`
	ElapsedSeconds       float64  `json:"elapsed_seconds"`
	// ConnectMs is per subscribed client, from its first dial to its
	// confirm_subscription, retries included; HandshakeMs is per attempt
	// that got an answer to its upgrade request, from the dial to the 101.
	ConnectMs   map[string]float64 `json:"connect_ms,omitempty"`
	HandshakeMs map[string]float64 `json:"handshake_ms,omitempty"`
	// Server CPU (user+system, from /proc/<pid>/stat) during the storm,
	// and its RSS before and right after; cablebench's own CPU alike.
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
	RSSBeforeKiB     int64   `json:"server_rss_before_kib,omitempty"`
	RSSAfterKiB      int64   `json:"server_rss_after_kib,omitempty"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds,omitempty"`
}

// runStorm is `cablebench storm`: it fails when a client is not
// subscribed within --timeout, or the server closes one during --hold.
func runStorm(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cablebench storm [flags]\n\nA reconnect storm: --clients clients dial and subscribe at once; refused ones retry with jittered\nexponential backoff until all are subscribed or --timeout passes.\n\nFlags:")
		fs.PrintDefaults()
	}
	targets := fs.String("url", "ws://127.0.0.1:8080/cable", "WebSocket URLs, comma-separated; clients are spread over them (loopback only)")
	clients := fs.Int("clients", 10000, "number of clients (1..20000)")
	stream := fs.String("stream", "bench", "stream the clients subscribe to (with --streams N: <stream>-0 .. <stream>-N-1, client i on i%N)")
	nStreams := fs.Int("streams", 1, "number of streams, 1..1000")
	signSecret := fs.String("signed", "", "subscribe with signed stream names made with this secret (the server's --streams_secret) instead of public ones")
	jwtSecret := fs.String("jwt", "", "identify each client by an HS256 JWT signed with this secret (the server's --jwt_secret), ext {\"user\":\"bench-<i>\"}")
	jwtParam := fs.String("jwt_param", "jid", "query parameter carrying the JWT (the server's --jwt_param)")
	jwtTTL := fs.Duration("jwt_ttl", time.Hour, "the tokens' exp, from now")
	protocol := fs.String("protocol", "actioncable-v1-json", "subprotocol")
	pid := fs.Int("pid", 0, "server process id, for its CPU seconds during the storm and RSS (0: not measured)")
	timeout := fs.Duration("timeout", 2*time.Minute, "time limit of the storm, retries included")
	attemptTimeout := fs.Duration("attempt_timeout", 10*time.Second, "time limit of one attempt: TCP connect, upgrade, welcome and confirmation")
	backoff := fs.Duration("backoff", 500*time.Millisecond, "base of the retry delay: after the n-th refusal (from 0) a client waits uniformly between base·2^n and twice that, ±50% (@anycable/core's backoffWithJitter; its default base is its 3 s ping interval)")
	backoffMax := fs.Duration("backoff_max", 5*time.Second, "cap of the retry delay")
	hold := fs.Duration("hold", 0, "once all are subscribed, keep the clients connected this long, reading them (at most 10m); a connection the server closes meanwhile is an error")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *clients < 1 || *clients > 20000:
		return errors.New("--clients must be 1..20000")
	case *nStreams < 1 || *nStreams > 1000:
		return errors.New("--streams must be 1..1000")
	case *timeout <= 0 || *attemptTimeout <= 0 || *jwtTTL <= 0:
		return errors.New("--timeout, --attempt_timeout and --jwt_ttl must be positive")
	case *backoff <= 0 || *backoffMax < *backoff:
		return errors.New("--backoff must be positive and at most --backoff_max")
	case *hold < 0 || *hold > 10*time.Minute:
		return errors.New("--hold must be 0..10m")
	}
	o := stormOptions{protocol: *protocol, attemptTimeout: *attemptTimeout, backoff: *backoff, backoffMax: *backoffMax, pid: *pid}
	if !*asJSON {
		o.progress = stderr
	}
	var err error
	if o.targets, err = stormTargets(strings.Split(*targets, ","), *clients, *jwtSecret, *jwtParam, time.Now().Add(*jwtTTL)); err != nil {
		return err
	}
	for i := range *nStreams {
		name := *stream
		if *nStreams > 1 {
			name = fmt.Sprintf("%s-%d", *stream, i)
		}
		o.subs = append(o.subs, newSubscription(name, *signSecret))
	}
	if *pid > 0 {
		if _, ok := cpuSeconds(*pid); !ok {
			return fmt.Errorf("--pid %d: no /proc/%d/stat to read", *pid, *pid)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, conns := storm(ctx, o)
	defer func() {
		for _, c := range conns {
			c.nc.Close()
		}
	}()
	reportStorm(stdout, res, *asJSON)
	if res.Subscribed < res.Clients {
		return fmt.Errorf("%d of %d clients not subscribed within --timeout %s", res.Clients-res.Subscribed, res.Clients, *timeout)
	}
	if *hold > 0 {
		if err := holdConns(conns, *hold); err != nil {
			return fmt.Errorf("during --hold: %v", err)
		}
	}
	return nil
}

// stormTargets spreads n clients over urls (loopback only) and, with a
// JWT secret, adds each client's token as the query parameter param:
// HS256, ext the identifiers JSON {"user":"bench-<i>"}, and exp. Tokens
// are made before the storm, as real clients have theirs already.
func stormTargets(urls []string, n int, secret, param string, exp time.Time) ([]string, error) {
	for _, u := range urls {
		if err := checkLoopback(u); err != nil {
			return nil, fmt.Errorf("--url: %v", err)
		}
	}
	targets := make([]string, n)
	for i := range targets {
		targets[i] = urls[i%len(urls)]
		if secret == "" {
			continue
		}
		u, err := url.Parse(targets[i])
		if err != nil {
			return nil, err
		}
		ext := `{"user":"bench-` + strconv.Itoa(i) + `"}`
		token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"ext": ext, "exp": exp.Unix()}).SignedString([]byte(secret))
		if err != nil {
			return nil, err
		}
		q := u.Query()
		q.Set(param, token)
		u.RawQuery = q.Encode()
		targets[i] = u.String()
	}
	return targets, nil
}

// stormClient is one client's record, written by its goroutine only.
type stormClient struct {
	conn         *benchConn
	firstDial    time.Duration // since the start of the storm
	subscribedAt time.Duration // since the start; 0: not subscribed
	handshakes   []time.Duration
}

// storm releases every client at once and waits until each is subscribed
// or has given up at ctx's end; it returns the subscribed connections.
func storm(ctx context.Context, o stormOptions) (stormResult, []*benchConn) {
	res := stormResult{Clients: len(o.targets)}
	clients := make([]stormClient, len(o.targets))
	tally := refusals{byKind: map[string]int64{}, example: map[string]string{}}
	var attempts, subscribed atomic.Int64
	gate := make(chan struct{})
	var start time.Time // written before gate closes
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			o.runClient(ctx, &clients[i], o.targets[i], o.subs[i%len(o.subs)], start, &attempts, &tally)
			if clients[i].conn != nil {
				subscribed.Add(1)
			}
		}()
	}
	stopProgress := o.showProgress(res.Clients, &subscribed, &tally)
	var cpu0, self0 float64
	if o.pid > 0 {
		cpu0, _ = cpuSeconds(o.pid)
		res.RSSBeforeKiB = rssKiB(o.pid)
	}
	self0, _ = cpuSeconds(os.Getpid())
	start = time.Now()
	close(gate)
	wg.Wait()
	res.ElapsedSeconds = time.Since(start).Seconds()
	if o.pid > 0 {
		cpu1, _ := cpuSeconds(o.pid)
		res.ServerCPUSeconds = cpu1 - cpu0
		res.RSSAfterKiB = rssKiB(o.pid)
	}
	if self1, ok := cpuSeconds(os.Getpid()); ok {
		res.ClientCPUSeconds = self1 - self0
	}
	stopProgress()

	var conns []*benchConn
	var connect, handshakes []time.Duration
	var last time.Duration
	for _, c := range clients {
		handshakes = append(handshakes, c.handshakes...)
		if c.conn == nil {
			continue
		}
		conns = append(conns, c.conn)
		connect = append(connect, c.subscribedAt-c.firstDial)
		last = max(last, c.subscribedAt)
	}
	res.Subscribed = len(conns)
	if res.Subscribed == res.Clients {
		s := last.Seconds()
		res.AllSubscribedSeconds = &s
	}
	res.Attempts = attempts.Load()
	res.Refusals, res.RefusalsByKind, res.RefusalExamples = tally.total(), tally.byKind, tally.example
	res.ConnectMs, res.HandshakeMs = percentiles(connect), percentiles(handshakes)
	return res, conns
}

// runClient tries until subscribed or ctx ends, waiting between attempts
// as backoffDelay says. An attempt cut short by ctx's end is no refusal.
func (o *stormOptions) runClient(ctx context.Context, c *stormClient, target string, sub subscription, start time.Time, attempts *atomic.Int64, tally *refusals) {
	c.firstDial = time.Since(start)
	for n := 0; ; n++ {
		attempts.Add(1)
		conn, handshake, err := o.attempt(ctx, target, sub)
		if handshake > 0 {
			c.handshakes = append(c.handshakes, handshake)
		}
		if err == nil {
			c.conn, c.subscribedAt = conn, time.Since(start)
			return
		}
		if stormOver(ctx) {
			return
		}
		tally.add(err)
		t := time.NewTimer(backoffDelay(n, o.backoff, o.backoffMax))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// stormOver reports whether ctx has ended or its deadline has passed:
// an attempt's socket deadline is ctx's, and may fire before ctx's own
// timer does.
func stormOver(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(d)
}

// attempt is one dial, upgrade, welcome and subscription, within
// --attempt_timeout; handshake is how long the upgrade took to be
// answered, 0 if it was not.
func (o *stormOptions) attempt(ctx context.Context, target string, sub subscription) (c *benchConn, handshake time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.attemptTimeout)
	defer cancel()
	t0 := time.Now()
	c, err = dial(ctx, target, "", o.protocol)
	var status *statusError
	if err == nil || errors.As(err, &status) {
		handshake = time.Since(t0)
	}
	if err != nil {
		return nil, handshake, err
	}
	deadline, _ := ctx.Deadline()
	if err := c.subscribe(deadline, sub); err != nil {
		c.nc.Close()
		return nil, handshake, err
	}
	return c, handshake, nil
}

// backoffDelay is how long a client waits after its n-th refusal (n from
// 0), shaped as @anycable/core's backoffWithJitter: uniform between
// base·2^n and twice that, then ±50% jitter, at most limit. The jitter is
// what spreads a storm's retries out.
func backoffDelay(n int, base, limit time.Duration) time.Duration {
	lo := float64(base) * math.Pow(2, float64(min(n, 30)))
	d := (lo + lo*rand.Float64()) * (1 + (rand.Float64() - 0.5))
	return time.Duration(min(d, float64(limit)))
}

// refusals counts failed attempts by kind (refusalKind), keeping the
// first error of each.
type refusals struct {
	mu      sync.Mutex
	byKind  map[string]int64
	example map[string]string
}

func (r *refusals) add(err error) {
	kind := refusalKind(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKind[kind]++
	if _, ok := r.example[kind]; !ok {
		r.example[kind] = err.Error()
	}
}

func (r *refusals) total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.byKind {
		n += v
	}
	return n
}

// refusalKind names why an attempt failed, for the report.
func refusalKind(err error) string {
	var refusal *refusalError
	var status *statusError
	var ne net.Error
	switch {
	case errors.As(err, &refusal):
		return refusal.typ
	case errors.As(err, &status):
		if f := strings.Fields(status.status); len(f) > 1 {
			return "http_" + f[1]
		}
		return "http"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errClosed):
		return "closed"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "client_limit"
	}
	return "other"
}

// showProgress prints subscribed/refused counts to o.progress every second
// until the returned function is called.
func (o *stormOptions) showProgress(clients int, subscribed *atomic.Int64, tally *refusals) (stop func()) {
	if o.progress == nil {
		return func() {}
	}
	return everySecond(o.progress, func() string {
		return fmt.Sprintf("%d/%d subscribed, %d refusals", subscribed.Load(), clients, tally.total())
	})
}

// holdConns keeps the subscribed connections for hold, reading them (the
// server's pings) through receive, which fails if the server closes one.
func holdConns(conns []*benchConn, hold time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), hold+10*time.Second)
	defer cancel()
	end := time.Now().Add(hold)
	return receive(ctx, conns, func(int, []byte) {}, func() bool { return !time.Now().Before(end) }, hold+time.Second)
}

// cpuSeconds is a process's user+system CPU time from /proc/<pid>/stat
// (fields 14 and 15, in USER_HZ ticks: 100 a second on Linux).
func cpuSeconds(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after it start with the state, field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(utime+stime) / 100, true
}

func reportStorm(w io.Writer, res stormResult, asJSON bool) {
	if asJSON {
		json.NewEncoder(w).Encode(res)
		return
	}
	all := fmt.Sprintf("not all within the timeout (stopped after %.2fs)", res.ElapsedSeconds)
	if res.AllSubscribedSeconds != nil {
		all = fmt.Sprintf("all within %.2fs", *res.AllSubscribedSeconds)
	}
	kinds := make([]string, 0, len(res.RefusalsByKind))
	for k := range res.RefusalsByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	byKind := make([]string, len(kinds))
	for i, k := range kinds {
		byKind[i] = fmt.Sprintf("%s %d", k, res.RefusalsByKind[k])
	}
	fmt.Fprintf(w, "storm: %d/%d subscribed, %s; %d attempts, %d refusals", res.Subscribed, res.Clients, all, res.Attempts, res.Refusals)
	if len(byKind) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(byKind, ", "))
	}
	fmt.Fprintln(w)
	for _, row := range []struct {
		name string
		l    map[string]float64
	}{{"connect ms (first dial → confirm_subscription, per client)", res.ConnectMs}, {"handshake ms (dial → 101, per attempt)", res.HandshakeMs}} {
		if l := row.l; l != nil {
			fmt.Fprintf(w, "%s: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n", row.name, l["p50"], l["p90"], l["p99"], l["p99.9"], l["max"])
		}
	}
	if res.RSSAfterKiB > 0 {
		fmt.Fprintf(w, "server: %.2f CPU seconds during the storm, RSS %d KiB -> %d KiB\n", res.ServerCPUSeconds, res.RSSBeforeKiB, res.RSSAfterKiB)
	}
	fmt.Fprintf(w, "cablebench: %.2f CPU seconds\n", res.ClientCPUSeconds)
	for _, k := range kinds {
		fmt.Fprintf(w, "first %s: %s\n", k, res.RefusalExamples[k])
	}
}
