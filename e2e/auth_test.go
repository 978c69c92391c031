package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cablehub/cablehub/server/streams"
)

func jwtToken(t *testing.T, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignedStreams(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--noauth", "--secret", "test-secret")
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	// The signature AnyCable produces for "secret/1" with key test-secret.
	signed := "InNlY3JldC8xIg==--6efee7151a01ab44a7fcac6f54970d29a0d9d89a7dba8ce147326713e2f952b6"
	if streams.Sign("secret/1", "test-secret") != signed {
		t.Fatal("signing helper disagrees with AnyCable")
	}
	id := signedIdentifier(signed)
	ws.send(subscribeCmd(id))
	ws.expect(`{"type":"confirm_subscription","identifier":` + quoted(id) + `}`)
	publish(t, s, `{"stream":"secret/1","data":"{\"hello\":\"signed\"}"}`, "Authorization: Bearer 598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580")
	ws.expect(`{"identifier":` + quoted(id) + `,"message":{"hello":"signed"}` + s.stamp("secret/1", 1) + `}`)

	for _, bad := range []string{
		signed[:len(signed)-1] + "0",
		streams.Sign("secret/1", "other-key"),
		"garbage",
		"NDI=--1f2a8361e3d1417d75d34ea491758ec27552780ed43dbbd5b8652ee1493fe89c",
	} {
		id := signedIdentifier(bad)
		ws.send(subscribeCmd(id))
		ws.expect(`{"type":"reject_subscription","identifier":` + quoted(id) + `}`)
	}
	// Whisper on a signed stream needs --streams_whisper: dropped here.
	other := dialWS(t, s, dialOpts{})
	other.welcome()
	other.send(subscribeCmd(id))
	other.next(5 * time.Second)
	ws.send(`{"command":"whisper","identifier":` + quoted(signedIdentifier(signed)) + `,"data":{"t":1}}`)
	ws.barrier()
	other.barrier()
}

func TestStreamsSecretAndTurbo(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--noauth", "--streams_secret", "stream-key", "--turbo_streams", "--turbo_streams_secret", "turbo-key", "--public")
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	for _, c := range []struct {
		id     string
		accept bool
	}{
		{signedIdentifier(streams.Sign("room/7", "stream-key")), true},
		{signedIdentifier(streams.Sign("room/7", "turbo-key")), false},
		{`{"channel":"Turbo::StreamsChannel","signed_stream_name":` + quoted(streams.Sign("turbo/1", "turbo-key")) + `}`, true},
		{`{"channel":"Turbo::StreamsChannel","signed_stream_name":` + quoted(streams.Sign("turbo/1", "stream-key")) + `}`, false},
	} {
		ws.send(subscribeCmd(c.id))
		kind := "reject_subscription"
		if c.accept {
			kind = "confirm_subscription"
		}
		ws.expect(`{"type":"` + kind + `","identifier":` + quoted(c.id) + `}`)
	}
	turboID := `{"channel":"Turbo::StreamsChannel","signed_stream_name":` + quoted(streams.Sign("turbo/1", "turbo-key")) + `}`
	publish(t, s, `{"stream":"turbo/1","data":"<turbo-stream action=\"append\"></turbo-stream>"}`)
	ws.expect(`{"identifier":` + quoted(turboID) + `,"message":"\u003cturbo-stream action=\"append\"\u003e\u003c/turbo-stream\u003e"` + s.stamp("turbo/1", 1) + `}`)
}

func TestJWT(t *testing.T) {
	t.Parallel()
	// --norpc: without a token there is no other way in (with the RPC
	// back end on, it would decide).
	s := startServer(t, nil, "--secret", "test-secret", "--public_streams", "--norpc")
	future := time.Now().Add(time.Hour).Unix()
	valid := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":42}`, "exp": future})

	for name, opts := range map[string]dialOpts{
		"query":       {query: "?jid=" + valid},
		"header":      {header: http.Header{"X-Jid": {valid}}},
		"subprotocol": {protocols: []string{"actioncable-v1-json", "anycable-token." + valid}},
	} {
		t.Run("accepted via "+name, func(t *testing.T) {
			ws := dialWS(t, s, opts)
			ws.welcome()
			ws.subscribe("j/1")
		})
	}
	if ws := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json", "anycable-token." + valid}}); ws.resp.Header.Get("Sec-WebSocket-Protocol") != "actioncable-v1-json" {
		t.Errorf("token subprotocol must not be selected")
	}

	refused := []struct {
		name, token, frame string
		code               int
		reason             string
	}{
		{"expired", jwtToken(t, "test-secret", jwt.MapClaims{"ext": "x", "exp": time.Now().Add(-time.Minute).Unix()}),
			`{"type":"disconnect","reason":"token_expired","reconnect":false}`, 1000, "Auth Failed"},
		{"forged", jwtToken(t, "wrong-key", jwt.MapClaims{"ext": "x", "exp": future}),
			`{"type":"disconnect","reason":"unauthorized","reconnect":false}`, 1000, "Auth Failed"},
		{"malformed", "not.a.jwt", `{"type":"disconnect","reason":"unauthorized","reconnect":false}`, 1000, "Auth Failed"},
		{"no ext", jwtToken(t, "test-secret", jwt.MapClaims{"sub": "42"}), "", 1011, "Auth Error"},
		{"no token and no other way in", "", `{"type":"disconnect","reason":"unauthorized","reconnect":false}`, 1000, "Auth Failed"},
	}
	carriers := map[string]func(token string) dialOpts{
		"query":  func(tok string) dialOpts { return dialOpts{query: "?jid=" + tok} },
		"header": func(tok string) dialOpts { return dialOpts{header: http.Header{"X-Jid": {tok}}} },
		"subprotocol": func(tok string) dialOpts {
			return dialOpts{protocols: []string{"actioncable-v1-ext-json", "anycable-token." + tok}}
		},
	}
	for _, c := range refused {
		for carrier, opts := range carriers {
			if c.token == "" && carrier != "query" {
				continue
			}
			t.Run(c.name+" via "+carrier, func(t *testing.T) {
				o := dialOpts{}
				if c.token != "" {
					o = opts(c.token)
				}
				ws := dialWS(t, s, o)
				if c.frame != "" {
					ws.expect(c.frame)
				}
				ws.expectClose(c.code, c.reason)
			})
		}
	}
}

