// Package metrics defines Cablehub's Prometheus metrics. Core names match
// AnyCable's (namespace anycable_go), so existing dashboards keep working.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

const namespace = "anycable_go"

// Metrics holds the collectors; all are safe for concurrent use. Each
// process builds its own registry: nothing is registered globally.
type Metrics struct {
	registry *prometheus.Registry
	// tags are the constant labels every metric carries (--metrics_tags).
	tags map[string]string

	ClientsNum     prometheus.Gauge
	ClientsUniqNum prometheus.Gauge
	// SSEClientsNum counts the clients streaming Server-Sent Events
	// (also counted in ClientsNum).
	SSEClientsNum prometheus.Gauge
	// Pusher holds the Pusher endpoint's counts (--pusher_app_id): open
	// connections, relayed client events, client frames answered with
	// pusher:error, sign-ins, HTTP API requests by status, webhook
	// events delivered and not delivered (each once per URL).
	PusherClientsNum          prometheus.Gauge
	PusherClientEventsTotal   prometheus.Counter
	PusherErrorsTotal         prometheus.Counter
	PusherSigninsTotal        prometheus.Counter
	PusherAPIRequests         *prometheus.CounterVec
	PusherWebhooksSentTotal   prometheus.Counter
	PusherWebhooksFailedTotal prometheus.Counter
	BroadcastStreamsNum       prometheus.Gauge
	// DisconnectQueueSize is the number of Disconnect calls waiting for
	// their turn (--disconnect_rate, --disconnect_backlog_size).
	DisconnectQueueSize   prometheus.Gauge
	ClientMsgTotal        prometheus.Counter
	FailedClientMsgTotal  prometheus.Counter
	BroadcastMsgTotal     prometheus.Counter
	PublicationsTotal     prometheus.Counter
	RemoteCommandsTotal   prometheus.Counter
	ServerMsgTotal        prometheus.Counter
	DisconnectedSlowTotal prometheus.Counter
	FailedAuthsTotal      prometheus.Counter
	DataSentTotal         prometheus.Counter
	DataRcvdTotal         prometheus.Counter
	GapFillsTotal         prometheus.Counter
	GapResyncsTotal       prometheus.Counter
	// PubSubSubscribeFailuresTotal counts subscriptions refused because
	// the pub/sub could not listen to their stream.
	PubSubSubscribeFailuresTotal prometheus.Counter
	// ConnLimitRefusedTotal counts connections refused at --max-conn.
	ConnLimitRefusedTotal prometheus.Counter

	APIRequests *prometheus.CounterVec
	APILatency  *prometheus.HistogramVec

	// RPC is handed to the RPC client (it implements rpc.Metrics).
	RPC *RPC

	// deps are the outage and broadcast size counters (dependencies.go).
	deps dependencies
}

// New creates the metrics and their registry.
func New() *Metrics { return NewWithTags(nil) }

