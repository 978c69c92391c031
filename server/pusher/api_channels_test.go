package pusher

import (
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/broker"
)

// occupiedHarness is a harness whose backend has a few occupied channels
// and presence on presence-a.
func occupiedHarness(t *testing.T) *harness {
	h := newHarness(t, APIOptions{})
	h.b.occupied = []ChannelInfo{{"presence-a", 3}, {"presence-b", 1}, {"private-c", 2}, {"public", 1}}
	h.b.presence = map[string]*broker.PresenceInfo{
		"presence-a": {Total: 2, Records: []broker.PresenceRecord{{ID: "u1", Info: []byte(`{"name":"A"}`)}, {ID: "u2"}}},
		"presence-b": {Total: 1, Records: []broker.PresenceRecord{{ID: "u3"}}},
	}
	return h
}

// GET /channels lists the occupied channels, filtered by prefix, with
// user_count when asked for presence channels.
func TestAPIChannels(t *testing.T) {
	h := occupiedHarness(t)
	wantJSON(t, h.do("GET", "/apps/3/channels", nil, ""), 200,
		`{"channels":{"presence-a":{},"presence-b":{},"private-c":{},"public":{}}}`)
	wantJSON(t, h.do("GET", "/apps/3/channels", url.Values{"filter_by_prefix": {"presence-"}}, ""), 200,
		`{"channels":{"presence-a":{},"presence-b":{}}}`)
	wantJSON(t, h.do("GET", "/apps/3/channels", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}, ""), 200,
		`{"channels":{"presence-a":{"user_count":2},"presence-b":{"user_count":1}}}`)
	wantJSON(t, h.do("GET", "/apps/3/channels", url.Values{"filter_by_prefix": {"nothing-"}}, ""), 200, `{"channels":{}}`)
	if want := []string{"", "presence-", "presence-", "nothing-"}; !reflect.DeepEqual(h.b.prefixes, want) {
		t.Errorf("prefixes %q", h.b.prefixes)
	}
	h.b.unfiltered = true
	wantJSON(t, h.do("GET", "/apps/3/channels", url.Values{"filter_by_prefix": {"private-"}}, ""), 200, `{"channels":{"private-c":{}}}`)
	h.b.unfiltered = false
	for name, q := range map[string]url.Values{
		"no prefix":      {"info": {"user_count"}},
		"private prefix": {"info": {"user_count"}, "filter_by_prefix": {"private-"}},
		"subscriptions":  {"info": {"subscription_count"}, "filter_by_prefix": {"presence-"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, h.do("GET", "/apps/3/channels", q, ""), 400, "")
		})
	}
	h.b.presenceErr = broker.ErrPresenceUnsupported
	wantError(t, h.do("GET", "/apps/3/channels", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}, ""), 501, "Presence is not supported")
}

// GET /channels/<name> tells whether it is occupied and the attributes
// asked for.
func TestAPIChannel(t *testing.T) {
	h := occupiedHarness(t)
	for _, c := range []struct {
		path, info string
		status     int
		want       string
	}{
		{"/apps/3/channels/presence-a", "user_count,subscription_count", 200, `{"occupied":true,"user_count":2,"subscription_count":3}`},
		{"/apps/3/channels/presence-a", "", 200, `{"occupied":true}`},
		{"/apps/3/channels/presence-z", "user_count", 200, `{"occupied":false,"user_count":0}`},
		{"/apps/3/channels/private-c", "subscription_count", 200, `{"occupied":true,"subscription_count":2}`},
		{"/apps/3/channels/empty", "subscription_count", 200, `{"occupied":false,"subscription_count":0}`},
		{"/apps/3/channels/private-c", "user_count", 400, `{"error":"Info user_count is only available for presence channels"}`},
		{"/apps/3/channels/private-c", "members", 400, `{"error":"Unsupported info attribute \"members\""}`},
		{"/apps/3/channels/a%20b", "", 400, `{"error":"Invalid channel name \"a b\""}`},
	} {
		var q url.Values
		if c.info != "" {
			q = url.Values{"info": {c.info}}
		}
		wantJSON(t, h.do("GET", c.path, q, ""), c.status, c.want)
	}
	if want := []string{"presence-a", "presence-z"}; !reflect.DeepEqual(h.b.presences, want) {
		t.Errorf("presence asked of %q", h.b.presences)
	}
}

