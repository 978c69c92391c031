package pusher

import (
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Pusher's documented example app.
var docApp = App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}

// The channel and user authorizations of Pusher's documentation and of
// the pusher SDK (authorizeChannel, authenticateUser).
func TestAuthorizations(t *testing.T) {
	if got := docApp.ChannelAuth("1234.1234", "private-foobar", ""); got != "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4" {
		t.Errorf("private: %s", got)
	}
	data := `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`
	if got := docApp.ChannelAuth("1234.1234", "presence-foobar", data); got != "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80" {
		t.Errorf("presence: %s", got)
	}
	sdk := App{ID: "app-1", Key: "key-1", Secret: "psecret"}
	if !sdk.VerifyUser("1234.1234", `{"id":"u1"}`, "key-1:ba4bf548a12ab1a0cab652242789baf51445809cda0a856dc2f46dfe9102f22b") {
		t.Error("the SDK's authenticateUser does not verify")
	}
	presence := `{"user_id":"u1","user_info":{"name":"Alice"}}`
	auth := sdk.ChannelAuth("1.2", "presence-x", presence)
	for _, c := range []struct {
		socket, channel, data, auth string
		ok                          bool
	}{
		{"1.2", "presence-x", presence, auth, true},
		{"1.3", "presence-x", presence, auth, false},
		{"1.2", "presence-y", presence, auth, false},
		{"1.2", "presence-x", presence + " ", auth, false},
		{"1.2", "presence-x", presence, "key-2" + auth[5:], false},
		{"1.2", "presence-x", presence, auth[:len(auth)-1], false},
	} {
		if got := sdk.VerifyChannel(c.socket, c.channel, c.data, c.auth); got != c.ok {
			t.Errorf("%+v: %v", c, got)
		}
	}
	if (&App{Key: "k"}).VerifyChannel("1.2", "private-x", "", (&App{Key: "k"}).ChannelAuth("1.2", "private-x", "")) {
		t.Error("an app without a secret verified a signature")
	}
}

// Pusher's worked example of a signed HTTP API request verifies at its
// own time and not ten minutes and a second off; every part of it is
// checked.
func TestVerifyRequest(t *testing.T) {
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	q := url.Values{
		"auth_key": {"278d425bdf160c739803"}, "auth_timestamp": {"1353088179"}, "auth_version": {"1.0"},
		"body_md5":       {"ec365a775a4cd0599faeb73354201b6f"},
		"auth_signature": {"da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"},
	}
	at := time.Unix(1353088179, 0)
	if err := docApp.VerifyRequest("POST", "/apps/3/events", q, body, at); err != nil {
		t.Fatalf("the documented request: %v", err)
	}
	if want := "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"; StringToSign("POST", "/apps/3/events", q) != want {
		t.Errorf("string to sign:\n%s", StringToSign("POST", "/apps/3/events", q))
	}
	for name, c := range map[string]struct {
		change func(url.Values) (url.Values, []byte, time.Time)
	}{
		"late": {func(q url.Values) (url.Values, []byte, time.Time) { return q, body, at.Add(MaxClockSkew + time.Second) }},
		"early": {func(q url.Values) (url.Values, []byte, time.Time) {
			return q, body, at.Add(-MaxClockSkew - time.Second)
		}},
		"key":         {func(q url.Values) (url.Values, []byte, time.Time) { q.Set("auth_key", "other"); return q, body, at }},
		"version":     {func(q url.Values) (url.Values, []byte, time.Time) { q.Set("auth_version", "2.0"); return q, body, at }},
		"body":        {func(q url.Values) (url.Values, []byte, time.Time) { return q, append(body, ' '), at }},
		"signature":   {func(q url.Values) (url.Values, []byte, time.Time) { q.Set("auth_signature", "00"); return q, body, at }},
		"extra param": {func(q url.Values) (url.Values, []byte, time.Time) { q.Set("info", "user_count"); return q, body, at }},
		"timestamp":   {func(q url.Values) (url.Values, []byte, time.Time) { q.Set("auth_timestamp", "x"); return q, body, at }},
	} {
		cq := url.Values{}
		for k, v := range q {
			cq[k] = append([]string(nil), v...)
		}
		cq, b, now := c.change(cq)
		if err := docApp.VerifyRequest("POST", "/apps/3/events", cq, b, now); err == nil || err.Status != 401 || err.Message == "" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if (&App{Key: docApp.Key}).VerifyRequest("POST", "/apps/3/events", q, body, at) == nil {
		t.Error("an app without a secret verified a request")
	}
}

// A GET signed the way the SDKs sign it, with extra parameters (info,
// filter_by_prefix) and keys in any case, verifies: every parameter is in
// the signed string.
func TestVerifyRequestWithParameters(t *testing.T) {
	now := time.Now()
	q := url.Values{
		"auth_key": {docApp.Key}, "auth_timestamp": {strconv.FormatInt(now.Unix(), 10)}, "auth_version": {"1.0"},
		"Info": {"user_count,subscription_count"}, "filter_by_prefix": {"presence-"},
	}
	q.Set("auth_signature", docApp.sign(StringToSign("GET", "/apps/3/channels", q)))
	if err := docApp.VerifyRequest("GET", "/apps/3/channels", q, nil, now); err != nil {
		t.Fatal(err)
	}
	if want := "info=user_count,subscription_count"; !strings.Contains(StringToSign("GET", "/apps/3/channels", q), want) {
		t.Errorf("the lower-cased key is not signed: %s", StringToSign("GET", "/apps/3/channels", q))
	}
	q.Set("filter_by_prefix", "private-")
	if docApp.VerifyRequest("GET", "/apps/3/channels", q, nil, now) == nil {
		t.Error("a changed parameter still verifies")
	}
	empty := url.Values{"auth_key": {docApp.Key}, "auth_timestamp": {strconv.FormatInt(now.Unix(), 10)}, "auth_version": {"1.0"}}
	sum := md5.Sum(nil)
	empty.Set("body_md5", hex.EncodeToString(sum[:]))
	empty.Set("auth_signature", docApp.sign(StringToSign("POST", "/apps/3/events", empty)))
	if err := docApp.VerifyRequest("POST", "/apps/3/events", empty, nil, now); err != nil {
		t.Errorf("an empty POST with the empty body's md5: %v", err)
	}
}
