package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// RPC records the RPC client's calls (it implements rpc.Metrics) under
// AnyCable's names, so its dashboards keep working:
//
//   - anycable_go_rpc_call_total: calls made, whatever their outcome;
//   - anycable_go_rpc_retries_total: retries (UNAVAILABLE,
//     RESOURCE_EXHAUSTED);
//   - anycable_go_rpc_error_total: calls that got no answer, for any other
//     reason than a timeout or a cancellation;
//   - anycable_go_rpc_timeout_total: calls that ran out of time
//     (DEADLINE_EXCEEDED);
//   - anycable_go_rpc_canceled_total: calls given up by their caller
//     (CANCELED: the client went away);
//   - anycable_go_rpc_pending_num: calls waiting for a --rpc_concurrency
//     slot.
//
// An ERROR or FAILURE answer is an answer, not an error: it counts in
// rpc_call_total only. cablehub_rpc_call_duration_seconds, by method
// (connect, command, disconnect), is Cablehub's own: the time from
// entering the client to its return, slot wait and retries included.
type RPC struct {
	calls    prometheus.Counter
	retries  prometheus.Counter
	errors   prometheus.Counter
	timeouts prometheus.Counter
	canceled prometheus.Counter
	pending  prometheus.Gauge
	duration *prometheus.HistogramVec
}

// rpcBuckets span a local back end's sub-millisecond answer to the 3 s
// default call budget.
var rpcBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// newRPC creates the RPC metrics, registered on r.
func newRPC(r prometheus.Registerer) *RPC {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
		r.MustRegister(c)
		return c
	}
	m := &RPC{
		calls:    counter("rpc_call_total", "The total number of RPC calls"),
		retries:  counter("rpc_retries_total", "The total number of RPC call retries"),
		errors:   counter("rpc_error_total", "The total number of failed RPC calls"),
		timeouts: counter("rpc_timeout_total", "The total number of RPC calls that timed out"),
		canceled: counter("rpc_canceled_total", "The total number of RPC calls canceled by their caller"),
		pending:  prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "rpc_pending_num", Help: "The number of RPC calls waiting for a concurrency slot"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cablehub", Name: "rpc_call_duration_seconds", Help: "RPC call duration by method, slot wait and retries included",
			Buckets: rpcBuckets,
		}, []string{"method"}),
	}
	r.MustRegister(m.pending, m.duration)
	return m
}

// Calls is rpc_call_total: the calls made since the process started.
func (m *RPC) Calls() uint64 { return uint64(counterValue(m.calls)) }

// Pending adds delta to rpc_pending_num.
func (m *RPC) Pending(delta int) { m.pending.Add(float64(delta)) }

// InFlight is not recorded: AnyCable has no such metric, and pending
// calls are what shows a back end that cannot keep up.
func (m *RPC) InFlight(int) {}

// Retry counts one retry.
func (m *RPC) Retry(string, codes.Code) { m.retries.Inc() }

// Done counts a finished call by its final code and records its duration.
func (m *RPC) Done(method string, code codes.Code, elapsed time.Duration) {
	m.calls.Inc()
	switch code {
	case codes.OK:
	case codes.DeadlineExceeded:
		m.timeouts.Inc()
	case codes.Canceled:
		m.canceled.Inc()
	default:
		m.errors.Inc()
	}
	m.duration.WithLabelValues(method).Observe(elapsed.Seconds())
}
