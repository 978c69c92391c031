package rpc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of the HTTP transport (spec B.5 and this package's own limits).
const (
	// DefaultHTTPRequestTimeout is the per-request timeout when neither
	// HTTPTimeout nor RequestTimeout is set (B.5).
	DefaultHTTPRequestTimeout = 3000 * time.Millisecond
	// DefaultHTTPMaxResponseBytes bounds a reply body (after gzip
	// decoding): a larger reply fails the call with codes.Unknown instead
	// of being buffered. AnyCable reads replies without a bound; 64 MiB is
	// far above any sane RPC reply and keeps a broken or hostile back end
	// from exhausting memory.
	DefaultHTTPMaxResponseBytes = 64 << 20
	// HTTPSecretNone as the Secret disables the Authorization header
	// even when an application secret is configured (B.1).
	HTTPSecretNone = "none"
	// errorBodyLogLimit is how much of a non-200 reply body is logged.
	errorBodyLogLimit = 1024
)

// HTTPOptions configure the HTTP RPC transport (spec part B). Zero values
// take the documented defaults.
type HTTPOptions struct {
	// URL is the base URL, http:// or https://: each call POSTs to URL
	// path-joined with connect, command or disconnect; a trailing slash is
	// tolerated and the query string is kept (B.1).
	URL string
	// Secret is the authorization key sent as "Authorization: Bearer
	// <Secret>" (--http_rpc_secret); "none" sends no header.
	Secret string
	// AppSecret is the application secret (--secret): when Secret is
	// empty the key is DeriveSecret(AppSecret). Both empty: no header.
	AppSecret string
	// Concurrency is the number of calls at the back end at once
	// (--rpc_concurrency); ≤ 0 means DefaultConcurrency.
	Concurrency int
	// HTTPTimeout is the per-request timeout (--http_rpc_timeout); when ≤ 0,
	// RequestTimeout (--rpc_request_timeout) applies, and when that is ≤ 0
	// too, DefaultHTTPRequestTimeout (B.5).
	HTTPTimeout    time.Duration
	RequestTimeout time.Duration
	// CommandTimeout bounds a whole call, retries included
	// (--rpc_command_timeout); ≤ 0 means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// MaxResponseBytes bounds a reply body; ≤ 0 means
	// DefaultHTTPMaxResponseBytes.
	MaxResponseBytes int64
	// TLSConfig is used for https:// URLs (nil: system roots). A TLS
	// failure fails the call with codes.Unauthenticated, not retried.
	TLSConfig *tls.Config
	// Breaker configures the circuit breaker (B.4 defaults).
	Breaker BreakerOptions
	// Metrics receives calls, retries, pending and durations; may be nil.
	Metrics Metrics
}

// HTTP is the RPC client speaking AnyCable's RPC over HTTP (spec part B):
// JSON bodies POSTed to <base>/connect|command|disconnect. It implements
// Client; see the package doc for the error contract. Safe for concurrent
// use.
type HTTP struct {
	base        *url.URL
	auth        string // the Authorization header value, "" for none
	client      *http.Client
	transport   *http.Transport
	timeout     time.Duration // per request (B.5)
	maxBody     int64
	breaker     *breaker
	invoker     *Invoker
	log         *slog.Logger
	closed      atomic.Bool
	closedError error
}

var _ Client = (*HTTP)(nil)

// DeriveSecret is the HTTP RPC key AnyCable derives from the application
// secret (B.1): lower-case hex HMAC-SHA256 with the secret as key over the
// message "rpc-cable".
func DeriveSecret(appSecret string) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write([]byte("rpc-cable"))
	return hex.EncodeToString(mac.Sum(nil))
}

