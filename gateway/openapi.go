package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/cablehub/cablehub/server/jsonerr"
	"google.golang.org/grpc/codes"
	"net/http"
	"strconv"
	"strings"

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
	if !acceptsJSON(r.Header.Values("Accept")) {
		jsonerr.Write(w, http.StatusNotAcceptable, codes.InvalidArgument,
			"the document is application/json, which the Accept header does not admit")
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

// acceptsJSON reports whether Accept header values admit application/json:
// no header, or a media range application/json, application/* or */*
// whose q is not 0.
func acceptsJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			mediaType, params, _ := strings.Cut(strings.TrimSpace(item), ";")
			switch strings.ToLower(strings.TrimSpace(mediaType)) {
			case "application/json", "application/*", "*/*":
				if !zeroQ(params) {
					return true
				}
			}
		}
	}
	return false
}

// zeroQ reports whether media range parameters say q=0 (not acceptable).
func zeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}
