package main

// The rpc-backend subcommand: a minimal AnyCable RPC application for
// measuring a server's RPC hop (Connect on every WebSocket, Command on every
// subscribe) without an application framework's cost in the numbers. It
// answers over gRPC (AnyCable's anycable.RPC service) and over HTTP (POST
// <path>/connect|command|disconnect, AnyCable's HTTP RPC) with the same
// logic.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// The channel the back end accepts subscriptions to, and the stream a
// subscription without a "stream" key in its identifier gets.
const (
	benchRPCChannel = "BenchRPCChannel"
	benchRPCStream  = "bench_rpc"
)

// rpcConnect authenticates like a Rails connection identified by user: a
// `user` query parameter or cookie names the user; without one the
// connection is refused as Action Cable refuses it (a disconnect frame that
// tells the client not to reconnect). The welcome carries sid, which only
// the server knows (call metadata), as an AnyCable application's does.
func rpcConnect(sid string, req *anycablepb.ConnectionRequest) *anycablepb.ConnectionResponse {
	user := rpcUser(req.GetEnv())
	if user == "" {
		return &anycablepb.ConnectionResponse{
			Status:        anycablepb.Status_FAILURE,
			Transmissions: []string{`{"type":"disconnect","reason":"unauthorized","reconnect":false}`},
			ErrorMsg:      "Auth failed",
		}
	}
	ids, _ := json.Marshal(struct {
		User string `json:"user"`
	}{user})
	welcome, _ := json.Marshal(struct {
		Type string `json:"type"`
		SID  string `json:"sid"`
	}{"welcome", sid})
	return &anycablepb.ConnectionResponse{
		Status:        anycablepb.Status_SUCCESS,
		Identifiers:   string(ids),
		Transmissions: []string{string(welcome)},
	}
}

// rpcUser is the user named by the request URL's query or, failing that,
// by the forwarded Cookie header; "" when neither names one.
func rpcUser(env *anycablepb.Env) string {
	if u, err := url.Parse(env.GetUrl()); err == nil {
		if name := u.Query().Get("user"); name != "" {
			return name
		}
	}
	for _, c := range strings.Split(env.GetHeaders()["cookie"], ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && k == "user" && v != "" {
			return v
		}
	}
	return ""
}

// rpcCommand is the channel: subscribing to BenchRPCChannel streams from
// the identifier's "stream" (default bench_rpc) and confirms; any other
// channel is rejected; a message is echoed back to the client; unsubscribe
// stops the streams.
func rpcCommand(req *anycablepb.CommandMessage) *anycablepb.CommandResponse {
	ident := req.GetIdentifier()
	switch req.GetCommand() {
	case "subscribe":
		var id struct {
			Channel string `json:"channel"`
			Stream  string `json:"stream"`
		}
		if json.Unmarshal([]byte(ident), &id) != nil || id.Channel != benchRPCChannel {
			return &anycablepb.CommandResponse{
				Status:        anycablepb.Status_FAILURE,
				Transmissions: []string{channelFrame(ident, "reject_subscription")},
			}
		}
		return &anycablepb.CommandResponse{
			Status:        anycablepb.Status_SUCCESS,
			Streams:       []string{cmp.Or(id.Stream, benchRPCStream)},
			Transmissions: []string{channelFrame(ident, "confirm_subscription")},
		}
	case "unsubscribe":
		return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, StopStreams: true}
	case "message":
		var msg any = req.GetData()
		if json.Valid([]byte(req.GetData())) {
			msg = json.RawMessage(req.GetData())
		}
		echo, _ := json.Marshal(struct {
			Identifier string `json:"identifier"`
			Message    any    `json:"message"`
		}{ident, msg})
		return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Transmissions: []string{string(echo)}}
	}
	return &anycablepb.CommandResponse{Status: anycablepb.Status_FAILURE, ErrorMsg: "unknown command " + req.GetCommand()}
}

// channelFrame is Action Cable's {"identifier":…,"type":…} frame.
func channelFrame(identifier, typ string) string {
	b, _ := json.Marshal(struct {
		Identifier string `json:"identifier"`
		Type       string `json:"type"`
	}{identifier, typ})
	return string(b)
}

// grpcBackend serves the logic as anycable.RPC; the sid is the call's
// `sid` metadata, which AnyCable sends with every call.
type grpcBackend struct {
	anycablepb.UnimplementedRPCServer
}