// GET /channels/<name>/users lists a presence channel's ids; the name in
// the path is decoded, the signature is over the path as sent.
func TestAPIUsers(t *testing.T) {
	h := occupiedHarness(t)
	wantJSON(t, h.do("GET", "/apps/3/channels/presence-a/users", nil, ""), 200, `{"users":[{"id":"u1"},{"id":"u2"}]}`)
	wantJSON(t, h.do("GET", "/apps/3/channels/presence-none/users", nil, ""), 200, `{"users":[]}`)
	h.b.presence["presence-a@b"] = &broker.PresenceInfo{Total: 1, Records: []broker.PresenceRecord{{ID: "u9"}}}
	wantJSON(t, h.do("GET", "/apps/3/channels/presence-a%40b/users", nil, ""), 200, `{"users":[{"id":"u9"}]}`)
	q := sdkSign(&docApp, "GET", "/apps/3/channels/presence-a@b/users", nil, "", h.now.Unix())
	wantError(t, h.send("GET", "/apps/3/channels/presence-a%40b/users", q, ""), 401, "Invalid signature")
	if want := []string{"presence-a", "presence-none", "presence-a@b"}; !reflect.DeepEqual(h.b.presences, want) {
		t.Errorf("presence asked of %q", h.b.presences)
	}
	wantError(t, h.do("GET", "/apps/3/channels/private-c/users", nil, ""), 400, "only be listed for presence channels")
	wantError(t, h.do("GET", "/apps/3/channels/presence-a%2Fb/users", nil, ""), 400, `Invalid channel name "presence-a/b"`)
	h.b.presenceErr = broker.ErrPresenceUnsupported
	wantError(t, h.do("GET", "/apps/3/channels/presence-a/users", nil, ""), 501, "Presence is not supported")
}

// POST /users/<id>/terminate_connections terminates the (decoded) user.
func TestAPITerminate(t *testing.T) {
	h := newHarness(t, APIOptions{})
	wantJSON(t, h.do("POST", "/apps/3/users/u1/terminate_connections", nil, "{}"), 200, `{}`)
	wantJSON(t, h.do("POST", "/apps/3/users/a%20b/terminate_connections", nil, ""), 200, `{}`)
	if want := []string{"u1", "a b"}; !reflect.DeepEqual(h.b.terminated, want) {
		t.Errorf("terminated %q", h.b.terminated)
	}
}

// Every refused signature is a 401 with Pusher's reason, and nothing
// reaches the backend.
func TestAPIAuth(t *testing.T) {
	body := `{"name":"e","channel":"c","data":"x"}`
	other := App{ID: "3", Key: "other-key", Secret: docApp.Secret}
	wrongSecret := App{ID: "3", Key: docApp.Key, Secret: "wrong"}
	for name, c := range map[string]struct {
		method, path, body string
		q                  func(h *harness) url.Values
		msg                string
	}{
		"signature": {"POST", "/apps/3/events", body, func(h *harness) url.Values {
			q := sdkSign(&docApp, "POST", "/apps/3/events", nil, body, h.now.Unix())
			q.Set("auth_signature", strings.Repeat("0", 64))
			return q
		}, "Invalid signature"},
		"secret": {"POST", "/apps/3/events", body, func(h *harness) url.Values {
			return sdkSign(&wrongSecret, "POST", "/apps/3/events", nil, body, h.now.Unix())
		}, "Invalid signature"},
		"key": {"POST", "/apps/3/events", body, func(h *harness) url.Values {
			return sdkSign(&other, "POST", "/apps/3/events", nil, body, h.now.Unix())
		}, "Unknown auth_key"},
		"expired": {"POST", "/apps/3/events", body, func(h *harness) url.Values {
			return sdkSign(&docApp, "POST", "/apps/3/events", nil, body, h.now.Unix()-601)
		}, "Timestamp expired"},
		"body_md5": {"POST", "/apps/3/events", body, func(h *harness) url.Values {
			return sdkSign(&docApp, "POST", "/apps/3/events", nil, body+" ", h.now.Unix())
		}, "body_md5"},
		"unsigned GET": {"GET", "/apps/3/channels", "", func(*harness) url.Values { return nil }, "Unknown auth_key"},
		"changed parameter": {"GET", "/apps/3/channels", "", func(h *harness) url.Values {
			q := sdkSign(&docApp, "GET", "/apps/3/channels", url.Values{"filter_by_prefix": {"a"}}, "", h.now.Unix())
			q.Set("filter_by_prefix", "b")
			return q
		}, "Invalid signature"},
		"terminate": {"POST", "/apps/3/users/u1/terminate_connections", "", func(h *harness) url.Values {
			return sdkSign(&docApp, "POST", "/apps/3/users/u2/terminate_connections", nil, "", h.now.Unix())
		}, "Invalid signature"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, APIOptions{})
			wantError(t, h.send(c.method, c.path, c.q(h), c.body), 401, c.msg)
			if len(h.b.broadcasts)+len(h.b.prefixes)+len(h.b.terminated) != 0 {
				t.Errorf("the backend was called: %+v", h.b)
			}
		})
	}
	h := newHarness(t, APIOptions{})
	q := sdkSign(&docApp, "POST", "/apps/3/events", nil, body, h.now.Unix()+600)
	wantJSON(t, h.send("POST", "/apps/3/events", q, body), 200, `{}`)
}

