package runner

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/httpbody"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/pusher"
	"github.com/cablehub/cablehub/server/ws"
)

// newPusherWS builds the Pusher WebSocket endpoint, nil unless cfg turns
// Pusher mode on.
func newPusherWS(cfg *config.Config, gate *node.Gate, t *ws.Transport, m *metrics.Metrics) *pusher.Handler {
	if !cfg.Pusher.Enabled() {
		return nil
	}
	app := pusherApp(cfg)
	return pusher.NewHandler(gate, t, app, &pusher.Metrics{
		Clients:      m.PusherClientsNum,
		ClientEvents: m.PusherClientEventsTotal,
		Errors:       m.PusherErrorsTotal,
		Signins:      m.PusherSigninsTotal,
	})
}

// webhookCloseTimeout bounds how long shutdown waits for the Pusher
// webhooks still queued or being retried (within the shutdown timeout).
const webhookCloseTimeout = 5 * time.Second

// newPusherWebhooks builds the Pusher webhooks (--pusher_webhook_url),
// nil without Pusher mode or URLs. The node reports to them
// (node.Options.Observer); the runner starts them once it serves and
// closes them at shutdown.
func newPusherWebhooks(cfg *config.Config, m *metrics.Metrics, log *slog.Logger) (*pusher.Webhooks, error) {
	if !cfg.Pusher.Enabled() || len(cfg.Pusher.WebhookURLs) == 0 {
		return nil, nil
	}
	w, err := pusher.NewWebhooks(pusherApp(cfg), pusher.WebhookOptions{
		URLs:    cfg.Pusher.WebhookURLs,
		Metrics: &pusher.Metrics{WebhooksSent: m.PusherWebhooksSentTotal, WebhooksFailed: m.PusherWebhooksFailedTotal},
		Log:     log.With("context", "pusher"),
	})
	if err != nil {
		return nil, fmt.Errorf("--pusher_webhook_url: %w", err)
	}
	return w, nil
}

// occupancyID is the id under which the nodes record in the broker that
// they have subscribers of a Pusher channel (node.Options.OccupancyID):
// derived from the Pusher secret, so it is the same on every node of the
// app's cluster and no client knows it.
func occupancyID(cfg *config.Config) string {
	m := hmac.New(sha256.New, []byte(cfg.Pusher.Secret))
	m.Write([]byte("cablehub pusher occupancy"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// closeWebhooks sends what the webhooks still hold, for at most
// webhookCloseTimeout within ctx; what is left is counted and logged as
// failed.
func (r *Runner) closeWebhooks(ctx context.Context) {
	if r.webhooks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, webhookCloseTimeout)
	defer cancel()
	if err := r.webhooks.Close(ctx); err != nil {
		r.log.Warn("Pusher webhooks still being sent at shutdown were given up", "context", "pusher", "error", err)
	}
}

func pusherApp(cfg *config.Config) *pusher.App {
	return &pusher.App{ID: cfg.Pusher.AppID, Key: cfg.Pusher.AppKey, Secret: cfg.Pusher.Secret}
}

// logPusher logs where the Pusher endpoints are served.
func (r *Runner) logPusher() {
	if r.pusher == nil {
		return
	}
	p := &r.cfg.Pusher
	r.log.Info(fmt.Sprintf("Handle Pusher WebSocket connections at %s://%s/app/%s", r.scheme(), r.MainAddr, url.PathEscape(p.AppKey)))
	msg := fmt.Sprintf("Handle Pusher API requests at %s://%s/apps/%s/*", r.scheme(), r.PusherAPIAddr, url.PathEscape(p.AppID))
	if p.APIPort != 0 {
		r.log.Info(msg, "context", "pusher")
	} else {
		r.log.Info(msg)
	}
	if r.webhooks != nil {
		shown := make([]string, 0, len(p.WebhookURLs))
		for _, u := range p.WebhookURLs {
			s, _ := pusher.WebhookURL(u) // checked when built
			shown = append(shown, s)
		}
		r.log.Info("Send Pusher webhooks to "+strings.Join(shown, ", "), "context", "pusher")
	}
}

// pusherAPI is the Pusher HTTP API's mount: /apps/<id>/*, on the main
// listener or on --pusher_api_port (plan); the zero mount without Pusher
// mode.
func (r *Runner) pusherAPI() mount {
	if r.pusher == nil {
		return mount{}
	}
	api := pusher.NewAPI(pusherApp(r.cfg), pusher.NodeBackend{Node: r.node}, pusher.APIOptions{
		MaxBody: pusher.DefaultAPIMaxBody,
		Timeout: r.cfg.API.PublishTimeout,
		Log:     r.log.With("context", "pusher"),
	})
	body := httpbody.Limit{MaxSize: pusher.DefaultAPIMaxBody, Timeout: r.limits.apiBody}
	return mount{
		name:      "Pusher API",
		patterns:  patterns("/apps/" + r.cfg.Pusher.AppID + "/*"),
		handler:   countPusherAPI(boundedBody(api, body), r.metrics),
		readsBody: true,
	}
}

// boundedBody reads a request's body within l before h runs (408 when it
// does not arrive within l.Timeout, 413 past l.MaxSize), then lifts the
// read deadline, so the call itself is not cut by it.
func boundedBody(h http.Handler, l httpbody.Limit) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.ContentLength != 0 {
			lift := l.Deadline(w, req)
			body, ok := l.Read(w, req)
			lift()
			if !ok {
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, req)
	})
}

// countPusherAPI counts requests by endpoint (the path's last fixed
// segment, so channel names never become label values) and status code.
func countPusherAPI(h http.Handler, m *metrics.Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, req)
		m.PusherAPIRequests.WithLabelValues(pusherEndpoint(req.URL.Path), strconv.Itoa(rec.code)).Inc()
	})
}

func pusherEndpoint(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(segs) == 3 && (segs[2] == "events" || segs[2] == "batch_events" || segs[2] == "channels"):
		return segs[2]
	case len(segs) == 4 && segs[2] == "channels":
		return "channel"
	case len(segs) == 5 && segs[2] == "channels" && segs[4] == "users":
		return "users"
	case len(segs) == 5 && segs[2] == "users" && segs[4] == "terminate_connections":
		return "terminate_connections"
	}
	return "other"
}

// pusherHealth is Pusher mode's part of /health: the app (its id and key
// are public: clients and SDKs hold them), the open connections, and the
// webhooks' state. Nothing in it makes the server unhealthy.
func (r *Runner) pusherHealth() map[string]any {
	h := map[string]any{"app_id": r.cfg.Pusher.AppID, "clients": r.pusher.Clients()}
	if r.webhooks != nil {
		h["webhooks"] = r.webhooks.Health()
	}
	return h
}
