package pusher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// hookRequest is one request a receiver got.
type hookRequest struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint that records requests and answers with
// answer(n) (n counting requests from 1; nil answers 200).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []hookRequest
	answer   func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, hookRequest{r.Header.Clone(), body})
		n := len(rc.requests)
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.answer != nil {
			code = rc.answer(n, r)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.requests...)
}

// events decodes every request's events, in the order they came.
func (rc *receiver) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range rc.got() {
		var p struct {
			TimeMS int64            `json:"time_ms"`
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		out = append(out, p.Events...)
	}
	return out
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var hookApp = &App{ID: "app-1", Key: "key-1", Secret: "psecret"}

// hookFixture is Webhooks under test with its metrics and log.
type hookFixture struct {
	*Webhooks
	sent, failed prometheus.Counter
	log          *syncBuffer
}

// newHooks builds Webhooks for urls with fast retries and a fixed clock;
// edit adjusts the options. They are closed after t.
func newHooks(t *testing.T, urls []string, edit func(*WebhookOptions)) *hookFixture {
	t.Helper()
	f := &hookFixture{
		sent:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "failed"}),
		log:    &syncBuffer{},
	}
	opts := WebhookOptions{
		URLs:       urls,
		Flush:      time.Hour,
		MinBackoff: time.Millisecond,
		MaxBackoff: 2 * time.Millisecond,
		Metrics:    &Metrics{WebhooksSent: f.sent, WebhooksFailed: f.failed},
		Log:        slog.New(slog.NewTextHandler(f.log, nil)),
		Now:        func() time.Time { return time.UnixMilli(1700000000123) },
	}
	if edit != nil {
		edit(&opts)
	}
	w, err := NewWebhooks(hookApp, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.Webhooks = w
	t.Cleanup(func() { f.closeWithin(t, 5*time.Second) })
	return f
}