// NewWithTags creates the metrics with tags (--metrics_tags) as constant
// labels on every one of them, as AnyCable adds its global tags.
func NewWithTags(tags map[string]string) *Metrics {
	registry := prometheus.NewRegistry()
	var r prometheus.Registerer = registry
	if len(tags) > 0 {
		r = prometheus.WrapRegistererWith(prometheus.Labels(tags), registry)
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
		r.MustRegister(g)
		return g
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
		r.MustRegister(c)
		return c
	}
	m := &Metrics{
		registry:                registry,
		tags:                    tags,
		ClientsNum:              gauge("clients_num", "The number of active clients"),
		ClientsUniqNum:          gauge("clients_uniq_num", "The number of unique clients (by connection identifiers)"),
		SSEClientsNum:           gauge("sse_clients_num", "The number of active Server-Sent Events clients"),
		PusherClientsNum:        gauge("pusher_clients_num", "The number of active Pusher clients"),
		PusherClientEventsTotal: counter("pusher_client_events_total", "The total number of Pusher client events relayed"),
		PusherErrorsTotal:       counter("pusher_errors_total", "The total number of Pusher client messages answered with pusher:error"),
		PusherSigninsTotal:      counter("pusher_signins_total", "The total number of accepted Pusher sign-ins"),
		PusherWebhooksSentTotal: counter("pusher_webhooks_sent_total", "The total number of Pusher webhook events delivered, once per webhook URL"),
		PusherWebhooksFailedTotal: counter("pusher_webhooks_failed_total",
			"The total number of Pusher webhook events not delivered (given up after retries, or lost to a full queue or to shutdown), once per webhook URL"),
		BroadcastStreamsNum:   gauge("broadcast_streams_num", "The number of active broadcasting streams"),
		DisconnectQueueSize:   gauge("disconnect_queue_size", "The number of Disconnect calls waiting to be made"),
		ClientMsgTotal:        counter("client_msg_total", "The total number of received messages from clients"),
		FailedClientMsgTotal:  counter("failed_client_msg_total", "The total number of unrecognized or malformed messages from clients"),
		BroadcastMsgTotal:     counter("broadcast_msg_total", "The total number of messages received through the broadcasting API"),
		PublicationsTotal:     counter("publications_total", "The total number of publications delivered to this node's subscribers"),
		RemoteCommandsTotal:   counter("remote_commands_total", "The total number of remote commands received"),
		ServerMsgTotal:        counter("server_msg_total", "The total number of messages sent to clients"),
		DisconnectedSlowTotal: counter("disconnected_slow_clients_total", "The total number of clients disconnected for not keeping up"),
		FailedAuthsTotal:      counter("failed_auths_total", "The total number of failed authentication attempts"),
		DataSentTotal:         counter("data_sent_total", "The total amount of bytes sent to clients"),
		DataRcvdTotal:         counter("data_rcvd_total", "The total amount of bytes received from clients"),
		GapFillsTotal:         counter("gap_fills_total", "The total number of gaps in a subscription's offsets read from history"),
		GapResyncsTotal:       counter("gap_resyncs_total", "The total number of clients told to reconnect because a gap could not be filled"),
		PubSubSubscribeFailuresTotal: counter("pubsub_subscribe_failures_total",
			"The total number of subscriptions refused because the pub/sub could not listen to their stream"),
		ConnLimitRefusedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cablehub", Name: "conn_limit_refused_total", Help: "WebSocket connections refused because --max-conn connections were open",
		}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cablehub", Name: "api_requests_total", Help: "API requests by route and response code",
		}, []string{"route", "code"}),
		APILatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cablehub", Name: "api_request_duration_seconds", Help: "API request latency by route and response code",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"route", "code"}),
	}
	m.PusherAPIRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "pusher_api_requests_total", Help: "Pusher HTTP API requests by endpoint and response code",
	}, []string{"endpoint", "code"})
	r.MustRegister(m.APIRequests, m.APILatency, m.ConnLimitRefusedTotal, m.PusherAPIRequests)
	m.RPC = newRPC(r)
	m.deps = newDependencies(r)
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "goroutines_num", Help: "The number of goroutines"},
		func() float64 { return float64(runtime.NumGoroutine()) }))
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "mem_sys_bytes", Help: "The total bytes of memory obtained from the OS"},
		func() float64 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return float64(ms.Sys)
		}))
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// counterValue reads a counter's current value (Prometheus counters have
// no getter; Write fills the value in).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// CountDeliveries serves cablehub_deliveries_total, read from deliveries
// (the hub's count of publications queued to clients, one per subscriber
// reached) when scraped: the hub counts per shard, cheaper than a
// Prometheus counter on the fan-out path.
func (m *Metrics) CountDeliveries(deliveries func() uint64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "cablehub", Name: "deliveries_total", Help: "Publications queued to this node's clients, one per subscriber reached",
		ConstLabels: prometheus.Labels(m.tags),
	}, func() float64 { return float64(deliveries()) }))
}

// Published is broadcast_msg_total: the publications accepted through
// this node since it started.
func (m *Metrics) Published() uint64 { return uint64(counterValue(m.BroadcastMsgTotal)) }
