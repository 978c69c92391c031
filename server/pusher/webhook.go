package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cablehub/cablehub/server/node"
)

// Webhook defaults (WebhookOptions' zero values).
const (
	// DefaultWebhookQueue bounds the events waiting to be batched.
	DefaultWebhookQueue = 10000
	// DefaultWebhookBatch is the most events one request carries.
	DefaultWebhookBatch = 100
	// DefaultWebhookFlush is how long a batch's first event waits for
	// others before the batch is sent.
	DefaultWebhookFlush = 250 * time.Millisecond
	// DefaultWebhookTimeout bounds one request.
	DefaultWebhookTimeout = 5 * time.Second
	// DefaultWebhookAttempts is how many times a batch is tried.
	DefaultWebhookAttempts = 5
	// DefaultWebhookSends bounds the requests in flight at once.
	DefaultWebhookSends = 4
	// The delays between attempts grow from DefaultWebhookMinBackoff to
	// DefaultWebhookMaxBackoff (server/backoff): five attempts span about
	// 15 to 30 seconds.
	DefaultWebhookMinBackoff = time.Second
	DefaultWebhookMaxBackoff = 16 * time.Second
)

// WebhookOptions configure Webhooks; zero fields take the defaults above.
type WebhookOptions struct {
	// URLs receive every batch (each its own copy, tried on its own):
	// absolute http or https URLs.
	URLs []string
	// Queue bounds the events waiting to be batched; an event that finds
	// the queue full is lost (counted, and logged now and then).
	Queue int
	// Batch is the most events one request carries; Flush how long the
	// first event of a batch waits for more.
	Batch int
	Flush time.Duration
	// Timeout bounds each request; Attempts is how many times a batch is
	// tried on network errors, 5xx and 429 answers, waiting between them
	// from MinBackoff up to MaxBackoff.
	Timeout                time.Duration
	Attempts               int
	MinBackoff, MaxBackoff time.Duration
	// Sends bounds the requests in flight at once, over all URLs.
	Sends int
	// Client sends the requests (default: a client of its own that does
	// not follow redirects).
	Client *http.Client
	// Metrics count the events sent and failed (WebhooksSent,
	// WebhooksFailed); nil counts nothing.
	Metrics *Metrics
	// Log hears of failed batches and lost events (default: slog's).
	Log *slog.Logger
	// Now is the clock of time_ms (default time.Now).
	Now func() time.Time
}