func TestEnforcedJWT(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--jwt_secret", "k", "--enforce_jwt", "--jwt_param", "token", "--noauth")
	if !strings.Contains(s.Logs(), "JWT authentication is enabled (param: token, enforced: true)") {
		t.Errorf("log:\n%s", s.Logs())
	}
	ws := dialWS(t, s, dialOpts{})
	ws.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
	ws.expectClose(1000, "Auth Failed")
	good := jwtToken(t, "k", jwt.MapClaims{"ext": "u"})
	dialWS(t, s, dialOpts{query: "?token=" + good}).welcome()
	dialWS(t, s, dialOpts{header: http.Header{"X-Token": {good}}}).welcome()
	wrongParam := dialWS(t, s, dialOpts{query: "?jid=" + good})
	wrongParam.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
}

func TestRemoteDisconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "test-secret", "--noauth", "--public_streams")
	auth := "Authorization: Bearer 598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580"
	tok42 := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":42}`})
	tok7 := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":7}`})
	a := dialWS(t, s, dialOpts{query: "?jid=" + tok42})
	b := dialWS(t, s, dialOpts{query: "?jid=" + tok42, protocols: []string{"actioncable-v1-json"}})
	other := dialWS(t, s, dialOpts{query: "?jid=" + tok7})
	anon := dialWS(t, s, dialOpts{})
	for _, c := range []*wsClient{a, b, other, anon} {
		c.welcome()
	}
	publish(t, s, `{"command":"disconnect","payload":{"identifier":"{\"user_id\":42}","reconnect":true}}`, auth)
	for _, c := range []*wsClient{a, b} {
		c.expect(`{"type":"disconnect","reason":"remote","reconnect":true}`)
		c.expectClose(1000, "Closed remotely")
	}
	publish(t, s, `{"command":"disconnect","payload":{"identifier":"","reconnect":false}}`, auth)
	other.barrier()
	anon.barrier()

	// The dedicated endpoint does the same.
	r := do(t, "POST", "http://"+s.Main+"/api/disconnect", `{"identifier":"{\"user_id\":7}","reconnect":false}`, auth)
	if r.Status != 201 {
		t.Fatalf("disconnect endpoint: %d %s", r.Status, r.Body)
	}
	other.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
	other.expectClose(1000, "Closed remotely")
	anon.barrier()

	if r := do(t, "POST", "http://"+s.Main+"/api/publish", `{"command":"explode"}`, auth); r.Status != 422 {
		t.Errorf("unknown command: %d", r.Status)
	}
	if r := do(t, "POST", "http://"+s.Main+"/api/disconnect", `{"identifier":"x"}`); r.Status != 401 {
		t.Errorf("disconnect without token: %d", r.Status)
	}
}
