package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// apiSpec is the OpenAPI document a server serves, with a validator for it.
type apiSpec struct {
	raw   []byte
	v     validator.Validator
	model *v3.Document
}

// fetchSpec reads {prefix}/openapi.json from addr without a token and
// checks it against the OpenAPI 3.1 specification (libopenapi-validator).
func fetchSpec(t *testing.T, addr, prefix string) *apiSpec {
	t.Helper()
	r := do(t, "GET", "http://"+addr+prefix+"/openapi.json", "")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s/openapi.json: %d %q %.200s", prefix, r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	doc, err := libopenapi.NewDocument([]byte(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("the served document is not valid OpenAPI: %v", verrs)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	return &apiSpec{raw: []byte(r.Body), v: v, model: &m.Model}
}

// statuses lists "METHOD path status" for every documented response but
// "default".
func (s *apiSpec) statuses(t *testing.T) map[string]bool {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(s.raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for status := range op.Responses {
				if status != "default" {
					out[strings.ToUpper(method)+" "+path+" "+status] = true
				}
			}
		}
	}
	return out
}

// validate checks an answer against the operation documented for method
// and path (a path template of the document) with the validator's
// response validation: status, headers and body schema.
func (s *apiSpec) validate(t *testing.T, path string, req *http.Request, resp *http.Response) {
	t.Helper()
	item := s.model.Paths.PathItems.GetOrZero(path)
	if item == nil {
		t.Fatalf("no path %s in the document", path)
	}
	if ok, errs := s.v.GetResponseBodyValidator().ValidateResponseBodyWithPathItem(req, resp, item, path); !ok {
		for _, e := range errs {
			t.Errorf("response does not match the document: %v", e)
		}
	}
}

// exchange is one request and its answer, the body read and kept.
type exchange struct {
	req  *http.Request
	resp *http.Response
	body []byte
}

// apiCase makes the server answer one documented status of one operation.
type apiCase struct {
	method, path string // as in the document: "POST", "/publish"
	status       int
	name         string
	send         func(t *testing.T) exchange
}

func (c apiCase) key() string { return fmt.Sprintf("%s %s %d", c.method, c.path, c.status) }

// call sends a request with the Go client; headers are "Name: value".
func call(method, url, body string, headers ...string) func(t *testing.T) exchange {
	return func(t *testing.T) exchange {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			req.Header.Set(name, value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return exchange{req, resp, b}
	}
}

// withheldBody sends a request's headers and part of its declared body,
// then waits for the server's answer (408 after its 10 s body bound).
func withheldBody(addr, path, token string) func(t *testing.T) exchange {
	return func(t *testing.T) exchange {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(40 * time.Second))
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"", path, token)
		req, _ := http.NewRequest("POST", "http://"+addr+path, nil)
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return exchange{req, resp, b}
	}
}

// TestOpenAPIStatuses makes the server answer every status that the served
// document lists for every operation, and validates each answer against
// the documented response. A documented status no case exercises fails the
// test, as does a case whose status is not documented: the document cannot
// drift from the server.
func TestOpenAPIStatuses(t *testing.T) {
	const token = "openapi-token"
	main := startServer(t, nil, "--public", "--api_secret", token, "--api_max_body_size", "1024")
	cors := startServer(t, nil, "--public", "--api_secret", token, "--api_cors_headers")
	noPresence := startServer(t, nil, "--public", "--broker", "none")
	// Redis on a port nobody listens on: the broker fails every call.
	down := startServer(t, nil, "--public", "--broker", "redis",
		"--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t)), "--publish_timeout", "300ms")
	spec := fetchSpec(t, main.Main, "/api")

	// A present user, so that the presence answer has a record.
	ws := dialWS(t, main, dialOpts{})
	ws.welcome()
	id := ws.subscribe("openapi-room")
	ws.send(joinCmd(id, `{"id":"u1","info":{"name":"Ann"}}`))
	ws.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":"u1","info":{"name":"Ann"},"type":"join"}}`)

	cases := openAPICases(main, cors, noPresence, down, token)
	documented := spec.statuses(t)
	exercised := map[string]bool{}
	for _, c := range cases {
		exercised[c.key()] = true
		if !documented[c.key()] {
			t.Errorf("%s (%s) is not documented", c.key(), c.name)
		}
	}
	var missing []string
	for k := range documented {
		if !exercised[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		t.Errorf("documented %s is exercised by no case", k)
	}

	for _, c := range cases {
		t.Run(c.key()+" "+c.name, func(t *testing.T) {
			t.Parallel()
			x := c.send(t)
			if x.resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (body %s)", x.resp.StatusCode, c.status, x.body)
			}
			if len(x.body) > 0 && x.resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", x.resp.Header.Get("Content-Type"))
			}
			spec.validate(t, c.path, x.req, x.resp)
		})
	}
}

