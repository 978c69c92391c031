// Package client is the Go SDK for Cablehub's server API over gRPC:
// publishing to streams, reading presence, history and the cluster's
// state, watching a stream live, and disconnecting users.
//
// It is a thin layer over the generated stubs in
// github.com/cablehub/cablehub/gen/cablehub/v1: it derives the API token
// from the application secret the way the server does, attaches it to every
// call, applies a default deadline, retries what is safe to retry when
// asked to, resumes a Watch after the connection breaks, converts answers
// to plain Go values, and reports every failure as one error type, *Error,
// carrying the gRPC status code. Applications that need more than that can
// use the stubs directly; the wire contract is the same.
//
//	c, err := client.New("127.0.0.1:8080", client.Options{Secret: os.Getenv("CABLEHUB_SECRET")})
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Publish(ctx, "chat/1", `{"text":"hi"}`, client.PublishOptions{})
//
// Every method takes a context first; a call whose context has no deadline
// gets Options.Timeout (Watch excepted: it runs until its context ends).
package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// DefaultTimeout bounds a call whose context has no deadline of its own.
const DefaultTimeout = 5 * time.Second

// The backoff between retries of a call and between re-opens of a Watch:
// firstDelay doubling up to maxDelay.
const (
	firstDelay = 100 * time.Millisecond
	maxDelay   = 5 * time.Second
)

// Options configures a Client. Secret and APISecret are alternatives (New
// refuses both): with both empty, calls carry no token, which a server
// without an API secret accepts and any other server refuses with
// codes.Unauthenticated.
type Options struct {
	// Secret is the application secret (--secret). The API token is derived
	// from it exactly as the server derives its API secret when --api_secret
	// is not set: hex(HMAC-SHA256(Secret, "api-cable")).
	Secret string
	// APISecret is the server's --api_secret, used as the token as is.
	APISecret string
	// Timeout is the deadline given to each attempt of a unary call whose
	// context has none; DefaultTimeout when zero. A context's own deadline
	// bounds the call with all its retries. Watch has no timeout.
	Timeout time.Duration
	// Retries is how many times a call failing with codes.Unavailable is
	// made again, after 100 ms doubling up to 5 s; 0 (the default) makes
	// none. With Retries > 0, Publish and PublishBatch first give every
	// publication without an IdempotencyKey a random one, the same for all
	// attempts, so that a retry cannot deliver twice.
	Retries int
	// TLS configures the transport security of an https:// address (nil:
	// the system's roots, the server name from the address). Set with a
	// host:port address, it turns TLS on too; with an http:// address New
	// refuses it.
	TLS *tls.Config
	// DialOptions are added to the connection's options, after the
	// client's own (transport credentials, a reconnection backoff of 100 ms
	// up to 5 s, a keepalive ping after 30 s of silence while calls are
	// open), so they can replace them.
	DialOptions []grpc.DialOption
}

// Client calls one Cablehub server (or a load balancer in front of
// several). It is safe for concurrent use; create one and share it.
type Client struct {
	conn    *grpc.ClientConn
	stub    cablehubv1.CableServiceClient
	token   string
	timeout time.Duration
	retries int
	closed  atomic.Bool
}

