package pusher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
)

// fakeBackend records the API's calls and answers from its fields.
type fakeBackend struct {
	mu         sync.Mutex
	broadcasts [][]protocol.Publication
	prefixes   []string // of Channels calls
	presences  []string // of Presence calls
	terminated []string
	deadline   time.Duration // left on the last call's context

	occupied    []ChannelInfo
	presence    map[string]*broker.PresenceInfo
	presenceErr error
	err         error // from every method
	block       bool  // every method waits for its context to end (5 s at most)
	unfiltered  bool  // Channels ignores the prefix
}

func (b *fakeBackend) call(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		b.deadline = time.Until(d)
	}
	if b.block {
		b.mu.Unlock()
		defer b.mu.Lock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("the context did not end")
		}
	}
	return b.err
}

func (b *fakeBackend) Broadcast(ctx context.Context, pubs []protocol.Publication) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call(ctx); err != nil {
		return err
	}
	b.broadcasts = append(b.broadcasts, append([]protocol.Publication(nil), pubs...))
	return nil
}

func (b *fakeBackend) Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.presences = append(b.presences, stream)
	if err := b.call(ctx); err != nil {
		return nil, err
	}
	if b.presenceErr != nil {
		return nil, b.presenceErr
	}
	if p := b.presence[stream]; p != nil {
		return p, nil
	}
	return &broker.PresenceInfo{}, nil
}

func (b *fakeBackend) Channels(ctx context.Context, prefix string) ([]ChannelInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prefixes = append(b.prefixes, prefix)
	if err := b.call(ctx); err != nil {
		return nil, err
	}
	var out []ChannelInfo
	for _, c := range b.occupied {
		if strings.HasPrefix(c.Name, prefix) || b.unfiltered {
			out = append(out, c)
		}
	}
	return out, nil
}

func (b *fakeBackend) Subscriptions(ctx context.Context, channel string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call(ctx); err != nil {
		return 0, err
	}
	for _, c := range b.occupied {
		if c.Name == channel {
			return c.Subscriptions, nil
		}
	}
	return 0, nil
}

func (b *fakeBackend) TerminateUser(ctx context.Context, userID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.call(ctx); err != nil {
		return err
	}
	b.terminated = append(b.terminated, userID)
	return nil
}

// sdkSign returns the query string parameters of a request signed the way
// the pusher npm SDK signs it: params plus auth_key, auth_timestamp,
// auth_version=1.0 and, for a POST, body_md5, sorted by key and signed as
// "METHOD\npath\nk=v&..." with HMAC-SHA256 of the secret. It is written
// apart from StringToSign so that each checks the other.
func sdkSign(app *App, method, path string, params url.Values, body string, ts int64) url.Values {
	q := url.Values{}
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	q.Set("auth_key", app.Key)
	q.Set("auth_timestamp", strconv.FormatInt(ts, 10))
	q.Set("auth_version", "1.0")
	if method == "POST" {
		sum := md5.Sum([]byte(body))
		q.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + q.Get(k)
	}
	m := hmac.New(sha256.New, []byte(app.Secret))
	m.Write([]byte(method + "\n" + path + "\n" + strings.Join(pairs, "&")))
	q.Set("auth_signature", hex.EncodeToString(m.Sum(nil)))
	return q
}

// harness is an API for docApp on a fakeBackend at a fixed time.
type harness struct {
	t   *testing.T
	b   *fakeBackend
	h   http.Handler
	now time.Time
	log bytes.Buffer
	// chunked sends bodies without a Content-Length.
	chunked bool
}

func newHarness(t *testing.T, o APIOptions) *harness {
	h := &harness{t: t, b: &fakeBackend{}, now: time.Unix(1796524224, 0)}
	if o.Now == nil {
		o.Now = func() time.Time { return h.now }
	}
	o.Log = slog.New(slog.NewTextHandler(&h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.h = NewAPI(&docApp, h.b, o)
	return h
}

// send serves method path?query with body.
func (h *harness) send(method, path string, q url.Values, body string) *httptest.ResponseRecorder {
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if h.chunked {
		req.ContentLength = -1
	}
	h.h.ServeHTTP(rec, req)
	return rec
}

// do serves a request signed by docApp's SDK at the harness's time.
func (h *harness) do(method, path string, params url.Values, body string) *httptest.ResponseRecorder {
	return h.send(method, path, sdkSign(&docApp, method, path, params, body, h.now.Unix()), body)
}

// wantJSON checks a JSON answer: its status, content type and body (as a
// JSON value).
func wantJSON(t *testing.T, rec *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got, exp any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %q", rec.Body)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body %s, want %s", rec.Body, want)
	}
}

