package gateway

import (
	"net/http"
	"net/url"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The Accept header comes from any caller, without a token: whatever it
// holds, the check answers without panicking, and a value naming
// application/json with no parameters is always accepted.
func FuzzAcceptsJSON(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/html, application/json;q=0", "application/*;q=0.5;level=1", ";;,,q=", "APPLICATION/JSON;Q=0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		acceptsJSON([]string{accept})
		if !acceptsJSON([]string{accept, "application/json"}) {
			t.Fatalf("%q with application/json refused", accept)
		}
	})
}

// A watch's path and query come from the caller: they are read into a
// request or refused with NOT_FOUND (the path) or INVALID_ARGUMENT (the
// query), never a panic, and since is read back exactly.
func FuzzWatchRequest(f *testing.F) {
	for _, s := range [][2]string{{"chat%2F1", "epoch=e&since=3"}, {"x", "since=-1"}, {"%zz", ""}, {"a", "since=18446744073709551616"}, {"a", "since=1&since=2"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, seg, query string) {
		u, err := url.Parse("http://h/api/watch/" + seg + "?" + query)
		if err != nil {
			return
		}
		req, err := watchRequest(&http.Request{URL: u}, "/api/watch/")
		if err != nil {
			if c := status.Code(err); c != codes.NotFound && c != codes.InvalidArgument {
				t.Fatalf("code %v: %v", c, err)
			}
			return
		}
		if v := u.Query().Get("since"); v != "" && req.Since == nil {
			t.Fatalf("since %q read as %v", v, req.Since)
		}
	})
}
