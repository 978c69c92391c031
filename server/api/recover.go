package api

import (
	"context"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Recovery turns a panic while a call is handled into an INTERNAL status
// for that call. grpc-go does not recover panics in handlers (unlike
// net/http), so without it one bad request would end the process and every
// client's connection with it.
//
// The caller sees only codes.Internal "internal error"; the panic value and
// the stack go to the log. Calls through InProcess (the REST gateway) need
// the interceptor in that chain too: they never pass the gRPC server's.
type Recovery struct {
	log *slog.Logger
}

// NewRecovery returns a Recovery logging to log.
func NewRecovery(log *slog.Logger) *Recovery {
	return &Recovery{log: log}
}

// UnaryInterceptor recovers panics in the rest of a unary call's chain:
// place it after interceptors that should see the INTERNAL status (metrics)
// and before those it should guard (auth) and the handler.
func (rc *Recovery) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, rc.recovered(info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

// StreamInterceptor recovers panics in the rest of a streaming call's
// chain; messages already sent stay sent, and the call ends INTERNAL.
func (rc *Recovery) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = rc.recovered(info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}

// recovered logs a panic at ERROR with the panicking goroutine's stack
// (called from the deferred function, debug.Stack still shows where the
// panic began) and returns what the caller learns of it.
func (rc *Recovery) recovered(method string, p any) error {
	rc.log.Error("panic while handling a gRPC call", "method", method, "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}