// wantError checks an error answer: status and a JSON {"error":...} that
// contains msg.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e.Error) == 0 {
		t.Fatalf("not an error body: %q", rec.Body)
	}
	if !strings.Contains(e.Error, msg) {
		t.Errorf("error %q, want it to contain %q", e.Error, msg)
	}
}

// Pusher's worked example: the SDK's signature of it is the documented
// one, and the API accepts it at its time and publishes its event, data
// kept as the JSON string it is.
func TestAPIDocumentedRequest(t *testing.T) {
	body := `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	q := sdkSign(&docApp, "POST", "/apps/3/events", nil, body, 1353088179)
	if got := q.Get("body_md5"); got != "ec365a775a4cd0599faeb73354201b6f" {
		t.Errorf("body_md5 %s", got)
	}
	if got := q.Get("auth_signature"); got != "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c" {
		t.Fatalf("auth_signature %s", got)
	}
	h := newHarness(t, APIOptions{Now: func() time.Time { return time.Unix(1353088179, 0) }})
	wantJSON(t, h.send("POST", "/apps/3/events", q, body), 200, `{}`)
	want := [][]protocol.Publication{{{Stream: "project-3", Data: `{"event":"foo","data":"{\"some\":\"data\"}"}`}}}
	if !reflect.DeepEqual(h.b.broadcasts, want) {
		t.Errorf("broadcasts %+v", h.b.broadcasts)
	}
}

// An event goes to each of its channels, in order and in one Broadcast,
// without repeats, excluding its socket_id; its data is passed as sent
// (a string as a string, an object as the object) and the limits are
// inclusive.
func TestAPIEvents(t *testing.T) {
	long := strings.Repeat("x", maxEventData)
	for name, c := range map[string]struct {
		body string
		want []protocol.Publication
	}{
		"channel": {`{"name":"e","channel":"c","data":"hi","socket_id":"123.456"}`,
			[]protocol.Publication{{Stream: "c", Data: `{"event":"e","data":"hi"}`, ExcludeSocket: "123.456"}}},
		"channels": {`{"name":"e","channels":["a","private-b","a","#server-to-user-u1"],"data":"<b>&"}`,
			[]protocol.Publication{
				{Stream: "a", Data: `{"event":"e","data":"<b>&"}`},
				{Stream: "private-b", Data: `{"event":"e","data":"<b>&"}`},
				{Stream: "#server-to-user-u1", Data: `{"event":"e","data":"<b>&"}`},
			}},
		"object data": {`{"name":"e","channel":"c","data": {"a": [1, true], "b":"<x>"}}`,
			[]protocol.Publication{{Stream: "c", Data: `{"event":"e","data":{"a":[1,true],"b":"<x>"}}`}}},
		"limits": {fmt.Sprintf(`{"name":%q,"channel":%q,"data":%q}`, strings.Repeat("n", maxEventName), strings.Repeat("c", MaxChannelName), long),
			[]protocol.Publication{{Stream: strings.Repeat("c", MaxChannelName), Data: fmt.Sprintf(`{"event":%q,"data":%q}`, strings.Repeat("n", maxEventName), long)}}},
		"escaped data at the limit": {`{"name":"e","channel":"c","data":"` + strings.Repeat(`\"`, maxEventData) + `"}`,
			[]protocol.Publication{{Stream: "c", Data: `{"event":"e","data":"` + strings.Repeat(`\"`, maxEventData) + `"}`}}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, APIOptions{})
			wantJSON(t, h.do("POST", "/apps/3/events", nil, c.body), 200, `{}`)
			if len(h.b.broadcasts) != 1 || !reflect.DeepEqual(h.b.broadcasts[0], c.want) {
				t.Errorf("broadcasts %+v", h.b.broadcasts)
			}
		})
	}
}

// refusedEvents are bodies of /events refused before anything is
// published, with the status and a part of the message.
var refusedEvents = []struct {
	name, body string
	status     int
	msg        string
}{
	{"syntax", `{"name":`, 400, "Invalid JSON body: syntax error"},
	{"empty", ``, 400, "body is empty"},
	{"array", `[]`, 400, "expected an object"},
	{"name type", `{"name":5,"channel":"c","data":"x"}`, 400, "name must not be a JSON number"},
	{"no name", `{"channel":"c","data":"x"}`, 400, "Missing event name"},
	{"long name", `{"name":"` + strings.Repeat("n", maxEventName+1) + `","channel":"c","data":"x"}`, 400, "Event name too long"},
	{"no data", `{"name":"e","channel":"c"}`, 400, "Missing event data"},
	{"null data", `{"name":"e","channel":"c","data":null}`, 400, "Missing event data"},
	{"large data", `{"name":"e","channel":"c","data":"` + strings.Repeat("x", maxEventData+1) + `"}`, 413, "Event data too large: 10241 bytes"},
	{"large object", `{"name":"e","channel":"c","data":{"a":"` + strings.Repeat("x", maxEventData) + `"}}`, 413, "Event data too large"},
	{"no channel", `{"name":"e","data":"x"}`, 400, "Missing channels"},
	{"no channels", `{"name":"e","channels":[],"data":"x"}`, 400, "Missing channels"},
	{"both", `{"name":"e","channel":"a","channels":["b"],"data":"x"}`, 400, "either channel or channels"},
	{"101 channels", `{"name":"e","channels":["c` + strings.Repeat(`","c`, maxEventChannels) + `"],"data":"x"}`, 400, "Too many channels: 101"},
	{"bad channel", `{"name":"e","channels":["ok","a b"],"data":"x"}`, 400, `Invalid channel name "a b"`},
	{"empty channel", `{"name":"e","channel":"","data":"x"}`, 400, "Invalid channel name"},
	{"long channel", `{"name":"e","channel":"` + strings.Repeat("c", MaxChannelName+1) + `","data":"x"}`, 400, "Invalid channel name"},
	{"no user", `{"name":"e","channel":"#server-to-user-","data":"x"}`, 400, "Invalid channel name"},
	{"hash", `{"name":"e","channel":"#other","data":"x"}`, 400, "Invalid channel name"},
	{"socket letters", `{"name":"e","channel":"c","data":"x","socket_id":"abc.1"}`, 400, "Invalid socket_id"},
	{"socket no dot", `{"name":"e","channel":"c","data":"x","socket_id":"123"}`, 400, "Invalid socket_id"},
	{"socket two dots", `{"name":"e","channel":"c","data":"x","socket_id":"1.2.3"}`, 400, "Invalid socket_id"},
	{"socket empty side", `{"name":"e","channel":"c","data":"x","socket_id":"1."}`, 400, "Invalid socket_id"},
	{"socket empty", `{"name":"e","channel":"c","data":"x","socket_id":""}`, 400, "Invalid socket_id"},
	{"unknown info", `{"name":"e","channel":"c","data":"x","info":"subscription_count,occupied"}`, 400, `Unsupported info attribute "occupied"`},
}

func TestAPIEventsRefused(t *testing.T) {
	for _, c := range refusedEvents {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, APIOptions{})
			wantError(t, h.do("POST", "/apps/3/events", nil, c.body), c.status, c.msg)
			if len(h.b.broadcasts) != 0 {
				t.Errorf("published %+v", h.b.broadcasts)
			}
		})
	}
}

// info asks for each channel's attributes: user_count from the presence
// (presence channels only), subscription_count from the channel list, 0
// for a channel nobody is on.
func TestAPIEventsInfo(t *testing.T) {
	h := newHarness(t, APIOptions{})
	h.b.occupied = []ChannelInfo{{"presence-a", 3}, {"presence-ab", 9}, {"c", 1}}
	h.b.presence = map[string]*broker.PresenceInfo{"presence-a": {Total: 2}}
	rec := h.do("POST", "/apps/3/events", nil, `{"name":"e","channels":["presence-a","presence-b"],"data":"x","info":"user_count, subscription_count"}`)
	wantJSON(t, rec, 200, `{"channels":{"presence-a":{"user_count":2,"subscription_count":3},"presence-b":{"user_count":0,"subscription_count":0}}}`)
	rec = h.do("POST", "/apps/3/events", nil, `{"name":"e","channel":"c","data":"x","info":"subscription_count"}`)
	wantJSON(t, rec, 200, `{"channels":{"c":{"subscription_count":1}}}`)
	// Triggered on several channels, user_count is answered for the
	// presence ones.
	rec = h.do("POST", "/apps/3/events", nil, `{"name":"e","channels":["presence-a","c"],"data":"x","info":"user_count,subscription_count"}`)
	wantJSON(t, rec, 200, `{"channels":{"c":{"subscription_count":1},"presence-a":{"user_count":2,"subscription_count":3}}}`)
	if len(h.b.broadcasts) != 3 {
		t.Errorf("broadcasts %+v", h.b.broadcasts)
	}
}

// A batch is published in order in one Broadcast; info answers per event.
func TestAPIBatchEvents(t *testing.T) {
	h := newHarness(t, APIOptions{})
	h.b.occupied = []ChannelInfo{{"presence-a", 4}}
	h.b.presence = map[string]*broker.PresenceInfo{"presence-a": {Total: 3}}
	body := `{"batch":[{"name":"e1","channel":"b","data":"1","socket_id":"1.2"},{"name":"e2","channel":"a","data":{"n":2}}]}`
	wantJSON(t, h.do("POST", "/apps/3/batch_events", nil, body), 200, `{}`)
	want := []protocol.Publication{
		{Stream: "b", Data: `{"event":"e1","data":"1"}`, ExcludeSocket: "1.2"},
		{Stream: "a", Data: `{"event":"e2","data":{"n":2}}`},
	}
	if len(h.b.broadcasts) != 1 || !reflect.DeepEqual(h.b.broadcasts[0], want) {
		t.Errorf("broadcasts %+v", h.b.broadcasts)
	}
	body = `{"batch":[{"name":"e","channel":"b","data":"1"},{"name":"e","channel":"presence-a","data":"1","info":"user_count,subscription_count"}]}`
	wantJSON(t, h.do("POST", "/apps/3/batch_events", nil, body), 200, `{"batch":[{},{"user_count":3,"subscription_count":4}]}`)
	ten := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"name":"e","channel":"c","data":"x"},`, maxBatchEvents), ",") + `]}`
	wantJSON(t, h.do("POST", "/apps/3/batch_events", nil, ten), 200, `{}`)
	if len(h.b.broadcasts) != 3 || len(h.b.broadcasts[2]) != maxBatchEvents {
		t.Errorf("broadcasts %+v", h.b.broadcasts)
	}
}

