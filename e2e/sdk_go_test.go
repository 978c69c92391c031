package e2e

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/cablehub/cablehub/client"
)

// The Go SDK (package client) against the binary: what its callers see.

func newGoClient(t *testing.T, addr string, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantSDKCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %#v, want *client.Error with %v", err, code)
	}
}

func TestGoClientPublishReachesSubscribers(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--public")
	c := newGoClient(t, s.GRPC, client.Options{Secret: "s3cr3t"})
	ctx := context.Background()

	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	id := ws.subscribe("chat/1")
	q := quoted(id)

	if err := c.Publish(ctx, "chat/1", `{"text":"hi"}`, client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	ws.expect(`{"identifier":` + q + `,"message":{"text":"hi"}` + s.stamp("chat/1", 1) + `}`)

	err := c.PublishBatch(ctx, []client.Publication{
		{Stream: "chat/1", Data: `1`},
		{Stream: "chat/1", Data: `2`, PublishOptions: client.PublishOptions{BroadcastType: "note", Transient: true}},
		{Stream: "elsewhere", Data: `x`},
		{Stream: "chat/1", Data: `not json`},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws.expect(`{"identifier":` + q + `,"message":1` + s.stamp("chat/1", 2) + `}`)
	ws.expect(`{"type":"note","identifier":` + q + `,"message":2}`)
	ws.expect(`{"identifier":` + q + `,"message":"not json"` + s.stamp("chat/1", 3) + `}`)

	// One invalid publication refuses the batch: nothing is delivered.
	err = c.PublishBatch(ctx, []client.Publication{{Stream: "chat/1", Data: `3`}, {Stream: "", Data: `4`}})
	wantSDKCode(t, err, codes.InvalidArgument)
	ws.barrier()
}

func TestGoClientAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--public")
	ctx := context.Background()
	wantSDKCode(t, newGoClient(t, s.GRPC, client.Options{Secret: "wrong"}).Publish(ctx, "a", "1", client.PublishOptions{}), codes.Unauthenticated)
	wantSDKCode(t, newGoClient(t, s.GRPC, client.Options{}).Publish(ctx, "a", "1", client.PublishOptions{}), codes.Unauthenticated)
	_, err := newGoClient(t, s.GRPC, client.Options{Secret: "wrong"}).Presence(ctx, "a")
	wantSDKCode(t, err, codes.Unauthenticated)

	explicit := startServer(t, nil, "--secret", "s3cr3t", "--api_secret", "explicit-token")
	if err := newGoClient(t, explicit.GRPC, client.Options{APISecret: "explicit-token"}).Publish(ctx, "a", "1", client.PublishOptions{}); err != nil {
		t.Fatalf("api secret: %v", err)
	}
	wantSDKCode(t, newGoClient(t, explicit.GRPC, client.Options{Secret: "s3cr3t"}).Publish(ctx, "a", "1", client.PublishOptions{}), codes.Unauthenticated)
}

func TestGoClientPresence(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--public")
	c := newGoClient(t, s.GRPC, client.Options{Secret: "s3cr3t"})
	ctx := context.Background()

	empty, err := c.Presence(ctx, "room")
	if err != nil || empty.Total != 0 || len(empty.Records) != 0 {
		t.Fatalf("empty presence: %+v, %v", empty, err)
	}
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	id := ws.subscribe("room")
	ws.send(joinCmd(id, `{"id":"u1","info":{"name":"Ann","tags":["a",1,true,null]}}`))
	ws.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":"u1","info":{"name":"Ann","tags":["a",1,true,null]},"type":"join"}}`)

	got, err := c.Presence(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	want := &client.Presence{Total: 1, Records: []client.PresenceRecord{
		{ID: "u1", Info: map[string]any{"name": "Ann", "tags": []any{"a", 1.0, true, nil}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("presence %#v, want %#v", got, want)
	}
}

func TestGoClientDisconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "test-secret", "--noauth", "--public_streams")
	c := newGoClient(t, s.GRPC, client.Options{Secret: "test-secret", Timeout: 10 * time.Second})
	user := dialWS(t, s, dialOpts{query: "?jid=" + jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":42}`})})
	other := dialWS(t, s, dialOpts{query: "?jid=" + jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":7}`})})
	user.welcome()
	other.welcome()
	if err := c.Disconnect(context.Background(), `{"user_id":42}`, false); err != nil {
		t.Fatal(err)
	}
	user.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
	user.expectClose(1000, "Closed remotely")
	other.barrier()
}
