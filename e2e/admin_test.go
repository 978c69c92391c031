package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/config"
)

const (
	adminPassword = "correct-horse-battery-42"
	adminSecret   = "admin-e2e-s3cr3t"
)

// signIn signs in to s's console and returns the session cookie's value.
func signIn(t *testing.T, s *server, password string) string {
	t.Helper()
	r := do(t, "POST", "http://"+s.API+"/admin/session", `{"password":"`+password+`"}`, "X-Cablehub-Console: 1")
	if r.Status != 204 {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	for _, c := range r.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(c, "cablehub_admin="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	t.Fatalf("sign-in set no session cookie: %v", r.Header)
	return ""
}

// The console's session is worth an API token: over REST (with the
// console header, not without) and gRPC alike, until it is signed out.
func TestAdminSessionGuardsTheAPI(t *testing.T) {
	s := startServer(t, nil, "--secret", adminSecret, "--admin", "--admin_password", adminPassword, "--public_streams", "--noauth")
	if !strings.Contains(s.Logs(), "Serve the admin console at http://"+s.API+"/admin/") {
		t.Fatalf("no startup line for the console:\n%s", s.Logs())
	}
	cookie := signIn(t, s, adminPassword)
	info := "http://" + s.API + "/api/info"
	if r := do(t, "GET", info, "", "Cookie: cablehub_admin="+cookie); r.Status != 401 {
		t.Fatalf("the cookie without the console header: %d, want 401", r.Status)
	}
	// Counters: a publication to two subscribers is one accepted and two
	// deliveries.
	a, b := dialWS(t, s, dialOpts{}), dialWS(t, s, dialOpts{})
	a.welcome()
	b.welcome()
	id := a.subscribe("ops")
	b.subscribe("ops")
	r := do(t, "POST", "http://"+s.API+"/api/publish", `{"stream":"ops","data":"{\"n\":1}"}`,
		"Cookie: cablehub_admin="+cookie, "X-Cablehub-Console: 1")
	if r.Status != 201 {
		t.Fatalf("publish with the session: %d %s", r.Status, r.Body)
	}
	a.expect(`{"identifier":` + quoted(id) + `,"message":{"n":1}` + s.stamp("ops", 1) + `}`)
	b.expect(`{"identifier":` + quoted(id) + `,"message":{"n":1}` + s.stamp("ops", 1) + `}`)
	r = do(t, "GET", info, "", "Cookie: cablehub_admin="+cookie, "X-Cablehub-Console: 1")
	var got struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.Body), &got); r.Status != 200 || err != nil || len(got.Nodes) != 1 {
		t.Fatalf("info with the session: %d %s", r.Status, r.Body)
	}
	n := got.Nodes[0]
	if n["published_total"] != 1.0 || n["deliveries_total"] != 2.0 || n["rpc_calls_total"] != 0.0 || n["connections"] != 2.0 {
		t.Fatalf("counters %s, want published_total 1, deliveries_total 2, rpc_calls_total 0 (JSON numbers)", r.Body)
	}

	client := dialGRPC(t, s.GRPC)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "cablehub-console-session", cookie)
		_, err := client.GetInfo(ctx, &cablehubv1.GetInfoRequest{})
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("gRPC with the session: %v", err)
	}
	if r := do(t, "DELETE", "http://"+s.API+"/admin/session", "", "Cookie: cablehub_admin="+cookie, "X-Cablehub-Console: 1"); r.Status != 204 {
		t.Fatalf("sign-out: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", info, "", "Cookie: cablehub_admin="+cookie, "X-Cablehub-Console: 1"); r.Status != 401 {
		t.Fatalf("REST with a signed-out session: %d, want 401", r.Status)
	}
	if err := call(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC with a signed-out session: %v, want UNAUTHENTICATED", err)
	}

	// The API token signs in too; the configuration shown masks secrets.
	cookie = signIn(t, s, config.DeriveSecret(adminSecret, "api-cable"))
	r = do(t, "GET", "http://"+s.API+"/admin/config", "", "Cookie: cablehub_admin="+cookie)
	if r.Status != 200 || !strings.Contains(r.Body, `enabled = true`) {
		t.Fatalf("config: %d %s", r.Status, r.Body)
	}
	for _, secret := range []string{adminPassword, adminSecret, config.DeriveSecret(adminSecret, "api-cable")} {
		if strings.Contains(r.Body, secret) || strings.Contains(s.Logs(), secret) {
			t.Fatalf("the configuration page or the log shows a credential (%.6s…)", secret)
		}
	}
}

// Without anything to sign in with, --admin serves nothing and says why.
func TestAdminNotServedWithoutACredential(t *testing.T) {
	for _, tc := range []struct {
		args []string
		warn string
	}{
		{[]string{"--public", "--admin"}, "nothing can sign in to it; set --admin_password"},
		{[]string{"--noauth", "--admin", "--admin_password", adminPassword}, "it calls the REST API, which is off"},
	} {
		s := startServer(t, nil, tc.args...)
		if !strings.Contains(s.Logs(), "level=WARN") || !strings.Contains(s.Logs(), tc.warn) {
			t.Errorf("%v: no WARN saying %q:\n%s", tc.args, tc.warn, s.Logs())
		}
		if r := do(t, "GET", "http://"+s.Main+"/admin/", ""); r.Status != 404 {
			t.Errorf("%v: GET /admin/: %d, want 404", tc.args, r.Status)
		}
		s.stop()
	}
}