func TestAPIBatchEventsRefused(t *testing.T) {
	eleven := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"name":"e","channel":"c","data":"x"},`, maxBatchEvents+1), ",") + `]}`
	for _, c := range []struct {
		name, body string
		status     int
		msg        string
	}{
		{"eleven", eleven, 400, "Batch too large: 11 events"},
		{"none", `{"batch":[]}`, 400, "Missing events"},
		{"no batch", `{}`, 400, "Missing events"},
		{"not a list", `{"batch":{}}`, 400, "batch must not be a JSON object"},
		{"channels", `{"batch":[{"name":"e","channels":["c"],"data":"x"}]}`, 400, "batch[0]: A batch event has one channel"},
		{"no channel", `{"batch":[{"name":"e","data":"x"}]}`, 400, "batch[0]: Missing channel"},
		{"bad channel", `{"batch":[{"name":"e","channel":"c","data":"x"},{"name":"e","channel":"c!","data":"x"}]}`, 400, `batch[1]: Invalid channel name "c!"`},
		{"socket", `{"batch":[{"name":"e","channel":"c","data":"x","socket_id":"x"}]}`, 400, "batch[0]: Invalid socket_id"},
		{"large", `{"batch":[{"name":"e","channel":"c","data":"` + strings.Repeat("x", maxEventData+1) + `"}]}`, 413, "batch[0]: Event data too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, APIOptions{})
			wantError(t, h.do("POST", "/apps/3/batch_events", nil, c.body), c.status, c.msg)
			if len(h.b.broadcasts) != 0 {
				t.Errorf("published %+v", h.b.broadcasts)
			}
		})
	}
}

// A failed Broadcast is a 500 (logged, the secret not in the log); one
// that outlives the request's Timeout is a 503; the Backend's context
// carries the Timeout.
func TestAPIBackendErrors(t *testing.T) {
	h := newHarness(t, APIOptions{Timeout: 20 * time.Millisecond})
	body := `{"name":"e","channel":"c","data":"x"}`
	h.b.err = errors.New("boom")
	wantError(t, h.do("POST", "/apps/3/events", nil, body), 500, "Internal error while publishing the event")
	if !strings.Contains(h.log.String(), "boom") || strings.Contains(h.log.String(), docApp.Secret) {
		t.Errorf("log: %s", h.log.String())
	}
	if h.b.deadline <= 0 || h.b.deadline > 20*time.Millisecond {
		t.Errorf("the backend's deadline was %v away", h.b.deadline)
	}
	h.b.err, h.b.block = nil, true
	wantError(t, h.do("POST", "/apps/3/events", nil, body), 503, "Timed out while publishing the event")
	wantError(t, h.do("GET", "/apps/3/channels", nil, ""), 503, "Timed out while listing the channels")
	h.b.block = false
	h.b.err = errors.New("gone")
	wantError(t, h.do("POST", "/apps/3/users/u/terminate_connections", nil, ""), 500, "Internal error while terminating")
}
