// Package client is the Go SDK for Cablehub's server API: publishing to
// streams, reading presence and disconnecting users over gRPC.
//
// It is a thin layer over the generated stubs in
// github.com/cablehub/cablehub/gen/cablehub/v1: it derives the API token
// from the application secret the way the server does, attaches it to every
// call, applies a default deadline, converts presence info to plain Go
// values, and reports every failure as one error type, *Error, carrying the
// gRPC status code. Applications that need more than that can use the stubs
// directly; the wire contract is the same.
//
//	c, err := client.New("127.0.0.1:8080", client.Options{Secret: os.Getenv("CABLEHUB_SECRET")})
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Publish(ctx, "chat/1", `{"text":"hi"}`, client.PublishOptions{})
package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// DefaultTimeout bounds a call whose context has no deadline of its own.
const DefaultTimeout = 5 * time.Second

// Options configures a Client. Secret and APISecret are alternatives: with
// both empty, calls carry no token, which a server without an API secret
// accepts and any other server refuses with codes.Unauthenticated.
type Options struct {
	// Secret is the application secret (--secret). The API token is derived
	// from it exactly as the server derives its API secret when --api_secret
	// is not set: hex(HMAC-SHA256(Secret, "api-cable")).
	Secret string
	// APISecret is the server's --api_secret, used as the token as is. It
	// wins over Secret.
	APISecret string
	// Timeout is the deadline given to calls whose context has none;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// DialOptions are added to the connection's options, after the
	// client's own (plaintext transport), so they can replace it, for
	// example with TLS credentials.
	DialOptions []grpc.DialOption
}

// Client calls one Cablehub server (or a load balancer in front of
// several). It is safe for concurrent use; create one and share it.
type Client struct {
	conn    *grpc.ClientConn
	stub    cablehubv1.CableServiceClient
	token   string
	timeout time.Duration
}

// New returns a client for addr ("host:port" or any gRPC target). It does
// not connect yet: the connection is made by the first call and re-made
// when it breaks, so New fails only on a malformed target or options.
func New(addr string, opts Options) (*Client, error) {
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts.DialOptions...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("cablehub client: %w", err)
	}
	c := &Client{conn: conn, stub: cablehubv1.NewCableServiceClient(conn), token: Token(opts), timeout: opts.Timeout}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// Token returns the bearer token a client with opts sends: APISecret when
// set, else the one derived from Secret, else "".
func Token(opts Options) string {
	switch {
	case opts.APISecret != "":
		return opts.APISecret
	case opts.Secret != "":
		mac := hmac.New(sha256.New, []byte(opts.Secret))
		mac.Write([]byte("api-cable"))
		return hex.EncodeToString(mac.Sum(nil))
	}
	return ""
}

// Close releases the connection. Calls made after it fail.
func (c *Client) Close() error { return c.conn.Close() }

// Error is the error of every failed call: the gRPC status code and the
// server's message. Codes a caller can act on: Unauthenticated (wrong or
// missing token), InvalidArgument (a refused request; nothing of it was
// delivered), Unimplemented (presence on a broker that keeps none),
// Unavailable and DeadlineExceeded (the outcome is unknown: a retry of a
// publish should carry an idempotency key).
type Error struct {
	Code    codes.Code
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cablehub: %s: %s", e.Code, e.Message)
}

// wrap turns a call's error into *Error.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	return &Error{Code: st.Code(), Message: st.Message()}
}

// call prepares ctx for one RPC: the token and, when ctx has no deadline,
// the client's timeout.
func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	return ctx, cancel
}