// New returns a client for addr: "host:port" (plaintext),
// "http://host:port" (plaintext) or "https://host:port" (TLS; the port
// defaults to 80 and 443 with a scheme). It does not connect yet: the
// connection is made by the first call and re-made when it breaks, so New
// fails only on bad arguments, with a *Error matching ErrInvalidArgument: an
// address of another form (another scheme, a path), both Secret and
// APISecret, negative Retries or Timeout, TLS with http://.
func New(addr string, opts Options) (*Client, error) {
	target, useTLS, err := parseAddress(addr)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Secret != "" && opts.APISecret != "":
		return nil, argError("give Secret or APISecret, not both")
	case opts.Retries < 0:
		return nil, argError("Retries must not be negative")
	case opts.Timeout < 0:
		return nil, argError("Timeout must not be negative")
	case opts.TLS != nil && !useTLS && strings.HasPrefix(strings.ToLower(addr), "http://"):
		return nil, argError("TLS options with an http:// address: use https://")
	}
	creds := insecure.NewCredentials()
	if useTLS || opts.TLS != nil {
		cfg := &tls.Config{}
		if opts.TLS != nil {
			cfg = opts.TLS.Clone()
		}
		creds = credentials.NewTLS(cfg)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Reconnect as soon as a Watch or a retry would try again, instead
		// of gRPC's default of up to two minutes after an outage.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: firstDelay, Multiplier: 2, Jitter: 0.2, MaxDelay: maxDelay},
			MinConnectTimeout: 20 * time.Second,
		}),
		// While calls are open, ping a connection silent for 30 s, and
		// drop it when the answer takes 10 s: a Watch on a server that
		// vanished without closing the connection ends with UNAVAILABLE,
		// and resumes, instead of waiting forever. (Cablehub lets clients
		// ping every 5 s.)
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, opts.DialOptions...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, argError("address %q: %v", addr, err)
	}
	c := &Client{conn: conn, stub: cablehubv1.NewCableServiceClient(conn), token: Token(opts),
		timeout: opts.Timeout, retries: opts.Retries}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// parseAddress returns the gRPC target ("host:port") of addr and whether
// its scheme asks for TLS.
func parseAddress(addr string) (target string, useTLS bool, err error) {
	bad := func(why string) (string, bool, error) {
		return "", false, argError("address %q: %s; want host:port, http://host:port or https://host:port", addr, why)
	}
	if !strings.Contains(addr, "://") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || strings.Contains(host, "/") {
			return bad("not host:port")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return bad("bad port")
		}
		return addr, false, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		return bad("not a URL")
	}
	port := "80"
	switch strings.ToLower(u.Scheme) {
	case "http":
	case "https":
		useTLS, port = true, "443"
	default:
		return bad("unsupported scheme " + strconv.Quote(u.Scheme))
	}
	switch {
	case u.Hostname() == "":
		return bad("no host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return bad("only a host and a port may follow the scheme")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n > 65535 {
			return bad("bad port")
		}
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), useTLS, nil
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

// Close releases the connection and ends every Watch in progress. Calls
// made after it fail with ErrClosed without touching the network. Closing
// again does nothing and returns nil.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	return c.conn.Close()
}

// fail turns a call's error into *Error, naming a call cut short by Close
// as closed.
func (c *Client) fail(err error) error {
	if c.closed.Load() {
		e := closedError()
		e.cause = err
		return e
	}
	return wrap(err)
}

// authorize adds the token to ctx's outgoing metadata.
func (c *Client) authorize(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// unary makes one unary call with f: the token, Options.Timeout for each
// attempt when ctx has no deadline, and up to Options.Retries more attempts
// while it fails with codes.Unavailable. Callers must make f safe to repeat.
func unary[T any](ctx context.Context, c *Client, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if c.closed.Load() {
		return zero, closedError()
	}
	ctx = c.authorize(ctx)
	delay := firstDelay
	for attempt := 0; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok {
			actx, cancel = context.WithTimeout(ctx, c.timeout)
		}
		r, err := f(actx)
		cancel()
		if err == nil {
			return r, nil
		}
		err = c.fail(err)
		if attempt >= c.retries || !errors.Is(err, ErrUnavailable) {
			return zero, err
		}
		if err := c.sleep(ctx, delay); err != nil {
			return zero, err
		}
		delay = min(2*delay, maxDelay)
	}
}

// sleep waits d, or returns the error of ctx ending or of the client
// closing first.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		if c.closed.Load() {
			return closedError()
		}
		return nil
	case <-ctx.Done():
		return c.fail(ctx.Err())
	}
}