func (f *hookFixture) closeWithin(t *testing.T, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f.Close(ctx)
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// wait polls cond for up to 5 seconds.
func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// noLeaks checks, after t and its other cleanups, that the goroutines
// are back to what they were.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d, were %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// whisper is the whisper data the node is given for a client frame on a
// Pusher connection: Codec's command data, tagged with member on a
// presence channel.
func whisper(t *testing.T, frame, member string) []byte {
	t.Helper()
	cmd, err := Codec{}.Decode([]byte(frame))
	if err != nil || cmd.Command != "whisper" {
		t.Fatalf("%s: %v %v", frame, cmd, err)
	}
	if member == "" {
		return cmd.Data
	}
	return Codec{}.TagWhisper(cmd.Data, member)
}

func TestWebhookWatchesPusherChannels(t *testing.T) {
	w := newHooks(t, []string{"http://127.0.0.1:1/hook"}, nil)
	for stream, want := range map[string]bool{
		"news": true, "private-orders": true, "presence-room": true, "private-encrypted-x": true,
		"#server-to-user-u1": false, "": false, "a b": false, strings.Repeat("x", MaxChannelName+1): false,
	} {
		if got := w.Watches(stream); got != want {
			t.Errorf("Watches(%q) = %v, want %v", stream, got, want)
		}
	}
}

// Each observer call becomes Pusher's event, byte for byte, in one batch
// in call order; calls with no Pusher event are left out.
func TestWebhookPayload(t *testing.T) {
	rc := newReceiver(t, nil)
	w := newHooks(t, []string{rc.URL + "/hook"}, nil)
	w.Occupied("presence-room")
	w.Joined("presence-room", "u1", json.RawMessage(`{"name":"Alice"}`))
	w.Joined("news", "u1", nil)
	w.Whispered("presence-room", "1.2", "u1", whisper(t, `{"event":"client-typing","channel":"presence-room","data":{"a":1, "b":"<x> & \\u003c \u003e"}}`, "u1"))
	w.Whispered("private-chat", "3.4", "", whisper(t, `{"event":"client-s","channel":"private-chat","data":"hello \"you\""}`, ""))
	w.Whispered("private-chat", "3.4", "", whisper(t, `{"event":"client-none","channel":"private-chat"}`, ""))
	w.Whispered("news", "5.6", "", whisper(t, `{"event":"client-x","channel":"news","data":1}`, ""))
	w.Whispered("private-chat", "3.4", "", []byte(`{"typing":true}`))
	w.Whispered("private-chat", "3.4", "", []byte(`not json`))
	w.Left("presence-room", "u1")
	w.Left("private-chat", "u1")
	w.Vacated("presence-room")
	w.Start()
	if err := w.closeWithin(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got := rc.got()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	want := `{"time_ms":1700000000123,"events":[` +
		`{"name":"channel_occupied","channel":"presence-room"},` +
		`{"name":"member_added","channel":"presence-room","user_id":"u1"},` +
		`{"name":"client_event","channel":"presence-room","event":"client-typing","data":"{\"a\":1,\"b\":\"<x> & \\\\u003c >\"}","socket_id":"1.2","user_id":"u1"},` +
		`{"name":"client_event","channel":"private-chat","event":"client-s","data":"hello \"you\"","socket_id":"3.4"},` +
		`{"name":"client_event","channel":"private-chat","event":"client-none","socket_id":"3.4"},` +
		`{"name":"member_removed","channel":"presence-room","user_id":"u1"},` +
		`{"name":"channel_vacated","channel":"presence-room"}]}`
	if string(got[0].body) != want {
		t.Errorf("body\n%s\nwant\n%s", got[0].body, want)
	}
	if value(w.sent) != 7 || value(w.failed) != 0 {
		t.Errorf("sent %v, failed %v; want 7, 0", value(w.sent), value(w.failed))
	}
}

// A presence client event names the member the node gives, else the one
// its data carries.
func TestWebhookClientEventMember(t *testing.T) {
	rc := newReceiver(t, nil)
	w := newHooks(t, []string{rc.URL}, nil)
	w.Whispered("presence-room", "1.2", "", whisper(t, `{"event":"client-a","channel":"presence-room","data":{}}`, "from-data"))
	w.Whispered("presence-room", "1.2", "given", whisper(t, `{"event":"client-b","channel":"presence-room","data":{}}`, "from-data"))
	w.Start()
	w.closeWithin(t, 5*time.Second)
	ev := rc.events(t)
	if len(ev) != 2 || ev[0]["user_id"] != "from-data" || ev[1]["user_id"] != "given" {
		t.Errorf("events %v", ev)
	}
}

// Every URL gets the batch, signed with the app's key and secret.
func TestWebhookSignature(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	w := newHooks(t, []string{a.URL + "/a", b.URL + "/b?x=1"}, nil)
	w.Occupied("news")
	w.Start()
	w.closeWithin(t, 5*time.Second)
	for _, rc := range []*receiver{a, b} {
		got := rc.got()
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1", len(got))
		}
		r := got[0]
		m := hmac.New(sha256.New, []byte("psecret"))
		m.Write(r.body)
		if sig := hex.EncodeToString(m.Sum(nil)); r.header.Get("X-Pusher-Signature") != sig {
			t.Errorf("X-Pusher-Signature %q, want %q", r.header.Get("X-Pusher-Signature"), sig)
		}
		if r.header.Get("X-Pusher-Key") != "key-1" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.header)
		}
	}
	if value(w.sent) != 2 {
		t.Errorf("sent %v, want 2 (one event, two URLs)", value(w.sent))
	}
}

// A batch goes when it is full, or Flush after its first event.
func TestWebhookBatching(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		rc := newReceiver(t, nil)
		w := newHooks(t, []string{rc.URL}, func(o *WebhookOptions) { o.Batch = 3 })
		w.Start()
		for range 7 {
			w.Occupied("news")
		}
		wait(t, "two full batches", func() bool { return len(rc.got()) == 2 })
		time.Sleep(20 * time.Millisecond)
		if n := len(rc.got()); n != 2 {
			t.Fatalf("%d requests before Close, want 2 (the seventh event waits)", n)
		}
		w.closeWithin(t, 5*time.Second)
		var sizes []int
		for _, r := range rc.got() {
			var p webhookPayload
			json.Unmarshal(r.body, &p)
			sizes = append(sizes, len(p.Events))
		}
		if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
			t.Errorf("batch sizes %v, want [3 3 1]", sizes)
		}
	})
	t.Run("flush interval", func(t *testing.T) {
		rc := newReceiver(t, nil)
		w := newHooks(t, []string{rc.URL}, func(o *WebhookOptions) { o.Flush = 30 * time.Millisecond })
		w.Start()
		start := time.Now()
		w.Occupied("a")
		w.Occupied("b")
		wait(t, "the batch", func() bool { return len(rc.got()) == 1 })
		if d := time.Since(start); d < 25*time.Millisecond {
			t.Errorf("sent after %s, before the flush interval", d)
		}
		if ev := rc.events(t); len(ev) != 2 {
			t.Errorf("events %v, want 2 in one batch", ev)
		}
	})
}