func (o *WebhookOptions) defaults() {
	setDefault(&o.Queue, DefaultWebhookQueue)
	setDefault(&o.Batch, DefaultWebhookBatch)
	setDefault(&o.Flush, DefaultWebhookFlush)
	setDefault(&o.Timeout, DefaultWebhookTimeout)
	setDefault(&o.Attempts, DefaultWebhookAttempts)
	setDefault(&o.Sends, DefaultWebhookSends)
	setDefault(&o.MinBackoff, DefaultWebhookMinBackoff)
	setDefault(&o.MaxBackoff, DefaultWebhookMaxBackoff)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect is the receiver's mistake: following it would
			// turn the POST into a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

func setDefault[T int | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// Webhooks sends Pusher webhooks: it is the node's Observer
// (node.Options.Observer) for Pusher channels, and turns what the node
// reports into Pusher's webhook events, POSTed in batches to each URL as
// {"time_ms":<unix ms>,"events":[...]}, signed like Pusher's
// (X-Pusher-Key, and X-Pusher-Signature: the hex HMAC-SHA256 of the body
// with the app's secret).
//
// Delivery is best effort, not guaranteed: the observer's calls never
// block (an event that finds the queue full is lost); a batch is tried
// Attempts times, then given up (and one the receiver handled but did not
// answer in time is sent again). Every event counts once per URL, as sent
// or as failed (Metrics), and every loss is logged (a failed batch with
// its URL, lost events as a count). Within a batch events keep the order
// the node reported them in; batches may arrive out of order when one is
// retried, so receivers order them by time_ms.
//
// Start starts the sending; Close stops it.
type Webhooks struct {
	app     App
	opts    WebhookOptions
	targets []webhookTarget

	queue chan webhookEvent
	// mu orders the observer's sends before Close's closed: after Close
	// has set it, nothing more enters the queue.
	mu     sync.RWMutex
	closed bool
	// lost counts the events lost since they were last logged: refused
	// by the full queue or after Close, or not sent once Close gave up.
	lost     atomic.Int64
	lastLost time.Time // when lost events were last logged (run's)
	// undelivered counts the events given up since the start (lost or
	// failed), for Health.
	undelivered atomic.Int64

	started   atomic.Bool
	closeOnce sync.Once
	stopping  chan struct{} // closed by Close
	finished  chan struct{} // closed when run returns
	// ctx ends the requests and the waits between attempts: cancelled
	// when Close's context ends.
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // a token per request in flight
	sends  sync.WaitGroup
}

var _ node.Observer = (*Webhooks)(nil)

// webhookTarget is one URL, with the form of it logs show.
type webhookTarget struct {
	url   string
	shown string
}

// NewWebhooks returns Webhooks for app (its key and secret sign the
// requests) with opts; nothing is sent until Start. It fails when a URL is
// not an absolute http or https URL, or there is none.
func NewWebhooks(app *App, opts WebhookOptions) (*Webhooks, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("pusher: no webhook URL")
	}
	opts.defaults()
	w := &Webhooks{
		app:      *app,
		opts:     opts,
		queue:    make(chan webhookEvent, opts.Queue),
		stopping: make(chan struct{}),
		finished: make(chan struct{}),
		sem:      make(chan struct{}, opts.Sends),
	}
	for _, raw := range opts.URLs {
		shown, err := WebhookURL(raw)
		if err != nil {
			return nil, err
		}
		w.targets = append(w.targets, webhookTarget{url: raw, shown: shown})
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w, nil
}

// WebhookURL checks that raw is an absolute http or https URL with a
// host, and returns it as logs may show it: without credentials, query
// or fragment (which may carry tokens). Its error does not quote raw.
func WebhookURL(raw string) (shown string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", errors.New("a webhook URL must be an absolute http:// or https:// URL with a host")
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String(), nil
}

// webhookEvent is one event of a webhook, in Pusher's form: name and
// channel always; user_id for member_added and member_removed; event,
// data (the client's data as a JSON text, or the string it sent), socket_id
// and, on presence channels, user_id for client_event.
type webhookEvent struct {
	Name     string  `json:"name"`
	Channel  string  `json:"channel"`
	Event    string  `json:"event,omitempty"`
	Data     *string `json:"data,omitempty"`
	SocketID string  `json:"socket_id,omitempty"`
	UserID   string  `json:"user_id,omitempty"`
}

// Watches reports whether stream is a Pusher channel: a name a client
// could subscribe to (ValidChannel), which a user's own stream is not.
func (w *Webhooks) Watches(stream string) bool {
	return ValidChannel(stream) && !strings.HasPrefix(stream, userPrefix)
}

// Occupied queues channel_occupied.
func (w *Webhooks) Occupied(stream string) {
	w.enqueue(webhookEvent{Name: "channel_occupied", Channel: stream})
}

// Vacated queues channel_vacated.
func (w *Webhooks) Vacated(stream string) {
	w.enqueue(webhookEvent{Name: "channel_vacated", Channel: stream})
}

// Joined queues member_added on a presence channel; other streams have
// no members in Pusher. The member's info is not part of the event.
func (w *Webhooks) Joined(stream, id string, _ json.RawMessage) {
	if strings.HasPrefix(stream, presencePrefix) {
		w.enqueue(webhookEvent{Name: "member_added", Channel: stream, UserID: id})
	}
}

// Left queues member_removed on a presence channel.
func (w *Webhooks) Left(stream, id string) {
	if strings.HasPrefix(stream, presencePrefix) {
		w.enqueue(webhookEvent{Name: "member_removed", Channel: stream, UserID: id})
	}
}

// Whispered queues client_event for a client event on a private or
// presence channel. data is the publication Codec made of it
// ({"event":"client-…","data":…,"user_id":…}); anything else (another
// protocol's whisper) is not a client event and is ignored. The event's
// user_id is member (else the data's) on presence channels only.
func (w *Webhooks) Whispered(stream, sid, member string, data []byte) {
	presence := strings.HasPrefix(stream, presencePrefix)
	if !presence && !strings.HasPrefix(stream, privatePrefix) {
		return
	}
	var ce clientEvent
	if json.Unmarshal(data, &ce) != nil || !strings.HasPrefix(ce.Event, clientPrefix) {
		return
	}
	e := webhookEvent{Name: "client_event", Channel: stream, Event: ce.Event, SocketID: sid, Data: clientData(ce.Data)}
	if presence {
		e.UserID = cmpOr(member, ce.UserID)
	}
	w.enqueue(e)
}

// clientData is a client event's data as Pusher's webhooks carry it, a
// string: the string the client sent, or the JSON text of anything else;
// nil for none (null).
func clientData(raw json.RawMessage) *string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return &s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	s = string(unescapeHTML(b.Bytes()))
	return &s
}

// unescapeHTML undoes the escaping of <, > and & (\u003c, \u003e,
// \u0026) that encoding/json gave the client's data on its way through
// Codec, so the data reads as the client sent it; the JSON means the same.
func unescapeHTML(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u00`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			if c := htmlEscaped(b[i+2 : i+6]); c != 0 {
				out = append(out, c)
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1]) // an escape kept whole: \\u003c stays
		i++
	}
	return out
}

// htmlEscaped is the character hex (after \u) stands for when it is one
// encoding/json escapes as HTML, else 0.
func htmlEscaped(hex []byte) byte {
	switch string(hex) {
	case "003c":
		return '<'
	case "003e":
		return '>'
	case "0026":
		return '&'
	}
	return 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// enqueue queues e without waiting: when the queue is full, or Close has
// begun, e is lost and counted as failed for every URL.
func (w *Webhooks) enqueue(e webhookEvent) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.closed {
		select {
		case w.queue <- e:
			return
		default:
		}
	}
	w.lost.Add(1)
	w.undelivered.Add(int64(len(w.targets)))
	w.opts.Metrics.webhooksFailed(len(w.targets))
}

// Health is the webhooks' state for /health: how many URLs, events
// waiting, and events given up since the start (once per URL). Failing
// webhooks do not make the server unhealthy: restarting it would not
// bring a receiver back.
func (w *Webhooks) Health() map[string]any {
	return map[string]any{"urls": len(w.targets), "queued": len(w.queue), "undelivered": w.undelivered.Load()}
}

// Start starts batching and sending what is queued and what comes; a
// second call does nothing.
func (w *Webhooks) Start() {
	if w.started.CompareAndSwap(false, true) {
		go w.run()
	}
}

// Close stops taking events (those reported from now on are lost), sends
// what is queued and waits for the requests in flight, retries included,
// until ctx ends: then it cancels them (their batches count as failed),
// waits for them to return and returns ctx's error. Without Start, what
// is queued is discarded. A second call waits as the first.
func (w *Webhooks) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stopping)
	})
	if !w.started.Load() {
		w.cancel()
		return nil
	}
	select {
	case <-w.finished:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.finished
		return ctx.Err()
	}
}

// run batches the queue until Close, then sends what is left and waits
// for every request.
func (w *Webhooks) run() {
	defer close(w.finished)
	defer w.opts.Client.CloseIdleConnections()
	timer := time.NewTimer(w.opts.Flush)
	timer.Stop()
	batch := make([]webhookEvent, 0, w.opts.Batch)
	flush := func() {
		timer.Stop()
		if len(batch) > 0 {
			w.send(batch)
			batch = make([]webhookEvent, 0, w.opts.Batch)
		}
		w.logLost(false)
	}
	for {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
			if len(batch) == 1 {
				timer.Reset(w.opts.Flush)
			}
			if len(batch) >= w.opts.Batch {
				flush()
			}
		case <-timer.C:
			flush()
		case <-w.stopping:
			for drained := false; !drained; {
				select {
				case e := <-w.queue:
					if batch = append(batch, e); len(batch) >= w.opts.Batch {
						flush()
					}
				default:
					drained = true
				}
			}
			flush()
			w.sends.Wait()
			w.logLost(true)
			return
		}
	}
}

// logLost logs the events lost since the last time, at most every ten
// seconds unless final.
func (w *Webhooks) logLost(final bool) {
	now := time.Now()
	if !final && now.Sub(w.lastLost) < 10*time.Second {
		return
	}
	if n := w.lost.Swap(0); n > 0 {
		w.lastLost = now
		w.opts.Log.Warn(fmt.Sprintf("%d Pusher webhook events lost: the queue (%d) was full or the server was shutting down", n, w.opts.Queue))
	}
}
