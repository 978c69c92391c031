package rpc

import (
	"time"

	"google.golang.org/grpc/codes"
)

// Metrics receives what AnyCable's rpc_* metrics need (calls, errors,
// retries, pending, duration); mapping to metric names is the caller's job.
// Implementations must be safe for concurrent use and cheap: they are called
// on every RPC. A nil Metrics is allowed everywhere and records nothing.
type Metrics interface {
	// Pending is called with +1 when a call starts waiting for a
	// concurrency slot and -1 when it stops waiting (it got a slot or its
	// context ended). The running sum is AnyCable's rpc_pending_num.
	Pending(delta int)
	// InFlight is called with +1 when a call takes a slot and -1 when it
	// releases it, so pending + in flight is every call inside the client.
	InFlight(delta int)
	// Retry is called once per retry, before its delay, with the code that
	// caused it (ResourceExhausted or Unavailable).
	Retry(method string, code codes.Code)
	// Done is called exactly once per call with its final code (codes.OK on
	// success; an ERROR/FAILURE status answer is still codes.OK) and the
	// time from entering the client to returning, slot wait included.
	Done(method string, code codes.Code, elapsed time.Duration)
}

// nopMetrics is what a nil Metrics stands for.
type nopMetrics struct{}

func (nopMetrics) Pending(int)                            {}
func (nopMetrics) InFlight(int)                           {}
func (nopMetrics) Retry(string, codes.Code)               {}
func (nopMetrics) Done(string, codes.Code, time.Duration) {}

// orNop makes a nil Metrics usable.
func orNop(m Metrics) Metrics {
	if m == nil {
		return nopMetrics{}
	}
	return m
}
