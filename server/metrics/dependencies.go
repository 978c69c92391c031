package metrics

import "github.com/prometheus/client_golang/prometheus"

// dependencies counts the outages of the connections to Redis and NATS
// (the broker's and pub/sub's client, the broadcast adapters'
// subscriptions) and the broadcasts the adapters refuse for their size.
// They are Cablehub's own, by label, so Prometheus-only:
//
//   - cablehub_dependency_lost_total{component}: outages begun, one per
//     outage however many calls failed in it (see package connwatch);
//   - cablehub_dependency_restored_total{component}: outages ended; lost
//     minus restored is 1 while a component is down;
//   - cablehub_broadcast_too_large_total{adapter}: payloads over
//     --api_max_body_size dropped by the redis, redisx or nats adapter.
type dependencies struct {
	lost, restored, tooLarge *prometheus.CounterVec
}

// newDependencies creates the counters, registered on r.
func newDependencies(r prometheus.Registerer) dependencies {
	vec := func(name, help, label string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cablehub", Name: name, Help: help}, []string{label})
		r.MustRegister(c)
		return c
	}
	return dependencies{
		lost:     vec("dependency_lost_total", "Connections to Redis or NATS lost (once per outage), by component", "component"),
		restored: vec("dependency_restored_total", "Connections to Redis or NATS restored after an outage, by component", "component"),
		tooLarge: vec("broadcast_too_large_total", "Broadcast payloads dropped for exceeding --api_max_body_size, by adapter", "adapter"),
	}
}

// DependencyLost counts an outage of component beginning (it implements
// connwatch.Counters).
func (m *Metrics) DependencyLost(component string) {
	m.deps.lost.WithLabelValues(component).Inc()
}

// DependencyRestored counts an outage of component ending.
func (m *Metrics) DependencyRestored(component string) {
	m.deps.restored.WithLabelValues(component).Inc()
}

// BroadcastTooLarge counts a payload the adapter dropped for its size.
func (m *Metrics) BroadcastTooLarge(adapter string) {
	m.deps.tooLarge.WithLabelValues(adapter).Inc()
}