// NewHTTP validates opts and returns a client; it makes no request (the
// back end may come up later: calls retry while it is unreachable).
func NewHTTP(opts HTTPOptions, log *slog.Logger) (*HTTP, error) {
	if log == nil {
		log = slog.Default()
	}
	base, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("rpc: invalid HTTP RPC URL %q: %w", opts.URL, err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("rpc: HTTP RPC URL %q must be http://host… or https://host…", opts.URL)
	}
	base.Fragment, base.RawFragment = "", ""

	h := &HTTP{
		base:        base,
		timeout:     httpRequestTimeout(opts),
		maxBody:     opts.MaxResponseBytes,
		breaker:     newBreaker(opts.Breaker),
		log:         log.With("component", "rpc", "impl", "http"),
		closedError: status.Error(codes.Unavailable, "rpc client is closed"),
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultHTTPMaxResponseBytes
	}
	switch {
	case opts.Secret == HTTPSecretNone:
	case opts.Secret != "":
		h.auth = "Bearer " + opts.Secret
	case opts.AppSecret != "":
		h.auth = "Bearer " + DeriveSecret(opts.AppSecret)
		h.log.Info("auto-generated authorization secret from the application secret")
	}

	concurrency, _ := NormalizeConcurrency(opts.Concurrency) // NewInvoker logs a revert
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency // one kept-alive connection per slot
	if opts.TLSConfig != nil {
		tr.TLSClientConfig = opts.TLSConfig.Clone()
	}
	h.transport = tr
	h.client = &http.Client{
		Transport: tr,
		// A redirect is an answer other than 200 (UNKNOWN, B.3), not
		// something to follow with the application's secret.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	policy := RetryPolicy{CommandTimeout: opts.CommandTimeout, RequestTimeout: h.timeout}
	h.invoker = NewInvoker(opts.Concurrency, policy, opts.Metrics, h.log)
	return h, nil
}

// httpRequestTimeout is B.5's per-request timeout.
func httpRequestTimeout(opts HTTPOptions) time.Duration {
	switch {
	case opts.HTTPTimeout > 0:
		return opts.HTTPTimeout
	case opts.RequestTimeout > 0:
		return opts.RequestTimeout
	default:
		return DefaultHTTPRequestTimeout
	}
}

// Connect POSTs <base>/connect.
func (h *HTTP) Connect(ctx context.Context, sid string, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
	body, err := encodeConnect(req)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode connect request: %v", err)
	}
	var resp *anycablepb.ConnectionResponse
	err = h.call(ctx, MethodConnect, sid, body, func(b []byte) (err error) {
		resp, err = decodeConnect(b)
		return err
	})
	return resp, err
}

// Command POSTs <base>/command.
func (h *HTTP) Command(ctx context.Context, sid string, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
	body, err := encodeCommand(req)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode command request: %v", err)
	}
	var resp *anycablepb.CommandResponse
	err = h.call(ctx, MethodCommand, sid, body, func(b []byte) (err error) {
		resp, err = decodeCommand(b)
		return err
	})
	return resp, err
}

// Disconnect POSTs <base>/disconnect.
func (h *HTTP) Disconnect(ctx context.Context, sid string, req *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
	body, err := encodeDisconnect(req)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode disconnect request: %v", err)
	}
	var resp *anycablepb.DisconnectResponse
	err = h.call(ctx, MethodDisconnect, sid, body, func(b []byte) (err error) {
		resp, err = decodeDisconnect(b)
		return err
	})
	return resp, err
}

// Close makes later calls fail with codes.Unavailable and closes idle
// connections; calls in progress finish.
func (h *HTTP) Close() error {
	h.closed.Store(true)
	h.transport.CloseIdleConnections()
	return nil
}

// call runs one RPC under the shared discipline (slot, retries, budget);
// decode parses a 200 body, and its error fails the call with
// codes.Unknown (not retried), as an unparsable reply does in AnyCable.
func (h *HTTP) call(ctx context.Context, method, sid string, body []byte, decode func([]byte) error) error {
	if h.closed.Load() {
		return h.closedError
	}
	return h.invoker.Invoke(ctx, method, sid, func(ctx context.Context) error {
		reply, err := h.attempt(ctx, method, sid, body)
		if err != nil {
			return err
		}
		if err := decode(reply); err != nil {
			return status.Errorf(codes.Unknown, "http rpc %s: invalid reply: %v", method, err)
		}
		return nil
	})
}

