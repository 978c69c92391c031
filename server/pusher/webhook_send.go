package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cablehub/cablehub/server/backoff"
)

// webhookPayload is the body of a webhook request.
type webhookPayload struct {
	TimeMS int64          `json:"time_ms"`
	Events []webhookEvent `json:"events"`
}

// payload encodes events as a webhook body stamped now, with <, > and &
// as they are (the signature covers the bytes, whatever they are).
func (w *Webhooks) payload(events []webhookEvent) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(webhookPayload{TimeMS: w.opts.Now().UnixMilli(), Events: events}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// send hands batch to each URL's delivery, each in a goroutine of its
// own once a request slot is free (so run waits while Sends requests are
// in flight, and the queue takes the events meanwhile). When Close's
// context has ended, the batch fails without being sent, counted as lost.
func (w *Webhooks) send(batch []webhookEvent) {
	body, err := w.payload(batch)
	if err != nil { // events are strings only: not expected
		w.opts.Log.Error("Pusher webhook batch not encoded", "error", err)
		w.opts.Metrics.webhooksFailed(len(batch) * len(w.targets))
		return
	}
	for i, t := range w.targets {
		if !w.acquire() {
			// Close gave up: logged with the lost events, not batch by
			// batch and URL by URL.
			w.lost.Add(int64(len(batch)))
			w.opts.Metrics.webhooksFailed(len(batch) * (len(w.targets) - i))
			return
		}
		w.sends.Add(1)
		go func() {
			defer func() {
				<-w.sem
				w.sends.Done()
			}()
			w.deliver(t, body, len(batch))
		}()
	}
}

// acquire takes a request slot, waiting for one; false once Close has
// given up.
func (w *Webhooks) acquire() bool {
	if w.ctx.Err() != nil {
		return false
	}
	select {
	case w.sem <- struct{}{}:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// deliver posts body, a batch of n events, to t: up to Attempts times
// while the answer is a network error, a 5xx or a 429, waiting between
// attempts as a backoff.Backoff says; it counts the events as sent or,
// once given up, as failed, logging the failure.
func (w *Webhooks) deliver(t webhookTarget, body []byte, n int) {
	b := backoff.New(w.opts.MinBackoff, w.opts.MaxBackoff, nil)
	attempt := 1
	for ; ; attempt++ {
		retry, err := w.post(t.url, body)
		if err == nil {
			w.opts.Metrics.webhooksSent(n)
			return
		}
		if !retry || attempt >= w.opts.Attempts || !w.sleep(b.Next()) {
			w.failed(t, n, attempt, err)
			return
		}
	}
}

// failed counts n events as failed on t and logs it once.
func (w *Webhooks) failed(t webhookTarget, n, attempts int, err error) {
	w.undelivered.Add(int64(n))
	w.opts.Metrics.webhooksFailed(n)
	w.opts.Log.Warn("Pusher webhook batch not delivered", "url", t.shown, "events", n, "attempts", attempts, "error", err)
}

// sleep waits d, or until Close gives up; it reports whether d passed.
func (w *Webhooks) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// maxWebhookAnswer is the most of an answer's body read, so that the
// connection can be reused.
const maxWebhookAnswer = 64 << 10

// post makes one signed request within Timeout. It returns nil for a 2xx
// answer, else the error and whether another attempt may succeed (a
// network error, a timeout, a 5xx or a 429; not after Close gave up).
// Errors never quote the URL.
func (w *Webhooks) post(target string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the request could not be built")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", w.app.Key)
	req.Header.Set("X-Pusher-Signature", w.app.sign(string(body)))
	res, err := w.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold credentials
		}
		return w.ctx.Err() == nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxWebhookAnswer))
	res.Body.Close()
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code >= 500 || code == http.StatusTooManyRequests:
		return true, fmt.Errorf("answered %d", code)
	default:
		return false, fmt.Errorf("answered %d", code)
	}
}