func openAPICases(main, cors, noPresence, down *server, token string) []apiCase {
	api := func(s *server) string { return "http://" + s.Main + "/api" }
	auth := "Authorization: Bearer " + token
	pub := `{"stream":"openapi","data":"{\"text\":\"hi\"}"}`
	big := `{"stream":"openapi","data":"` + strings.Repeat("x", 2048) + `"}`
	var cases []apiCase
	add := func(method, path string, status int, name string, send func(t *testing.T) exchange) {
		cases = append(cases, apiCase{method, path, status, name, send})
	}
	add("POST", "/publish", 201, "one publication", call("POST", api(main)+"/publish", pub, auth))
	add("POST", "/publish", 201, "a batch", call("POST", api(main)+"/publish",
		`[`+pub+`,{"stream":"openapi","data":"x","meta":{"transient":true,"idempotency_key":"k1"}}]`, auth))
	add("POST", "/publish", 201, "remote disconnect command", call("POST", api(main)+"/publish",
		`{"command":"disconnect","payload":{"identifier":"nobody","reconnect":true}}`, auth))
	add("POST", "/publish", 401, "no token", call("POST", api(main)+"/publish", pub))
	add("POST", "/publish", 401, "wrong token", call("POST", api(main)+"/publish", pub, "Authorization: Bearer nope"))
	add("POST", "/publish", 408, "withheld body", withheldBody(main.Main, "/api/publish", token))
	add("POST", "/publish", 413, "body over the limit", call("POST", api(main)+"/publish", big, auth))
	add("POST", "/publish", 422, "not JSON", call("POST", api(main)+"/publish", `{"stream":`, auth))
	add("POST", "/publish", 422, "empty batch", call("POST", api(main)+"/publish", `[]`, auth))
	add("POST", "/publish", 422, "no stream", call("POST", api(main)+"/publish", `[`+pub+`,{"data":"x"}]`, auth))
	add("POST", "/publish", 422, "unknown command", call("POST", api(main)+"/publish", `{"command":"reload"}`, auth))
	add("POST", "/publish", 501, "broker down", call("POST", api(down)+"/publish", pub))

	add("POST", "/disconnect", 201, "identifier", call("POST", api(main)+"/disconnect", `{"identifier":"nobody"}`, auth))
	add("POST", "/disconnect", 401, "no token", call("POST", api(main)+"/disconnect", `{"identifier":"nobody"}`))
	add("POST", "/disconnect", 408, "withheld body", withheldBody(main.Main, "/api/disconnect", token))
	add("POST", "/disconnect", 413, "body over the limit", call("POST", api(main)+"/disconnect",
		`{"identifier":"`+strings.Repeat("x", 2048)+`"}`, auth))
	add("POST", "/disconnect", 422, "wrong type", call("POST", api(main)+"/disconnect", `{"identifier":"nobody","reconnect":"yes"}`, auth))
	add("POST", "/disconnect", 501, "broker down", call("POST", api(down)+"/disconnect", `{"identifier":"nobody"}`))

	const presence = "/presence/{stream}/users"
	add("GET", presence, 200, "a present user", call("GET", api(main)+"/presence/openapi-room/users", "", auth))
	add("GET", presence, 200, "unknown stream", call("GET", api(main)+"/presence/chat%2F1/users", "", auth))
	add("GET", presence, 401, "wrong token", call("GET", api(main)+"/presence/openapi-room/users", "", "Authorization: Bearer nope"))
	add("GET", presence, 404, "empty stream segment", call("GET", api(main)+"/presence//users", "", auth))
	add("GET", presence, 404, "raw slash in the stream", call("GET", api(main)+"/presence/a/b/users", "", auth))
	add("GET", presence, 501, "broker without presence", call("GET", api(noPresence)+"/presence/room/users", ""))
	add("GET", presence, 501, "broker down", call("GET", api(down)+"/presence/room/users", ""))

	cases = append(cases, v2Cases(main, noPresence, down, token)...)

	add("GET", "/openapi.json", 200, "no token", call("GET", api(main)+"/openapi.json", ""))
	add("GET", "/openapi.json", 406, "Accept: text/html", call("GET", api(main)+"/openapi.json", "", "Accept: text/html"))
	for _, p := range []struct{ doc, url string }{
		{"/publish", "/publish"}, {"/disconnect", "/disconnect"}, {presence, "/presence/room/users"}, {"/openapi.json", "/openapi.json"},
		{"/history/{stream}", "/history/room"}, {"/presence/{stream}/stats", "/presence/room/stats"},
		{"/streams", "/streams"}, {"/info", "/info"}, {"/watch/{stream}", "/watch/room"},
	} {
		add("OPTIONS", p.doc, 200, "preflight with CORS", call("OPTIONS", api(cors)+p.url, "",
			"Origin: http://example.com", "Access-Control-Request-Method: GET"))
		add("OPTIONS", p.doc, 405, "without CORS", call("OPTIONS", api(main)+p.url, ""))
	}
	return cases
}

