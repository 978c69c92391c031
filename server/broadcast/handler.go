package broadcast

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/publication"
)

// Handler turns payloads in AnyCable's broadcast format into Sink calls.
// Every adapter has one; it is safe for concurrent use.
//
// A payload is one of (AnyCable's order):
//   - a publication object, or a non-empty array of them (publication.Decode);
//   - a remote command, an object with "command" and no "stream":
//     {"command":"disconnect","payload":{"identifier":"…","reconnect":bool}};
//     other commands are refused.
//
// Any "offset" or "epoch" a publisher puts in a payload is ignored (the
// decoder does not read them): the broker stamps every broadcast, so a
// publisher cannot forge history positions.
type Handler struct {
	sink Sink
	log  *slog.Logger
	// drops and failures limit the log lines of Deliver.
	drops, failures rateLog
	// maxSize, when positive, is the largest payload Deliver takes
	// (Options.MaxPayloadSize); tooLarge, when set, counts the others.
	maxSize  int64
	tooLarge func()
}

// logEvery is how often Deliver logs a kind of problem at most; the lines
// in between are counted and reported with the next one.
const logEvery = 10 * time.Second

// NewHandler returns a handler feeding sink; log names the adapter (its
// lines are Deliver's).
func NewHandler(sink Sink, log *slog.Logger) *Handler {
	return &Handler{sink: sink, log: log, drops: rateLog{every: logEvery}, failures: rateLog{every: logEvery}}
}

// Handle decodes payload and hands it to the sink. A malformed payload
// fails with an INVALID_ARGUMENT status error saying what is wrong, before
// anything reaches the sink; otherwise the error is the sink's (a gRPC
// status error: INVALID_ARGUMENT for a publication it refuses, UNAVAILABLE
// when the broker or pub/sub did not take it). The HTTP adapter answers
// with it.
func (h *Handler) Handle(ctx context.Context, payload []byte) error {
	if cmd, ok, err := decodeCommand(payload); ok || err != nil {
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		_, err := h.sink.Disconnect(ctx, cmd)
		return err
	}
	pubs, err := publication.Decode(payload)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	_, err = h.sink.Publish(ctx, &cablehubv1.PublishRequest{Publications: pubs})
	return err
}

// Deliver is Handle for the adapters nobody waits on (redis, redisx,
// nats). A payload larger than the handler's limit (Options.MaxPayloadSize)
// is dropped unread, with a WARN giving its size, one per payload. A
// payload that is malformed, or that the sink refuses as invalid,
// is logged (a WARN at most every logEvery, with the count dropped
// meanwhile) and dropped: Deliver returns nil, since trying it again
// cannot succeed. Any other failure (the broker or pub/sub did not take
// it) is logged the same way and returned, so an adapter that can retry
// (redisx: the entry stays unacknowledged) does.
//
// ctx should not be the adapter's own run context: a broadcast being
// delivered when the adapter stops is worth finishing (the sink bounds it
// by --publish_timeout); context.WithoutCancel of it will do.
func (h *Handler) Deliver(ctx context.Context, payload []byte) error {
	if h.maxSize > 0 && int64(len(payload)) > h.maxSize {
		h.log.Warn("broadcast dropped: larger than --api_max_body_size", "size", len(payload), "limit", h.maxSize)
		if h.tooLarge != nil {
			h.tooLarge()
		}
		return nil
	}
	err := h.Handle(ctx, payload)
	if err == nil {
		return nil
	}
	if status.Code(err) == codes.InvalidArgument {
		if n, ok := h.drops.allow(); ok {
			h.log.Warn("malformed broadcast dropped", "error", status.Convert(err).Message(), "payload", excerpt(payload), "dropped_since_last_line", n)
		}
		return nil
	}
	if n, ok := h.failures.allow(); ok {
		h.log.Warn("broadcast not delivered", "error", status.Convert(err).Message(), "failed_since_last_line", n)
	}
	return err
}

// decodeCommand reads a remote command. ok is false for anything that is
// not one (then the payload is a publication or malformed, and
// publication.Decode says which); err is set for a command that cannot be
// run. Only objects mentioning "command" are parsed twice, so publications
// pay one scan of their bytes.
func decodeCommand(payload []byte) (req *cablehubv1.DisconnectRequest, ok bool, err error) {
	body := publication.TrimSpace(payload)
	if len(body) == 0 || body[0] != '{' || !bytes.Contains(body, []byte(`"command"`)) {
		return nil, false, nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil, false, nil
	}
	raw, has := fields["command"]
	if !has || isNull(raw) {
		return nil, false, nil
	}
	// A non-empty "stream" makes it a publication, as in AnyCable.
	if s, has := fields["stream"]; has && !isNull(s) && !bytes.Equal(s, []byte(`""`)) {
		return nil, false, nil
	}
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return nil, true, errors.New("command must be a string")
	}
	if name != "disconnect" {
		return nil, true, fmt.Errorf("unknown command %q: only \"disconnect\" is supported", name)
	}
	// Without a payload or an identifier it matches no session and is
	// not an error, as over the REST API.
	req = &cablehubv1.DisconnectRequest{}
	p, has := fields["payload"]
	if !has || isNull(p) {
		return req, true, nil
	}
	var args map[string]json.RawMessage
	if json.Unmarshal(p, &args) != nil || args == nil {
		return nil, true, errors.New("payload must be a JSON object")
	}
	if v, has := args["identifier"]; has && !isNull(v) {
		if json.Unmarshal(v, &req.Identifier) != nil {
			return nil, true, errors.New("payload.identifier must be a string")
		}
	}
	if v, has := args["reconnect"]; has && !isNull(v) {
		if json.Unmarshal(v, &req.Reconnect) != nil {
			return nil, true, errors.New("payload.reconnect must be a boolean")
		}
	}
	return req, true, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// excerpt is the start of a payload for a log line.
func excerpt(payload []byte) string {
	const max = 200
	if len(payload) <= max {
		return string(payload)
	}
	return string(payload[:max]) + "…"
}

// rateLog lets a log line through at most once per interval and counts
// the ones it held back.
type rateLog struct {
	every time.Duration

	mu   sync.Mutex
	last time.Time
	held int
}

// allow reports whether to log now, and how many lines were held back
// since the last one logged.
func (r *rateLog) allow() (held int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.held++
		return 0, false
	}
	held, r.held, r.last = r.held, 0, now
	return held, true
}
