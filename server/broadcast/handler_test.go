package broadcast

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// fakeSink records what reaches it, as protojson text, and fails with err
// when set.
type fakeSink struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (s *fakeSink) record(kind string, m proto.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	var compact bytes.Buffer
	// protojson randomises spaces; drop them for comparison.
	for _, c := range b {
		if c != ' ' {
			compact.WriteByte(c)
		}
	}
	s.calls = append(s.calls, kind+" "+compact.String())
	return s.err
}

func (s *fakeSink) Publish(_ context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	if err := s.record("publish", req); err != nil {
		return nil, err
	}
	return &cablehubv1.PublishResponse{}, nil
}

func (s *fakeSink) Disconnect(_ context.Context, req *cablehubv1.DisconnectRequest) (*cablehubv1.DisconnectResponse, error) {
	if err := s.record("disconnect", req); err != nil {
		return nil, err
	}
	return &cablehubv1.DisconnectResponse{}, nil
}

func (s *fakeSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// TestHandle runs payloads as the anycable gem and other publishers send
// them through Handle: what reaches the sink, or the INVALID_ARGUMENT
// message that the HTTP adapter answers 422 with.
func TestHandle(t *testing.T) {
	cases := []struct {
		name, payload string
		want          string // the sink call, or "" when refused
		err           string // the refusal's message
	}{
		{"single", `{"stream":"feed","data":"{\"n\":1}"}`,
			`publish {"publications":[{"stream":"feed","data":"{\"n\":1}"}]}`, ""},
		{"batch in order", `[{"stream":"feed","data":"1"},{"stream":"other","data":"x"},{"stream":"feed","data":"2"}]`,
			`publish {"publications":[{"stream":"feed","data":"1"},{"stream":"other","data":"x"},{"stream":"feed","data":"2"}]}`, ""},
		{"meta", `{"stream":"feed","data":"d","meta":{"exclude_socket":"sidA","transient":true,"broadcast_type":"custom","other":1}}`,
			`publish {"publications":[{"stream":"feed","data":"d","meta":{"exclude_socket":"sidA","broadcast_type":"custom","transient":true}}]}`, ""},
		{"forged offset and epoch ignored", `{"stream":"feed","data":"d","offset":99,"epoch":"fake"}`,
			`publish {"publications":[{"stream":"feed","data":"d"}]}`, ""},
		{"surrounding whitespace", " \n{\"stream\":\"feed\",\"data\":\"d\"}\r\n",
			`publish {"publications":[{"stream":"feed","data":"d"}]}`, ""},
		{"disconnect command", `{"command":"disconnect","payload":{"identifier":"{\"user\":\"alice\"}","reconnect":true}}`,
			`disconnect {"identifier":"{\"user\":\"alice\"}","reconnect":true}`, ""},
		{"disconnect without reconnect", `{"command":"disconnect","payload":{"identifier":"{\"sid\":\"sidB\"}"}}`,
			`disconnect {"identifier":"{\"sid\":\"sidB\"}"}`, ""},
		{"disconnect without payload matches nothing", `{"command":"disconnect"}`, `disconnect {}`, ""},
		{"a stream makes it a publication", `{"stream":"feed","data":"d","command":"disconnect"}`,
			`publish {"publications":[{"stream":"feed","data":"d"}]}`, ""},
		{"empty stream and a command", `{"stream":"","command":"disconnect","payload":{"identifier":"x"}}`,
			`disconnect {"identifier":"x"}`, ""},
		{"other command", `{"command":"reload","payload":{}}`, "", `unknown command "reload": only "disconnect" is supported`},
		{"command not a string", `{"command":1}`, "", "command must be a string"},
		{"payload not an object", `{"command":"disconnect","payload":"x"}`, "", "payload must be a JSON object"},
		{"identifier not a string", `{"command":"disconnect","payload":{"identifier":1}}`, "", "payload.identifier must be a string"},
		{"reconnect not a boolean", `{"command":"disconnect","payload":{"identifier":"x","reconnect":"yes"}}`, "", "payload.reconnect must be a boolean"},
		{"data object", `{"stream":"feed","data":{"a":1}}`, "", "data must be a string (encode the payload as a JSON string)"},
		{"garbage", `garbage`, "", "request body is not valid JSON: invalid character 'g' looking for beginning of value"},
		{"empty object", `{}`, "", "stream is required"},
		{"empty array", `[]`, "", "publications array is empty"},
		{"empty", ``, "", "request body is empty: send a publication object or a non-empty array of them"},
		{"bad batch item", `[{"stream":"a","data":"1"},{"data":"2"}]`, "", "publications[1]: stream is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &fakeSink{}
			err := NewHandler(sink, slog.New(slog.DiscardHandler)).Handle(context.Background(), []byte(c.payload))
			got := sink.got()
			if c.err != "" {
				if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != c.err {
					t.Errorf("error %v, want INVALID_ARGUMENT %q", err, c.err)
				}
				if len(got) != 0 {
					t.Errorf("refused payload reached the sink: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if len(got) != 1 || got[0] != c.want {
				t.Errorf("sink got %q, want %q", got, c.want)
			}
		})
	}
}

// TestHandleSinkError: the sink's error is Handle's, unchanged, so the
// HTTP adapter maps UNAVAILABLE to 501.
func TestHandleSinkError(t *testing.T) {
	sink := &fakeSink{err: status.Error(codes.Unavailable, "broker down")}
	err := NewHandler(sink, slog.New(slog.DiscardHandler)).Handle(context.Background(), []byte(`{"stream":"s","data":"d"}`))
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "broker down" {
		t.Errorf("error %v, want the sink's", err)
	}
}

// TestDeliver: malformed payloads (and ones the sink refuses as invalid)
// are dropped with nil, logged at most once per interval with the count
// held back; the sink's other failures are returned and logged the same
// way.
func TestDeliver(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	sink := &fakeSink{}
	h := NewHandler(sink, log)
	ctx := context.Background()
	for range 3 {
		if err := h.Deliver(ctx, []byte(`garbage`)); err != nil {
			t.Fatalf("malformed payload: %v, want nil (dropped)", err)
		}
	}
	lines := strings.Count(logs.String(), "malformed broadcast dropped")
	if lines != 1 || !strings.Contains(logs.String(), "payload=garbage") || !strings.Contains(logs.String(), "dropped_since_last_line=0") {
		t.Errorf("want one WARN line for three malformed payloads, got:\n%s", logs.String())
	}
	// The next line, an interval later, counts the two held back.
	h.drops.last = h.drops.last.Add(-logEvery)
	h.Deliver(ctx, []byte(`{}`))
	if !strings.Contains(logs.String(), "dropped_since_last_line=2") {
		t.Errorf("the second line does not count the held-back ones:\n%s", logs.String())
	}

	sink.err = status.Error(codes.InvalidArgument, "stream is required")
	if err := h.Deliver(ctx, []byte(`{"stream":"s","data":"d"}`)); err != nil {
		t.Errorf("payload the sink refuses as invalid: %v, want nil (dropped)", err)
	}
	sink.err = status.Error(codes.Unavailable, "broker down")
	if err := h.Deliver(ctx, []byte(`{"stream":"s","data":"d"}`)); status.Code(err) != codes.Unavailable {
		t.Errorf("sink failure: %v, want it returned", err)
	}
	if !strings.Contains(logs.String(), "broadcast not delivered") {
		t.Errorf("sink failure not logged:\n%s", logs.String())
	}
}

// TestNew: every name builds its adapter or says why not; an unknown name
// lists the known ones.
func TestNew(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, err := New(NameHTTP, DefaultOptions(), &fakeSink{}, log)
	if err != nil || a.Name() != NameHTTP {
		t.Fatalf("http: %v, %v", a, err)
	}
	if _, err := New(NameRedis, DefaultOptions(), &fakeSink{}, log); err == nil {
		t.Error("redis without a client: no error")
	}
	_, err = New("kafka", DefaultOptions(), &fakeSink{}, log)
	if err == nil || err.Error() != `unknown broadcast adapter "kafka": use http, redis, redisx, nats` {
		t.Errorf("unknown adapter: %v", err)
	}
}