// v2Cases are the answers of the history, stats, streams, info and watch
// routes.
func v2Cases(main, noPresence, down *server, token string) []apiCase {
	api := func(s *server) string { return "http://" + s.Main + "/api" }
	auth := "Authorization: Bearer " + token
	var cases []apiCase
	add := func(method, path string, status int, name string, send func(t *testing.T) exchange) {
		cases = append(cases, apiCase{method, path, status, name, send})
	}
	const history = "/history/{stream}"
	add("GET", history, 200, "all retained", call("GET", api(main)+"/history/openapi", "", auth))
	add("GET", history, 200, "the latest one", call("GET", api(main)+"/history/openapi?limit=1", "", auth))
	add("GET", history, 401, "no token", call("GET", api(main)+"/history/openapi", ""))
	add("GET", history, 404, "empty stream segment", call("GET", api(main)+"/history/", "", auth))
	add("GET", history, 409, "another epoch", call("GET", api(main)+"/history/openapi?epoch=gone&since=1", "", auth))
	add("GET", history, 422, "since without epoch", call("GET", api(main)+"/history/openapi?since=1", "", auth))
	add("GET", history, 501, "broker without history", call("GET", api(noPresence)+"/history/room", ""))
	add("GET", history, 501, "broker down", call("GET", api(down)+"/history/room", ""))

	const stats = "/presence/{stream}/stats"
	add("GET", stats, 200, "a present user", call("GET", api(main)+"/presence/openapi-room/stats", "", auth))
	add("GET", stats, 401, "no token", call("GET", api(main)+"/presence/openapi-room/stats", ""))
	add("GET", stats, 404, "empty stream segment", call("GET", api(main)+"/presence//stats", "", auth))
	add("GET", stats, 501, "broker without presence", call("GET", api(noPresence)+"/presence/room/stats", ""))
	add("GET", stats, 501, "broker down", call("GET", api(down)+"/presence/room/stats", ""))

	add("GET", "/streams", 200, "the streams", call("GET", api(main)+"/streams?prefix=openapi&limit=10", "", auth))
	add("GET", "/streams", 401, "no token", call("GET", api(main)+"/streams", ""))
	add("GET", "/streams", 422, "limit over 1000", call("GET", api(main)+"/streams?limit=5000", "", auth))
	add("GET", "/info", 200, "the node", call("GET", api(main)+"/info", "", auth))
	add("GET", "/info", 401, "no token", call("GET", api(main)+"/info", ""))

	const watch = "/watch/{stream}"
	add("GET", watch, 200, "live", watchCall(api(main)+"/watch/openapi", auth))
	add("GET", watch, 401, "no token", call("GET", api(main)+"/watch/openapi", ""))
	add("GET", watch, 404, "empty stream segment", call("GET", api(main)+"/watch/", "", auth))
	add("GET", watch, 409, "another epoch", call("GET", api(main)+"/watch/openapi?epoch=gone&since=1", "", auth))
	add("GET", watch, 422, "since not a number", call("GET", api(main)+"/watch/openapi?since=x", "", auth))
	add("GET", watch, 501, "broker without history", call("GET", api(noPresence)+"/watch/room?epoch=e&since=1", ""))
	add("GET", watch, 501, "broker down", call("GET", api(down)+"/watch/room?epoch=e&since=1", ""))
	return cases
}

// watchCall opens a watch and takes its answer's head: the body goes on
// as long as the watch, so it is left unread.
func watchCall(url string, headers ...string) func(t *testing.T) exchange {
	return func(t *testing.T) exchange {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(nil))
		return exchange{req, resp, nil}
	}
}

// With --api_path /custom on a dedicated --api_port the document is served
// there only, its servers name /custom, and a request made from it (servers
// URL + path) is one the server answers as documented.
func TestOpenAPICustomAPIPath(t *testing.T) {
	s := startServer(t, nil, "--public", "--api_path", "/custom", "--api_port", fmt.Sprint(freePort(t)))
	spec := fetchSpec(t, s.API, "/custom")
	servers := spec.model.Servers
	if len(servers) != 1 || servers[0].URL != "/custom" {
		t.Fatalf("servers %v, want one with url /custom", servers)
	}
	if r := do(t, "GET", "http://"+s.API+"/api/openapi.json", ""); r.Status != 404 {
		t.Errorf("/api/openapi.json on the API port: %d", r.Status)
	}
	if r := do(t, "GET", "http://"+s.Main+"/custom/openapi.json", ""); r.Status != 404 {
		t.Errorf("/custom/openapi.json on the main port: %d", r.Status)
	}
	head := call("HEAD", "http://"+s.API+"/custom/openapi.json", "")(t)
	if head.resp.StatusCode != 200 || len(head.body) != 0 || head.resp.ContentLength != int64(len(spec.raw)) {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %d", head.resp.StatusCode, len(head.body), head.resp.ContentLength)
	}

	x := call("POST", "http://"+s.API+servers[0].URL+"/publish", okPub)(t)
	if x.resp.StatusCode != 201 {
		t.Fatalf("publish at /custom/publish: %d %s", x.resp.StatusCode, x.body)
	}
	// The validator finds the operation from the request URL and servers.
	if ok, errs := spec.v.ValidateHttpResponse(x.req, x.resp); !ok {
		t.Errorf("publish answer does not match the document: %v", errs)
	}
}