func (grpcBackend) Connect(ctx context.Context, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
	var sid string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("sid"); len(v) > 0 {
			sid = v[0]
		}
	}
	return rpcConnect(sid, req), nil
}

func (grpcBackend) Command(_ context.Context, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
	return rpcCommand(req), nil
}

func (grpcBackend) Disconnect(context.Context, *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
	return &anycablepb.DisconnectResponse{Status: anycablepb.Status_SUCCESS}, nil
}

// httpBackend serves the logic as HTTP RPC under path: the anycablepb
// structs through encoding/json are AnyCable's bodies (snake_case names,
// zero values omitted, status a number); the sid is the
// X-Anycable-Meta-Sid header.
type httpBackend struct {
	path string // the base path, without a trailing slash
}

func (h httpBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, h.path+"/")
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var reply any
	switch method {
	case "connect":
		var req anycablepb.ConnectionRequest
		if err = json.Unmarshal(body, &req); err == nil {
			reply = rpcConnect(r.Header.Get("X-Anycable-Meta-Sid"), &req)
		}
	case "command":
		var req anycablepb.CommandMessage
		if err = json.Unmarshal(body, &req); err == nil {
			reply = rpcCommand(&req)
		}
	case "disconnect":
		var req anycablepb.DisconnectRequest
		if err = json.Unmarshal(body, &req); err == nil {
			reply = &anycablepb.DisconnectResponse{Status: anycablepb.Status_SUCCESS}
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	out, _ := json.Marshal(reply)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// serveRPCBackend serves gRPC on grpcLn and HTTP RPC under httpPath on
// httpLn (either may be nil) until stop is called. The gRPC server lets
// clients ping every 5 s without calls in flight: AnyCable's (and
// Cablehub's) client pings every 10 s, which grpc-go's default policy
// answers with a too_many_pings GOAWAY in the middle of a measurement.
func serveRPCBackend(grpcLn, httpLn net.Listener, httpPath string) (stop func()) {
	var stops []func()
	if grpcLn != nil {
		gs := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: 5 * time.Second, PermitWithoutStream: true,
		}))
		anycablepb.RegisterRPCServer(gs, grpcBackend{})
		go gs.Serve(grpcLn)
		stops = append(stops, gs.Stop)
	}
	if httpLn != nil {
		hs := &http.Server{
			Handler:           httpBackend{path: strings.TrimSuffix(httpPath, "/")},
			ReadHeaderTimeout: 10 * time.Second,
		}
		go hs.Serve(httpLn)
		stops = append(stops, func() { hs.Close() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// runRPCBackend is `cablebench rpc-backend`: it listens on loopback only,
// prints one "listening" line once both listeners are open (scripts wait
// for it), and stops on SIGINT/SIGTERM or after --for, so a forgotten one
// does not stay behind.
func runRPCBackend(args []string) error {
	fs := flag.NewFlagSet("rpc-backend", flag.ContinueOnError)
	grpcAddr := fs.String("grpc", "127.0.0.1:50051", "gRPC listen address (\"\": no gRPC)")
	httpAddr := fs.String("http", "127.0.0.1:8081", "HTTP RPC listen address (\"\": no HTTP)")
	httpPath := fs.String("http_path", "/_anycable", "HTTP RPC base path: POST <path>/connect|command|disconnect")
	lifetime := fs.Duration("for", 30*time.Minute, "stop after this long (at most 24h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *lifetime <= 0 || *lifetime > 24*time.Hour {
		return errors.New("--for must be in (0, 24h]")
	}
	if *grpcAddr == "" && *httpAddr == "" {
		return errors.New("nothing to serve: both --grpc and --http are empty")
	}
	var lns [2]net.Listener
	for i, addr := range []string{*grpcAddr, *httpAddr} {
		if addr == "" {
			continue
		}
		if err := checkLoopback("tcp://" + addr); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		lns[i] = ln
	}
	stop := serveRPCBackend(lns[0], lns[1], *httpPath)
	defer stop()
	line := "rpc-backend listening:"
	if lns[0] != nil {
		line += " grpc " + lns[0].Addr().String()
	}
	if lns[1] != nil {
		line += " http http://" + lns[1].Addr().String() + *httpPath
	}
	fmt.Println(line)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(*lifetime):
	}
	return nil
}