// 5xx and 429 answers are retried with the same body; the batch counts as
// sent once it gets through.
func TestWebhookRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		return map[int]int{1: http.StatusServiceUnavailable, 2: http.StatusTooManyRequests}[n] + map[bool]int{true: 200}[n > 2]
	})
	w := newHooks(t, []string{rc.URL}, nil)
	w.Occupied("news")
	w.Vacated("news")
	w.Start()
	w.closeWithin(t, 5*time.Second)
	got := rc.got()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	if !bytes.Equal(got[0].body, got[2].body) || got[0].header.Get("X-Pusher-Signature") != got[2].header.Get("X-Pusher-Signature") {
		t.Error("a retry changed the request")
	}
	if value(w.sent) != 2 || value(w.failed) != 0 {
		t.Errorf("sent %v, failed %v; want 2, 0", value(w.sent), value(w.failed))
	}
	if s := w.log.String(); s != "" {
		t.Errorf("logged %s", s)
	}
}

// A batch is given up after Attempts (retriable answers, network errors)
// or at once (other answers): counted as failed and logged once with its
// URL, without credentials or query.
func TestWebhookGivesUp(t *testing.T) {
	for _, c := range []struct {
		name     string
		code     int
		requests int
	}{
		{"5xx", http.StatusInternalServerError, 3},
		{"4xx", http.StatusBadRequest, 1},
		{"redirect", http.StatusFound, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, func(int, *http.Request) int { return c.code })
			url := strings.Replace(rc.URL, "://", "://user:hunter2@", 1) + "/hook?token=sekrit"
			w := newHooks(t, []string{url}, func(o *WebhookOptions) { o.Attempts = 3 })
			w.Occupied("news")
			w.Start()
			w.closeWithin(t, 5*time.Second)
			if n := len(rc.got()); n != c.requests {
				t.Errorf("%d requests, want %d", n, c.requests)
			}
			if value(w.failed) != 1 || value(w.sent) != 0 {
				t.Errorf("failed %v, sent %v; want 1, 0", value(w.failed), value(w.sent))
			}
			log := w.log.String()
			if strings.Count(log, "not delivered") != 1 || !strings.Contains(log, "url="+rc.URL+"/hook ") {
				t.Errorf("log %q", log)
			}
			if strings.Contains(log, "hunter2") || strings.Contains(log, "sekrit") {
				t.Errorf("log quotes credentials: %q", log)
			}
		})
	}
	t.Run("network error", func(t *testing.T) {
		rc := newReceiver(t, nil)
		url := strings.Replace(rc.URL, "://", "://user:hunter2@", 1) + "/hook?token=sekrit"
		rc.Close()
		w := newHooks(t, []string{url}, func(o *WebhookOptions) { o.Attempts = 2 })
		w.Occupied("news")
		w.Start()
		w.closeWithin(t, 5*time.Second)
		log := w.log.String()
		if value(w.failed) != 1 || !strings.Contains(log, "attempts=2") || strings.Contains(log, "hunter2") || strings.Contains(log, "sekrit") {
			t.Errorf("failed %v, log %q", value(w.failed), log)
		}
	})
}

