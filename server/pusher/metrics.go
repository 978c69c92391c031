package pusher

import "github.com/prometheus/client_golang/prometheus"

// Metrics are what the Pusher endpoint counts; a nil Metrics, or a nil
// field, counts nothing.
type Metrics struct {
	// Clients is the number of open Pusher connections.
	Clients prometheus.Gauge
	// ClientEvents counts client events relayed (within the rate limit).
	ClientEvents prometheus.Counter
	// Errors counts client frames answered with a pusher:error.
	Errors prometheus.Counter
	// Signins counts accepted sign-ins.
	Signins prometheus.Counter
	// WebhooksSent counts webhook events delivered, once per URL;
	// WebhooksFailed those not delivered to a URL (its batch given up,
	// or the event lost to a full queue or to shutdown), once per URL.
	WebhooksSent   prometheus.Counter
	WebhooksFailed prometheus.Counter
}

func (m *Metrics) refused() {
	if m != nil && m.Errors != nil {
		m.Errors.Inc()
	}
}

func (m *Metrics) clientEvent() {
	if m != nil && m.ClientEvents != nil {
		m.ClientEvents.Inc()
	}
}

func (m *Metrics) signin() {
	if m != nil && m.Signins != nil {
		m.Signins.Inc()
	}
}

// opened counts a connection and returns what its end must call.
func (m *Metrics) opened() func() {
	if m == nil || m.Clients == nil {
		return func() {}
	}
	m.Clients.Inc()
	return m.Clients.Dec
}

func (m *Metrics) webhooksSent(n int) {
	if m != nil && m.WebhooksSent != nil {
		m.WebhooksSent.Add(float64(n))
	}
}

func (m *Metrics) webhooksFailed(n int) {
	if m != nil && m.WebhooksFailed != nil && n > 0 {
		m.WebhooksFailed.Add(float64(n))
	}
}
