package runner

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAPIRequestLabels pins the route label values of the REST request
// metrics, which dashboards select on: each route's own, "other" for the
// description and for paths without a route, and "disconnect" for a remote
// disconnect command sent to the publish route, which the gateway answers
// as the disconnect route.
func TestAPIRequestLabels(t *testing.T) {
	r := start(t, "--public", "--broker", "none")
	api := "http://" + r.APIAddr + "/api"
	requests := []struct{ method, path, body string }{
		{"POST", "/publish", `{"stream":"chat","data":"1"}`},
		{"GET", "/publish", ""},
		{"POST", "/publish", `{"command":"disconnect","payload":{"identifier":"u1"}}`},
		{"POST", "/disconnect", `{"identifier":"u2"}`},
		{"GET", "/presence/chat/users", ""},
		{"GET", "/presence/a/b/users", ""},
		{"GET", "/openapi.json", ""},
		{"GET", "/nope", ""},
		{"GET", "/history/chat", ""},
		{"GET", "/presence/chat/stats", ""},
		{"GET", "/streams", ""},
		{"GET", "/info", ""},
		{"POST", "/info", ""},
	}
	for _, q := range requests {
		req, err := http.NewRequest(q.method, api+q.path, strings.NewReader(q.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A request is counted when its handler returns, which may be after the
	// client has its response: poll until the counts settle.
	scrape := func() []string {
		rec := httptest.NewRecorder()
		r.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		var got []string
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if strings.HasPrefix(line, "cablehub_api_requests_total{") {
				got = append(got, line)
			}
		}
		return got
	}
	want := []string{
		`cablehub_api_requests_total{code="200",route="info"} 1`,
		`cablehub_api_requests_total{code="200",route="other"} 1`,
		`cablehub_api_requests_total{code="200",route="streams"} 1`,
		`cablehub_api_requests_total{code="201",route="disconnect"} 2`,
		`cablehub_api_requests_total{code="201",route="publish"} 1`,
		`cablehub_api_requests_total{code="404",route="other"} 1`,
		`cablehub_api_requests_total{code="404",route="presence"} 1`,
		`cablehub_api_requests_total{code="405",route="info"} 1`,
		`cablehub_api_requests_total{code="405",route="publish"} 1`,
		`cablehub_api_requests_total{code="501",route="history"} 1`,
		`cablehub_api_requests_total{code="501",route="presence"} 1`,
		`cablehub_api_requests_total{code="501",route="presence_stats"} 1`,
	}
	got := scrape()
	for deadline := time.Now().Add(5 * time.Second); strings.Join(got, "\n") != strings.Join(want, "\n") && time.Now().Before(deadline); got = scrape() {
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("request counts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
