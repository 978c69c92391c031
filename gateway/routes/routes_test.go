package routes_test

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cablehub/cablehub/gateway/routes"
	"github.com/cablehub/cablehub/gen/openapi"
)

func TestLookup(t *testing.T) {
	table := routes.New()
	for _, tc := range []struct {
		rel, op string // op "" for no route
	}{
		{"/publish", routes.Publish},
		{"/disconnect", routes.Disconnect},
		{"/openapi.json", routes.GetOpenAPI},
		{"/presence/chat/users", routes.GetPresence},
		// Misshapen presence paths belong to the route, so they get its
		// method and token checks before Fits refuses them.
		{"/presence/", routes.GetPresence},
		{"/presence/a/b/users", routes.GetPresence},
		{"/presence/chat/stats", routes.GetPresenceStats},
		{"/presence/a/b/stats", routes.GetPresenceStats},
		{"/presence/stats", routes.GetPresenceStats},
		{"/history/chat", routes.GetHistory},
		{"/watch/chat", routes.Watch},
		{"/streams", routes.ListStreams},
		{"/info", routes.GetInfo},
		{"/streams/", ""},
		{"/presence", ""},
		{"/publish/", ""},
		{"/publishx", ""},
		{"/openapi.json/x", ""},
		{"", ""},
		{"/", ""},
	} {
		r, ok := table.Lookup(tc.rel)
		if ok != (tc.op != "") || r.Operation != tc.op {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.rel, r.Operation, ok, tc.op)
		}
	}
}

func TestFits(t *testing.T) {
	presence, _ := routes.New().Find(routes.GetPresence)
	publish, _ := routes.New().Find(routes.Publish)
	for _, tc := range []struct {
		route   routes.Route
		escaped string
		want    bool
	}{
		{presence, "/api/presence/chat/users", true},
		{presence, "/api/presence/chat%2F1/users", true},
		{presence, "/api/presence//users", false},
		{presence, "/api/presence/a/b/users", false},
		{presence, "/api/presence/chat/users/", false},
		{presence, "/api/presence/chat/user", false},
		{presence, "/api/presence/", false},
		{presence, "/api/presence/chat", false},
		{presence, "/api/presence/chat/users/x", false},
		{presence, "/api/presence/chat//users", false},
		{publish, "/api/publish", true},
	} {
		if got := tc.route.Fits(tc.escaped); got != tc.want {
			t.Errorf("%s Fits(%q) = %v, want %v", tc.route.Operation, tc.escaped, got, tc.want)
		}
	}
	if got := presence.Template(); got != "/presence/<stream>/users" {
		t.Errorf("Template() = %q", got)
	}
	if got := presence.Params(); !slices.Equal(got, []string{"stream"}) {
		t.Errorf("Params() = %q", got)
	}
}

// TestTableIsHTTPRules checks the table's RPC routes against the rules
// grpc-gateway's mux is generated from (the OpenAPI generator refuses to
// run when they differ; this says so without regenerating).
func TestTableIsHTTPRules(t *testing.T) {
	raw, err := os.ReadFile("../../proto/cablehub/v1/http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		HTTP struct {
			Rules []struct {
				Selector, Get, Post string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var fromRules, fromTable []string
	for _, r := range cfg.HTTP.Rules {
		if r.Get != "" {
			fromRules = append(fromRules, r.Selector+" GET "+r.Get)
		}
		if r.Post != "" {
			fromRules = append(fromRules, r.Selector+" POST "+r.Post)
		}
	}
	for _, r := range routes.New() {
		if r.RPC != "" {
			fromTable = append(fromTable, r.RPC+" "+r.Method+" "+r.Path)
		}
	}
	slices.Sort(fromRules)
	slices.Sort(fromTable)
	if !slices.Equal(fromRules, fromTable) {
		t.Errorf("http.yaml rules:\n%s\nroute table:\n%s", strings.Join(fromRules, "\n"), strings.Join(fromTable, "\n"))
	}
}

// TestTableIsDocumented checks that the generated OpenAPI document
// describes exactly the table's routes, with their operations, and without
// a token where the table needs none.
func TestTableIsDocumented(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string             `json:"operationId"`
			Security    *[]json.RawMessage `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(openapi.Document), &doc); err != nil {
		t.Fatal(err)
	}
	var documented, fromTable []string
	for path, item := range doc.Paths {
		for verb, op := range item {
			if verb == "options" {
				continue // the CORS preflight every route has
			}
			open := op.Security != nil && len(*op.Security) == 0
			documented = append(documented, strings.ToUpper(verb)+" "+path+" "+op.OperationID+" auth="+strconv.FormatBool(!open))
		}
	}
	for _, r := range routes.New() {
		fromTable = append(fromTable, r.Method+" "+r.Path+" "+r.Operation+" auth="+strconv.FormatBool(r.Auth))
	}
	slices.Sort(documented)
	slices.Sort(fromTable)
	if !slices.Equal(documented, fromTable) {
		t.Errorf("documented:\n%s\nroute table:\n%s", strings.Join(documented, "\n"), strings.Join(fromTable, "\n"))
	}
}

func TestFitsDoesNotAllocate(t *testing.T) {
	presence, _ := routes.New().Find(routes.GetPresence)
	if n := testing.AllocsPerRun(100, func() { presence.Fits("/api/presence/chat%2F1/users") }); n != 0 {
		t.Errorf("Fits allocates %v times", n)
	}
}