// The observer's calls never wait: what the full queue refuses is lost,
// counted once per URL and logged.
func TestWebhookOverflow(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	w := newHooks(t, []string{a.URL, b.URL}, func(o *WebhookOptions) { o.Queue = 2 })
	done := make(chan struct{})
	go func() {
		for range 5 {
			w.Occupied("news")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the observer's calls block on a full queue")
	}
	if value(w.failed) != 6 {
		t.Errorf("failed %v, want 6 (3 events lost, 2 URLs)", value(w.failed))
	}
	if h := w.Health(); h["urls"] != 2 || h["queued"] != 2 || h["undelivered"] != int64(6) {
		t.Errorf("Health() = %v", h)
	}
	w.Start()
	w.closeWithin(t, 5*time.Second)
	if value(w.sent) != 4 || len(a.events(t)) != 2 || len(b.events(t)) != 2 {
		t.Errorf("sent %v, want 4", value(w.sent))
	}
	if !strings.Contains(w.log.String(), "3 Pusher webhook events lost") {
		t.Errorf("log %q", w.log.String())
	}
	// After Close, events are lost too.
	w.Occupied("news")
	if value(w.failed) != 8 {
		t.Errorf("failed %v after Close, want 8", value(w.failed))
	}
}

// Close sends what is queued, in full batches, before it returns.
func TestWebhookCloseDrains(t *testing.T) {
	noLeaks(t)
	rc := newReceiver(t, nil)
	w := newHooks(t, []string{rc.URL}, nil)
	w.Start()
	for range 250 {
		w.Occupied("news")
	}
	if err := w.closeWithin(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := len(rc.got()); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
	if n := len(rc.events(t)); n != 250 || value(w.sent) != 250 {
		t.Errorf("%d events received, %v sent, want 250", n, value(w.sent))
	}
}

// When Close's context ends first, the requests in flight are cancelled,
// their events counted as failed, and nothing is left running.
func TestWebhookCloseGivesUp(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	w := newHooks(t, []string{rc.URL}, func(o *WebhookOptions) {
		o.Batch, o.Sends, o.Timeout = 1, 1, time.Minute
	})
	w.Start()
	for range 3 {
		w.Occupied("news")
	}
	wait(t, "the first request", func() bool { return len(rc.got()) == 1 })
	start := time.Now()
	if err := w.closeWithin(t, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s", d)
	}
	if value(w.failed) != 3 || value(w.sent) != 0 {
		t.Errorf("failed %v, sent %v; want 3, 0", value(w.failed), value(w.sent))
	}
	if log := w.log.String(); !strings.Contains(log, "not delivered") || !strings.Contains(log, "Pusher webhook events lost") {
		t.Errorf("log %q", log)
	}
}

// At most Sends requests are in flight at once.
func TestWebhookSendsBounded(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	rc := newReceiver(t, func(int, *http.Request) int {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return http.StatusOK
	})
	w := newHooks(t, []string{rc.URL}, func(o *WebhookOptions) { o.Batch, o.Sends = 1, 2 })
	w.Start()
	for range 6 {
		w.Occupied("news")
	}
	wait(t, "two requests", func() bool { return len(rc.got()) == 2 })
	time.Sleep(30 * time.Millisecond)
	close(release)
	w.closeWithin(t, 5*time.Second)
	if most != 2 || len(rc.got()) != 6 {
		t.Errorf("%d in flight at most, %d requests; want 2, 6", most, len(rc.got()))
	}
}

func TestWebhookURLs(t *testing.T) {
	for _, bad := range []string{"ftp://h/x", "/hook", "hook", "http://", "https:///x", "http:opaque", "::"} {
		if _, err := NewWebhooks(hookApp, WebhookOptions{URLs: []string{bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		} else if err.Error() != "a webhook URL must be an absolute http:// or https:// URL with a host" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := NewWebhooks(hookApp, WebhookOptions{}); err == nil {
		t.Error("no URL accepted")
	}
	shown, err := WebhookURL("https://u:p@h.example:8443/a/b?token=t#f")
	if err != nil || shown != "https://h.example:8443/a/b" {
		t.Errorf("shown %q, %v", shown, err)
	}
}

func TestUnescapeHTML(t *testing.T) {
	for in, want := range map[string]string{
		`"\u003cb\u003e \u0026"`: `"<b> &"`,
		`"\\u003c"`:              `"\\u003c"`,
		`"\\\u003c"`:             `"\\<"`,
		`"\u2028 \u003"`:         `"\u2028 \u003"`,
		`\`:                      `\`,
		`"plain"`:                `"plain"`,
	} {
		if got := string(unescapeHTML([]byte(in))); got != want {
			t.Errorf("unescapeHTML(%s) = %s, want %s", in, got, want)
		}
	}
}
