package rpc

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// countingMetrics records what the Invoker reports.
type countingMetrics struct {
	pending, inFlight, maxInFlight atomic.Int64
	retries                        atomic.Int64
	mu                             sync.Mutex
	done                           []codes.Code
}

func (m *countingMetrics) Pending(d int) { m.pending.Add(int64(d)) }
func (m *countingMetrics) InFlight(d int) {
	n := m.inFlight.Add(int64(d))
	for {
		cur := m.maxInFlight.Load()
		if n <= cur || m.maxInFlight.CompareAndSwap(cur, n) {
			return
		}
	}
}
func (m *countingMetrics) Retry(string, codes.Code) { m.retries.Add(1) }
func (m *countingMetrics) Done(_ string, c codes.Code, _ time.Duration) {
	m.mu.Lock()
	m.done = append(m.done, c)
	m.mu.Unlock()
}

// TestHTTPConnectionRefusedRetried: an unreachable back end is
// UNAVAILABLE, retried with backoff until the command budget.
func TestHTTPConnectionRefusedRetried(t *testing.T) {
	m := &countingMetrics{}
	h := newTestHTTP(t, HTTPOptions{URL: "http://" + freeAddr(t) + "/rpc", CommandTimeout: 1500 * time.Millisecond, Metrics: m})
	start := time.Now()
	_, err := h.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{})
	elapsed := time.Since(start)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	if n := m.retries.Load(); n < 2 {
		t.Errorf("%d retries, want at least 2 (100 ms, 200 ms …)", n)
	}
	if elapsed < 300*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("gave up after %v; want between the first two delays and well within bounds", elapsed)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.done) != 1 || m.done[0] != codes.Unavailable {
		t.Errorf("Done codes = %v, want [Unavailable]", m.done)
	}
}

// TestHTTPTimeouts: the per-request timeout is DEADLINE_EXCEEDED and not
// retried; so is the command budget when it is shorter.
func TestHTTPTimeouts(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.ReadAll(r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	for _, opts := range []HTTPOptions{
		{HTTPTimeout: 200 * time.Millisecond, RequestTimeout: time.Hour},
		{RequestTimeout: 200 * time.Millisecond},
		{CommandTimeout: 200 * time.Millisecond},
	} {
		hits.Store(0)
		opts.URL = srv.URL
		h := newTestHTTP(t, opts)
		start := time.Now()
		_, err := h.Command(ctxT(t), "s", &anycablepb.CommandMessage{})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("%+v: err = %v, want DeadlineExceeded", opts, err)
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("%+v: took %v, want about 200 ms (not the 3 s default)", opts, d)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("%+v: %d requests, want 1", opts, n)
		}
	}
}

func TestHTTPRequestTimeoutPrecedence(t *testing.T) {
	for _, tc := range []struct {
		opts HTTPOptions
		want time.Duration
	}{
		{HTTPOptions{}, 3000 * time.Millisecond},
		{HTTPOptions{RequestTimeout: time.Second}, time.Second},
		{HTTPOptions{HTTPTimeout: 2 * time.Second, RequestTimeout: time.Second}, 2 * time.Second},
		{HTTPOptions{HTTPTimeout: -1, RequestTimeout: -1}, 3000 * time.Millisecond},
	} {
		if got := httpRequestTimeout(tc.opts); got != tc.want {
			t.Errorf("httpRequestTimeout(%+v) = %v, want %v", tc.opts, got, tc.want)
		}
	}
}

func TestHTTPCallerCancel(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a gone client only once the body is read
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() { <-arrived; cancel() }()
	if _, err := h.Connect(ctx, "s", &anycablepb.ConnectionRequest{}); status.Code(err) != codes.Canceled {
		t.Errorf("err = %v, want Canceled", err)
	}
	if s := h.breaker.currentState(); s != gobreaker.StateClosed {
		t.Errorf("breaker %v after a cancelled call", s)
	}
}

