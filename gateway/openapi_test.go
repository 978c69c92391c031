package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/cablehub/cablehub/gen/openapi"
)

// validateOpenAPI checks raw against the OpenAPI 3.1 specification's schema
// with libopenapi-validator and returns its "servers".
func validateOpenAPI(t *testing.T, raw []byte) []map[string]string {
	t.Helper()
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("parsing the document: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("invalid OpenAPI: %v", e)
		}
		t.FailNow()
	}
	var top struct {
		Servers []map[string]string `json:"servers"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	return top.Servers
}

func TestGeneratedOpenAPIIsValid(t *testing.T) {
	servers := validateOpenAPI(t, []byte(openapi.Document))
	if len(servers) != 1 || servers[0]["url"] != "/api" {
		t.Errorf("servers %v, want the default /api", servers)
	}
}

// The document is served without a token although the API needs one,
// valid, naming the gateway's prefix, and to GET and HEAD only.
func TestServedOpenAPI(t *testing.T) {
	ts, _ := newAPI(t, "s3cr3t", nil)
	url := ts.URL + "/api/openapi.json"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET without a token: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	servers := validateOpenAPI(t, body)
	if len(servers) != 1 || servers[0]["url"] != "/api" {
		t.Errorf("servers %v, want [{url: /api}]", servers)
	}
	// Apart from servers it is the generated document.
	var served, generated map[string]any
	json.Unmarshal(body, &served)
	json.Unmarshal([]byte(openapi.Document), &generated)
	delete(served, "servers")
	delete(generated, "servers")
	a, _ := json.Marshal(served)
	b, _ := json.Marshal(generated)
	if string(a) != string(b) {
		t.Error("the served document differs from gen/openapi beyond servers")
	}

	head, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || head.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: %d, length %d, want 200 and %d", head.StatusCode, head.ContentLength, len(body))
	}
	post, err := http.Post(url, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(post.Body)
	post.Body.Close()
	if post.StatusCode != 405 || post.Header.Get("Allow") != "GET, HEAD" || string(msg) != `{"code":12,"message":"method POST is not allowed here, use GET"}` {
		t.Errorf("POST: %d %s", post.StatusCode, msg)
	}
}
