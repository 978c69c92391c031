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

// FuzzVerifyRequest holds the HTTP API check to its promise on any query
// and body: it never panics, a request signed over its own parameters
// verifies, and the same request with any one byte of its signature
// changed does not.
func FuzzVerifyRequest(f *testing.F) {
	f.Add("info=user_count&filter_by_prefix=presence-", []byte(`{"name":"foo","channel":"c","data":"{}"}`), "POST", int64(0))
	f.Add("auth_key=x&Auth_Key=y", []byte(""), "GET", int64(599))
	f.Add("a=%00&b=%0A", []byte("\x00\xff"), "post", int64(-601))
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte, method string, skew int64) {
		app := &App{ID: "1", Key: "key", Secret: "secret"}
		now := time.Unix(1796524224, 0)
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		app.VerifyRequest(method, "/apps/1/events", q, body, now) // any input: no panic
		for k := range q {
			switch strings.ToLower(k) {
			case "auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature":
				delete(q, k)
			}
		}
		q.Set("auth_key", "key")
		q.Set("auth_timestamp", strconv.FormatInt(now.Unix()+skew%700, 10))
		q.Set("auth_version", "1.0")
		sum := md5.Sum(body)
		q.Set("body_md5", hex.EncodeToString(sum[:]))
		sig := app.sign(StringToSign(method, "/apps/1/events", q))
		q.Set("auth_signature", sig)
		err2 := app.VerifyRequest(method, "/apps/1/events", q, body, now)
		inWindow := skew%700 <= 600 && skew%700 >= -600
		if inWindow && err2 != nil && !duplicateKeys(q) {
			t.Fatalf("a request signed over its own parameters: %v", err2)
		}
		bad := []byte(sig)
		bad[len(bad)/2] ^= 1
		q.Set("auth_signature", string(bad))
		if app.VerifyRequest(method, "/apps/1/events", q, body, now) == nil {
			t.Fatal("a changed signature verified")
		}
	})
}

// duplicateKeys reports whether two keys of q differ only in case: the
// signed string then holds one of them, whichever the map gives first.
func duplicateKeys(q url.Values) bool {
	seen := map[string]bool{}
	for k := range q {
		if seen[strings.ToLower(k)] {
			return true
		}
		seen[strings.ToLower(k)] = true
	}
	return false
}