// TestHTTPTLS: a certificate the client does not trust is
// UNAUTHENTICATED and not retried; with the right roots the call works.
func TestHTTPTLS(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, `{"status":1}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	defer srv.Close()
	m := &countingMetrics{}
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL, Metrics: m})
	if _, err := h.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("untrusted certificate: %v, want Unauthenticated", err)
	}
	if m.retries.Load() != 0 || hits.Load() != 0 {
		t.Errorf("retries %d, hits %d; want none", m.retries.Load(), hits.Load())
	}

	// Plain HTTP spoken to a TLS client's server: also a TLS failure.
	plain, _ := recordingServer(t, `{"status":1}`)
	h3 := newTestHTTP(t, HTTPOptions{URL: strings.Replace(plain.URL, "http://", "https://", 1)})
	if _, err := h3.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("https to a plain server: %v, want Unauthenticated", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsConf.RootCAs = roots
	h2 := newTestHTTP(t, HTTPOptions{URL: srv.URL, TLSConfig: tlsConf})
	if resp, err := h2.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{}); err != nil || resp.GetStatus() != anycablepb.Status_SUCCESS {
		t.Errorf("trusted: %v, %v", resp, err)
	}
}

func TestHTTPClose(t *testing.T) {
	srv, reqs := recordingServer(t, `{"status":1}`)
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("after Close: %v, want Unavailable", err)
	}
	select {
	case r := <-reqs:
		t.Errorf("request %s after Close", r.path)
	default:
	}
}

// TestHTTPConcurrency: the shared semaphore keeps at most Concurrency
// requests at the back end.
func TestHTTPConcurrency(t *testing.T) {
	var cur, peak atomic.Int32
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, `{"status":1}`)
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL, Concurrency: 2, HTTPTimeout: 15 * time.Second, CommandTimeout: 15 * time.Second})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := h.Command(ctx, "s", &anycablepb.CommandMessage{})
			errs <- err
		})
	}
	<-entered
	<-entered
	// Two are in; give the other three every chance to (wrongly) enter.
	select {
	case <-entered:
		t.Error("a third request reached the back end")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak in flight %d, want 2", p)
	}
}

// TestHTTPBreakerOpensAndRecovers drives the breaker through a back end
// that drops connections (transport failures), then recovers.
func TestHTTPBreakerOpensAndRecovers(t *testing.T) {
	var down atomic.Bool
	var hits atomic.Int32
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if down.Load() {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close() // no response at all
			}
			return
		}
		_, _ = io.WriteString(w, `{"status":1}`)
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{
		URL:            srv.URL,
		CommandTimeout: 50 * time.Millisecond, // one attempt per call
		Breaker:        BreakerOptions{OpenFor: 500 * time.Millisecond, Probes: 2},
	})
	ctx := ctxT(t)
	for i := range DefaultBreakerMinRequests {
		if _, err := h.Command(ctx, "s", &anycablepb.CommandMessage{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("call %d: %v, want Unavailable", i, err)
		}
	}
	if s := h.breaker.currentState(); s != gobreaker.StateOpen {
		t.Fatalf("breaker %v after %d failures, want open", s, hits.Load())
	}
	before := hits.Load()
	_, err := h.Command(ctx, "s", &anycablepb.CommandMessage{})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "http rpc is temporarily unavailable") {
		t.Errorf("open breaker: %v", err)
	}
	if hits.Load() != before {
		t.Error("a request reached the back end while the breaker was open")
	}

	down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := h.Command(ctx, "s", &anycablepb.CommandMessage{})
		if err == nil && resp.GetStatus() == anycablepb.Status_SUCCESS {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker did not let a probe through: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := h.Command(ctx, "s", &anycablepb.CommandMessage{}); err != nil {
		t.Fatal(err)
	}
	if s := h.breaker.currentState(); s != gobreaker.StateClosed {
		t.Errorf("breaker %v after 2 successful probes, want closed", s)
	}
}

// Non-200 answers are the application's failures, not the transport's:
// they never open the breaker.
func TestHTTPBreakerIgnoresHTTPErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
	for range 2 * DefaultBreakerMinRequests {
		if _, err := h.Command(ctxT(t), "s", &anycablepb.CommandMessage{}); status.Code(err) != codes.Unknown {
			t.Fatalf("err = %v, want Unknown", err)
		}
	}
	if s := h.breaker.currentState(); s != gobreaker.StateClosed {
		t.Errorf("breaker %v, want closed", s)
	}
}