// attempt makes one request (ctx carries the per-request timeout, set by
// the Invoker's policy) and returns the body of a 200 reply or a status
// error (B.3). While the circuit breaker is open it sends nothing and
// fails with codes.Unavailable "http rpc is temporarily unavailable"; that
// is retried like any Unavailable, as in AnyCable, so a call that arrives
// just before the breaker half-opens can still get through within its
// budget, while the back end sees no traffic meanwhile.
func (h *HTTP) attempt(ctx context.Context, method, sid string, body []byte) ([]byte, error) {
	done, err := h.breaker.allow()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base.JoinPath(method).String(), bytes.NewReader(body))
	if err != nil {
		done(outcomeIgnored)
		return nil, status.Errorf(codes.Internal, "http rpc %s: %v", method, err)
	}
	if h.auth != "" {
		req.Header.Set("Authorization", h.auth)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Anycable-Meta-Protov", ProtocolVersion)
	if sid != "" {
		req.Header.Set("X-Anycable-Meta-Sid", sid)
	}

	res, err := h.client.Do(req)
	if err != nil {
		code := transportCode(ctx, err)
		if code == codes.Canceled {
			done(outcomeIgnored)
		} else {
			done(outcomeFailure)
		}
		return nil, status.Errorf(code, "http rpc %s: %v", method, err)
	}
	defer res.Body.Close()
	reply, readErr := h.readBody(res)
	if readErr != nil && transportCode(ctx, readErr) != codes.Unknown {
		// The reply broke off (reset, timeout) rather than being too big.
		done(outcomeFailure)
		return nil, status.Errorf(transportCode(ctx, readErr), "http rpc %s: reading reply: %v", method, readErr)
	}
	done(outcomeSuccess)
	if res.StatusCode != http.StatusOK {
		return nil, h.statusError(method, res.StatusCode, reply)
	}
	if readErr != nil {
		return nil, status.Errorf(codes.Unknown, "http rpc %s: %v", method, readErr)
	}
	return reply, nil
}

// errBodyTooLarge is readBody's error for a reply above the limit.
var errBodyTooLarge = errors.New("reply body exceeds the size limit")

// readBody reads a reply body up to the limit (gzip already decoded by
// the transport, so the limit bounds the decoded size).
func (h *HTTP) readBody(res *http.Response) ([]byte, error) {
	limit := h.maxBody
	if res.StatusCode != http.StatusOK {
		limit = errorBodyLogLimit // only logged
	}
	if res.StatusCode == http.StatusOK && res.ContentLength > limit {
		return nil, fmt.Errorf("%w (%d > %d bytes)", errBodyTooLarge, res.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		if res.StatusCode != http.StatusOK {
			return b[:limit], nil // truncated for the log
		}
		return nil, fmt.Errorf("%w (%d bytes)", errBodyTooLarge, limit)
	}
	return b, nil
}

// statusError maps a non-200 reply (B.3): 401 → Unauthenticated, 400 and
// 422 → InvalidArgument, anything else → Unknown; none is retried.
func (h *HTTP) statusError(method string, code int, body []byte) error {
	switch code {
	case http.StatusUnauthorized:
		return status.Errorf(codes.Unauthenticated, "http rpc %s: returned 401 (check the RPC secret)", method)
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		h.log.Error("http rpc rejected the request", "method", method, "status", code, "body", string(body))
		return status.Errorf(codes.InvalidArgument, "http rpc %s: returned %d: %s", method, code, body)
	default:
		h.log.Error("http rpc returned an unexpected status", "method", method, "status", code, "body", string(body))
		return status.Errorf(codes.Unknown, "http rpc %s: returned %d: %s", method, code, body)
	}
}

// transportCode classifies an error of http.Client.Do or of reading a
// body: the caller's cancellation → Canceled, a deadline (per request or
// the call's budget) → DeadlineExceeded, a TLS failure → Unauthenticated,
// a too-large body → Unknown, anything else (refused, reset, DNS) →
// Unavailable, which is retried.
func transportCode(ctx context.Context, err error) codes.Code {
	var (
		certErr     *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidCert x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return codes.Unknown
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return codes.DeadlineExceeded
	case errors.As(err, &netErr) && netErr.Timeout():
		return codes.DeadlineExceeded
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalidCert), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return codes.Unauthenticated
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http replaces the tls.RecordHeaderError of a plain-HTTP
		// server with this unexported error; it is a TLS failure too.
		return codes.Unauthenticated
	default:
		return codes.Unavailable
	}
}
