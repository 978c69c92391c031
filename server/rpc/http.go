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

	"github.com/cablehub/cablehub/server/redact"
)

// Defaults of the HTTP transport: AnyCable's, and this package's own
// limits.
const (
	// DefaultHTTPRequestTimeout is the per-request timeout when neither
	// HTTPTimeout nor RequestTimeout is set, as in AnyCable (where gRPC
	// attempts have none).
	DefaultHTTPRequestTimeout = 3000 * time.Millisecond
	// DefaultHTTPMaxResponseBytes bounds a reply body (after gzip
	// decoding): a larger reply fails the call with codes.Unknown, not
	// retried, after reading no more than the limit. It is gRPC's default
	// receive limit, so both transports refuse the same replies
	// (--rpc_max_call_recv_size sets both). AnyCable reads HTTP replies
	// without a bound, and a back end answering 60 MB replies then holds
	// that much per call in flight; a reply this large could not reach a
	// client anyway: its transmissions would pass --ws_max_pending_size
	// (1 MiB by default) and the client would be cut as too slow.
	DefaultHTTPMaxResponseBytes = 4 << 20
	// HTTPSecretNone as the Secret disables the Authorization header
	// even when an application secret is configured, as
	// --http_rpc_secret=none does in AnyCable.
	HTTPSecretNone = "none"
	// errorBodyLogLimit is how much of a non-200 reply body is logged.
	errorBodyLogLimit = 1024
)

// HTTPOptions configure the HTTP RPC transport. Zero values take the
// documented defaults.
type HTTPOptions struct {
	// URL is the base URL, http:// or https://: each call POSTs to URL
	// path-joined with connect, command or disconnect; a trailing slash is
	// tolerated and the query string is kept, as AnyCable does
	// (http://h/rpc/?key=1 gets POST /rpc/connect?key=1).
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
	// too, DefaultHTTPRequestTimeout.
	HTTPTimeout    time.Duration
	RequestTimeout time.Duration
	// CommandTimeout bounds a whole call, retries included
	// (--rpc_command_timeout); ≤ 0 means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// MaxResponseBytes bounds a reply body (--rpc_max_call_recv_size);
	// ≤ 0 means DefaultHTTPMaxResponseBytes.
	MaxResponseBytes int64
	// TLSConfig is used for https:// URLs (nil: system roots). A TLS
	// failure fails the call with codes.Unauthenticated, not retried.
	TLSConfig *tls.Config
	// Breaker configures the circuit breaker; zero values take AnyCable's
	// settings (see BreakerOptions).
	Breaker BreakerOptions
	// Metrics receives calls, retries, pending and durations; may be nil.
	Metrics Metrics
}

// HTTP is the RPC client speaking AnyCable's RPC over HTTP: JSON bodies
// POSTed to <base>/connect|command|disconnect. It implements Client; see
// the package doc for the error contract. Safe for concurrent use.
type HTTP struct {
	base        *url.URL
	auth        string // the Authorization header value, "" for none
	client      *http.Client
	transport   *http.Transport
	timeout     time.Duration // per request: httpRequestTimeout(opts)
	maxBody     int64
	breaker     *breaker
	invoker     *Invoker
	log         *slog.Logger
	closed      atomic.Bool
	closedError error
}

var _ Client = (*HTTP)(nil)

// DeriveSecret is the HTTP RPC key AnyCable derives from the application
// secret: lower-case hex HMAC-SHA256 with the secret as key over the
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
		return nil, redact.Error(fmt.Errorf("rpc: invalid HTTP RPC URL %q: %w", opts.URL, err))
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, redact.Error(fmt.Errorf("rpc: HTTP RPC URL %q must be http://host… or https://host…", opts.URL))
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
		// A redirect is an answer other than 200 (codes.Unknown, see
		// statusError), not something to follow with the application's
		// secret.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	policy := RetryPolicy{CommandTimeout: opts.CommandTimeout, RequestTimeout: h.timeout}
	h.invoker = NewInvoker(opts.Concurrency, policy, opts.Metrics, h.log)
	return h, nil
}

// httpRequestTimeout is AnyCable's per-request timeout of HTTP RPC:
// --http_rpc_timeout, else --rpc_request_timeout, else 3 s.
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
// error, mapped as AnyCable maps it: transportCode's when the exchange
// failed, statusError's for another answer. While the circuit breaker is
// open it sends nothing and fails with codes.Unavailable "http rpc is
// temporarily unavailable"; that is retried like any Unavailable, as in
// AnyCable, so a call that arrives just before the breaker half-opens can
// still get through within its budget, while the back end sees no traffic
// meanwhile.
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
var errBodyTooLarge = errors.New("reply larger than the limit of --rpc_max_call_recv_size")

// readBody reads a reply body up to the limit (gzip already decoded by
// the transport, so the limit bounds the decoded size). A reply that
// announces a larger length is refused unread; one that turns out larger
// is refused once the limit is read and one byte more arrives. Either way
// the caller's Close of the unread body closes the connection, so the
// back end cannot push the rest. No buffer outlives the call.
func (h *HTTP) readBody(res *http.Response) ([]byte, error) {
	limit := h.maxBody
	if res.StatusCode != http.StatusOK {
		limit = errorBodyLogLimit // only logged
	}
	if res.StatusCode == http.StatusOK && res.ContentLength > limit {
		return nil, fmt.Errorf("%w (%d bytes announced, %d allowed)", errBodyTooLarge, res.ContentLength, limit)
	}
	b, more, err := readAtMost(res.Body, limit, res.ContentLength)
	if err != nil {
		return nil, err
	}
	if more && res.StatusCode == http.StatusOK {
		return nil, fmt.Errorf("%w (more than %d bytes)", errBodyTooLarge, limit)
	}
	return b, nil // a non-200 body is cut at the limit, for the log
}

// readAtMost reads r to its end or max bytes, whichever comes first; more
// reports that r had more. The buffer has the announced length (size ≥
// 0), else it doubles as needed up to max, so that reading allocates
// about twice what was read at most (io.ReadAll's growth allocates five
// times).
func readAtMost(r io.Reader, max, size int64) (b []byte, more bool, err error) {
	c := min(max, 32<<10)
	if size >= 0 {
		c = min(max, size)
	}
	b = make([]byte, 0, c)
	for int64(len(b)) < max {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(max, 2*int64(cap(b))+512))
			copy(grown, b)
			b = grown
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	var probe [1]byte
	n, err := io.ReadFull(r, probe[:])
	if n > 0 {
		return b, true, nil
	}
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	return b, false, nil
}

// statusError maps a non-200 reply as AnyCable does: 401 →
// Unauthenticated, 400 and 422 → InvalidArgument, anything else →
// Unknown; none is retried.
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
