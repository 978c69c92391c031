package main

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/rpc"
)

// startTestBackend serves the bench back end on free loopback ports and
// returns Cablehub's own RPC clients for it, one per transport.
func startTestBackend(t *testing.T) map[string]rpc.Client {
	t.Helper()
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveRPCBackend(grpcLn, httpLn, "/_anycable/")
	t.Cleanup(stop)
	g, err := rpc.NewGRPC(rpc.GRPCOptions{Host: grpcLn.Addr().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rpc.NewHTTP(rpc.HTTPOptions{URL: "http://" + httpLn.Addr().String() + "/_anycable"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); h.Close() })
	return map[string]rpc.Client{"grpc": g, "http": h}
}

func TestRPCBackendConnect(t *testing.T) {
	for name, client := range startTestBackend(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cases := []struct {
				name string
				env  *anycablepb.Env
				want *anycablepb.ConnectionResponse
			}{
				{"cookie", &anycablepb.Env{Url: "http://127.0.0.1:8080/cable", Headers: map[string]string{"cookie": "theme=dark; user=ann"}},
					&anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Identifiers: `{"user":"ann"}`,
						Transmissions: []string{`{"type":"welcome","sid":"sid-1"}`}}},
				{"query", &anycablepb.Env{Url: "http://127.0.0.1:8080/cable?user=bob"},
					&anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Identifiers: `{"user":"bob"}`,
						Transmissions: []string{`{"type":"welcome","sid":"sid-1"}`}}},
				{"anonymous", &anycablepb.Env{Url: "http://127.0.0.1:8080/cable", Headers: map[string]string{"cookie": "theme=dark"}},
					&anycablepb.ConnectionResponse{Status: anycablepb.Status_FAILURE, ErrorMsg: "Auth failed",
						Transmissions: []string{`{"type":"disconnect","reason":"unauthorized","reconnect":false}`}}},
			}
			for _, c := range cases {
				got, err := client.Connect(ctx, "sid-1", &anycablepb.ConnectionRequest{Env: c.env})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if got.GetStatus() != c.want.Status || got.GetIdentifiers() != c.want.Identifiers ||
					got.GetErrorMsg() != c.want.ErrorMsg || !slices.Equal(got.GetTransmissions(), c.want.Transmissions) {
					t.Errorf("%s: got %v, want %v", c.name, got, c.want)
				}
			}
		})
	}
}

func TestRPCBackendCommandAndDisconnect(t *testing.T) {
	const bench = `{"channel":"BenchRPCChannel"}`
	const room = `{"channel":"BenchRPCChannel","stream":"room-1"}`
	const other = `{"channel":"ChatChannel"}`
	for name, client := range startTestBackend(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cases := []struct {
				cmd, identifier, data string
				want                  *anycablepb.CommandResponse
			}{
				{"subscribe", bench, "", &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Streams: []string{"bench_rpc"},
					Transmissions: []string{`{"identifier":"{\"channel\":\"BenchRPCChannel\"}","type":"confirm_subscription"}`}}},
				{"subscribe", room, "", &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Streams: []string{"room-1"},
					Transmissions: []string{`{"identifier":"{\"channel\":\"BenchRPCChannel\",\"stream\":\"room-1\"}","type":"confirm_subscription"}`}}},
				{"subscribe", other, "", &anycablepb.CommandResponse{Status: anycablepb.Status_FAILURE,
					Transmissions: []string{`{"identifier":"{\"channel\":\"ChatChannel\"}","type":"reject_subscription"}`}}},
				{"message", bench, `{"action":"echo","x":1}`, &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS,
					Transmissions: []string{`{"identifier":"{\"channel\":\"BenchRPCChannel\"}","message":{"action":"echo","x":1}}`}}},
				{"unsubscribe", bench, "", &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, StopStreams: true}},
			}
			for _, c := range cases {
				got, err := client.Command(ctx, "sid-1", &anycablepb.CommandMessage{
					Command: c.cmd, Identifier: c.identifier, Data: c.data, ConnectionIdentifiers: `{"user":"ann"}`,
				})
				if err != nil {
					t.Fatalf("%s %s: %v", c.cmd, c.identifier, err)
				}
				if got.GetStatus() != c.want.Status || got.GetStopStreams() != c.want.StopStreams ||
					!slices.Equal(got.GetStreams(), c.want.Streams) || !slices.Equal(got.GetTransmissions(), c.want.Transmissions) {
					t.Errorf("%s %s: got %v, want %v", c.cmd, c.identifier, got, c.want)
				}
			}
			got, err := client.Disconnect(ctx, "sid-1", &anycablepb.DisconnectRequest{Identifiers: `{"user":"ann"}`, Subscriptions: []string{bench}})
			if err != nil || got.GetStatus() != anycablepb.Status_SUCCESS {
				t.Errorf("disconnect: %v, %v", got, err)
			}
		})
	}
}
