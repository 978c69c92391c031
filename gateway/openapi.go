package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cablehub/cablehub/gen/openapi"
)

// servedDocument is the generated description with servers naming prefix,
// the --api_path in use, so it is true whatever that is. The top-level
// keys keep the generated order; a key this struct does not know fails
// here (and in the gateway's tests) rather than being dropped.
func servedDocument(prefix string) ([]byte, error) {
	var doc struct {
		OpenAPI    json.RawMessage `json:"openapi"`
		Info       json.RawMessage `json:"info"`
		Servers    []server        `json:"servers"`
		Security   json.RawMessage `json:"security"`
		Tags       json.RawMessage `json:"tags"`
		Paths      json.RawMessage `json:"paths"`
		Components json.RawMessage `json:"components"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(openapi.Document)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the generated OpenAPI document: %w", err)
	}
	doc.Servers = []server{{URL: prefix, Description: "This server's --api_path."}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// server is an OpenAPI Server Object.
type server struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

// serveOpenAPI answers GET and HEAD with the description; other methods
// get 405 like on the other routes.
func (g *Gateway) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r.Method, "GET, HEAD", g.opts.CORS)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(g.openAPI)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(g.openAPI)
	}
}
