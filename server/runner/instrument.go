package runner

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	apiroutes "github.com/cablehub/cablehub/gateway/routes"
	"github.com/cablehub/cablehub/server/metrics"
)

// instrument counts REST API requests and their latency by route and status
// code. The route label is the table's label of the route the path belongs
// to (apiroutes.Table.Lookup), so stream names never become label values. The
// path is read after the gateway has handled the request: a remote
// disconnect command sent to the publish route counts as "disconnect", the
// route the gateway rewrote it to.
func instrument(h http.Handler, prefix string, m *metrics.Metrics) http.Handler {
	table := apiroutes.New()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, req)
		route := apiroutes.OtherLabel
		if rt, ok := table.Lookup(strings.TrimPrefix(req.URL.Path, prefix)); ok {
			route = rt.Label
		}
		code := strconv.Itoa(rec.code)
		m.APIRequests.WithLabelValues(route, code).Inc()
		m.APILatency.WithLabelValues(route, code).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the server's writer, for the
// gateway's body read deadline.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// grpcMetrics counts calls to the gRPC server by method and status code. REST
// calls reach the service in process and are counted by instrument instead.
func (r *Runner) grpcMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	route := "grpc:" + info.FullMethod
	code := status.Code(err).String()
	r.metrics.APIRequests.WithLabelValues(route, code).Inc()
	r.metrics.APILatency.WithLabelValues(route, code).Observe(time.Since(start).Seconds())
	return resp, err
}