// Paths not served are 404 and wrong methods 405 with Allow, both before
// the signature is checked; a body over MaxBody is 413 (also unsigned).
func TestAPIRouting(t *testing.T) {
	h := newHarness(t, APIOptions{MaxBody: 100})
	for _, p := range []string{"/", "/apps/4/events", "/apps/3", "/apps/3/", "/apps/3/nope", "/apps/3/events/",
		"/apps/3/channels/", "/apps/3/channels//users", "/apps/3/channels/a/users/x", "/apps/3/users/u1",
		"/apps/3/users//terminate_connections", "/app/3/events", "/apps/3%2Fevents"} {
		wantJSON(t, h.send("POST", p, nil, ""), 404, `{"error":"Not found"}`)
	}
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/apps/3/events", "POST"},
		{"PUT", "/apps/3/batch_events", "POST"},
		{"POST", "/apps/3/channels", "GET"},
		{"DELETE", "/apps/3/channels/c", "GET"},
		{"HEAD", "/apps/3/channels/presence-a/users", "GET"},
		{"GET", "/apps/3/users/u1/terminate_connections", "POST"},
	} {
		rec := h.send(c.method, c.path, nil, "")
		if rec.Code != 405 || rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q", c.method, c.path, rec.Code, rec.Header().Get("Allow"))
		}
		if c.method != "HEAD" {
			wantError(t, rec, 405, "Method not allowed")
		}
	}
	big := `{"name":"e","channel":"c","data":"` + strings.Repeat("x", 100) + `"}`
	wantError(t, h.do("POST", "/apps/3/events", nil, big), 413, "Request body too large: the limit is 100 bytes")
	wantError(t, h.send("POST", "/apps/3/events", nil, big), 413, "the limit is 100 bytes")
	h.chunked = true
	wantError(t, h.do("POST", "/apps/3/events", nil, big), 413, "the limit is 100 bytes")
	wantJSON(t, h.do("POST", "/apps/3/events", nil, `{"name":"e","channel":"c","data":"x"}`), 200, `{}`)
	h.b.broadcasts = nil
	if len(h.b.broadcasts) != 0 {
		t.Errorf("published %+v", h.b.broadcasts)
	}
}

// Without MaxBody the limit is 1 MiB.
func TestAPIDefaultBodyLimit(t *testing.T) {
	h := newHarness(t, APIOptions{})
	ok := `{"name":"e","channel":"c","data":"x","pad":"` + strings.Repeat(" ", DefaultAPIMaxBody-100) + `"}`
	wantJSON(t, h.do("POST", "/apps/3/events", nil, ok), 200, `{}`)
	big := `{"pad":"` + strings.Repeat(" ", DefaultAPIMaxBody) + `"}`
	wantError(t, h.do("POST", "/apps/3/events", nil, big), 413, "the limit is "+strconv.Itoa(DefaultAPIMaxBody))
}
