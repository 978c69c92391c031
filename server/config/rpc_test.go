package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/rpc"
)

// TestRPCDefaults asserts AnyCable's RPC defaults: gRPC at
// localhost:50051, 28 calls at once, a 3 s budget, no per-attempt limit,
// TLS verified when on, the cookie header, every cookie, auto Disconnect
// at 100/s with 4096 waiting.
func TestRPCDefaults(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := RPC{Host: "localhost:50051", Impl: RPCImplGRPC, Concurrency: 28, CommandTimeout: 3 * time.Second, TLSVerify: true}
	if !reflect.DeepEqual(c.RPC, want) {
		t.Errorf("RPC: %+v, want %+v", c.RPC, want)
	}
	if !reflect.DeepEqual(c.Node.AppOptions, node.DefaultAppOptions()) {
		t.Errorf("AppOptions: %+v, want %+v", c.Node.AppOptions, node.DefaultAppOptions())
	}
}

// TestRPCImplementation asserts how the implementation is chosen: the
// host's scheme, --rpc_impl over it, and --norpc or --rpc_impl none
// turning RPC off.
func TestRPCImplementation(t *testing.T) {
	cases := []struct {
		env      map[string]string
		args     []string
		impl     string
		disabled bool
	}{
		{nil, []string{"--rpc_host", "dns:///rpc:50051"}, RPCImplGRPC, false},
		{nil, []string{"--rpc_host", "http://127.0.0.1:3000/_anycable"}, RPCImplHTTP, false},
		{map[string]string{"ANYCABLE_RPC_HOST": "https://app.example.com/_anycable"}, nil, RPCImplHTTP, false},
		{nil, []string{"--rpc_impl", "http"}, RPCImplHTTP, false},
		{nil, []string{"--rpc_impl", "grpc", "--rpc_host", "http://x:1"}, RPCImplGRPC, false},
		{nil, []string{"--norpc"}, RPCImplNone, true},
		{map[string]string{"ANYCABLE_NORPC": "true"}, []string{"--rpc_host", "http://x:1"}, RPCImplNone, true},
		{nil, []string{"--rpc_impl", "none"}, RPCImplNone, true},
		{map[string]string{"ANYCABLE_RPC_IMPL": "none"}, nil, RPCImplNone, true},
	}
	for _, tc := range cases {
		c, err := parse(t, tc.env, tc.args...)
		if err != nil {
			t.Errorf("%v %v: %v", tc.env, tc.args, err)
			continue
		}
		if c.RPC.Impl != tc.impl || c.RPC.Disabled != tc.disabled {
			t.Errorf("%v %v: impl %q disabled %t, want %q %t", tc.env, tc.args, c.RPC.Impl, c.RPC.Disabled, tc.impl, tc.disabled)
		}
	}
}

// TestRPCFlagsAndEnvironment asserts every RPC flag reaches its field,
// from the command line or its ANYCABLE_* variable, with AnyCable's units
// (milliseconds) and --headers lower-cased.
func TestRPCFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{
		"ANYCABLE_RPC_CONCURRENCY":         "5",
		"ANYCABLE_RPC_REQUEST_TIMEOUT":     "1500",
		"ANYCABLE_HEADERS":                 "Cookie, X-Api-Key,Authorization",
		"ANYCABLE_PROXY_COOKIES":           "_session,theme",
		"ANYCABLE_DISCONNECT_MODE":         "always",
		"ANYCABLE_DISCONNECT_BACKLOG_SIZE": "10",
		"ANYCABLE_RPC_TLS_VERIFY":          "false",
	}
	c, err := parse(t, env, "--rpc_command_timeout=2s", "--http_rpc_timeout", "250", "--http_rpc_secret", "k",
		"--rpc_enable_tls", "--rpc_tls_root_ca", "/ca.pem", "--rpc_max_call_recv_size", "100", "--rpc_max_call_send_size=200",
		"--disconnect_rate", "7")
	if err != nil {
		t.Fatal(err)
	}
	want := RPC{Host: "localhost:50051", Impl: RPCImplGRPC, Concurrency: 5, RequestTimeout: 1500 * time.Millisecond,
		CommandTimeout: 2 * time.Second, HTTPSecret: "k", HTTPTimeout: 250 * time.Millisecond, EnableTLS: true,
		TLSRootCA: "/ca.pem", MaxRecvSize: 100, MaxSendSize: 200}
	if !reflect.DeepEqual(c.RPC, want) {
		t.Errorf("RPC:\n%+v, want\n%+v", c.RPC, want)
	}
	wantApp := node.AppOptions{Headers: []string{"cookie", "x-api-key", "authorization"}, Cookies: []string{"_session", "theme"},
		DisconnectMode: node.DisconnectAlways, DisconnectRate: 7, DisconnectBacklog: 10}
	if !reflect.DeepEqual(c.Node.AppOptions, wantApp) {
		t.Errorf("AppOptions:\n%+v, want\n%+v", c.Node.AppOptions, wantApp)
	}
	if c, _ := parse(t, env, "--disconnect_mode", "never", "--rpc_concurrency", "9"); c.Node.AppOptions.DisconnectMode != node.DisconnectNever || c.RPC.Concurrency != 9 {
		t.Errorf("flags must win over env: %+v %d", c.Node.AppOptions, c.RPC.Concurrency)
	}
}

// TestRPCBadValuesNameTheFlag asserts each bad RPC value is one line
// naming its flag; an unknown --disconnect_mode in particular is an error,
// not AnyCable's silent "never".
func TestRPCBadValuesNameTheFlag(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--disconnect_mode", "bogus"}, "--disconnect_mode"},
		{map[string]string{"ANYCABLE_DISCONNECT_MODE": "sometimes"}, nil, "ANYCABLE_DISCONNECT_MODE"},
		{nil, []string{"--rpc_impl", "thrift"}, "--rpc_impl"},
		{nil, []string{"--rpc_max_call_recv_size=-1"}, "--rpc_max_call_recv_size"},
		{nil, []string{"--rpc_max_call_send_size=-1"}, "--rpc_max_call_send_size"},
		{nil, []string{"--rpc_concurrency=-1"}, "--rpc_concurrency"},
		{nil, []string{"--rpc_request_timeout=soon"}, "--rpc_request_timeout"},
		{nil, []string{"--rpc_command_timeout=0"}, "--rpc_command_timeout"},
		{nil, []string{"--http_rpc_timeout=-5"}, "--http_rpc_timeout"},
		{nil, []string{"--disconnect_rate=0"}, "--disconnect_rate"},
		{nil, []string{"--disconnect_backlog_size=x"}, "--disconnect_backlog_size"},
		{map[string]string{"ANYCABLE_NORPC": "perhaps"}, nil, "--norpc"},
	}
	for _, tc := range cases {
		_, err := parse(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v %v: %v, want one line naming %s", tc.env, tc.args, err, tc.want)
		}
	}
}

// TestHTTPRPCSecret asserts the HTTP RPC key: --http_rpc_secret verbatim,
// else derived from --secret (for s3cr3t, the key AnyCable derives), and
// "none" or no secret at all sends no header.
func TestHTTPRPCSecret(t *testing.T) {
	const derived = "4b7da2749fe2a4534cec0d2acbd16277a800cf2acd31158ac4edae4a62a8f18d"
	if got := rpc.DeriveSecret("s3cr3t"); got != derived {
		t.Fatalf("rpc.DeriveSecret: %s", got)
	}
	cases := []struct {
		args    []string
		key     string
		derived bool
	}{
		{[]string{"--secret", "s3cr3t"}, derived, true},
		{[]string{"--secret", "s3cr3t", "--http_rpc_secret", "mine"}, "mine", false},
		{[]string{"--secret", "s3cr3t", "--http_rpc_secret", "none"}, "", false},
		{[]string{"--secret", "none"}, "", false},
		{nil, "", false},
	}
	for _, tc := range cases {
		c, err := parse(t, nil, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if key, d := c.HTTPRPCSecret(); key != tc.key || d != tc.derived {
			t.Errorf("%v: %q %t, want %q %t", tc.args, key, d, tc.key, tc.derived)
		}
	}
}

// TestMillisecondFlags asserts RPC timeouts read AnyCable's milliseconds
// and Go durations alike, and --help shows them in milliseconds.
func TestMillisecondFlags(t *testing.T) {
	for in, want := range map[string]time.Duration{"1500": 1500 * time.Millisecond, "2s": 2 * time.Second, "0": 0} {
		c, err := parse(t, nil, "--rpc_request_timeout", in)
		if err != nil || c.RPC.RequestTimeout != want {
			t.Errorf("%s: %v %v", in, c.RPC.RequestTimeout, err)
		}
	}
	d := 1500 * time.Millisecond
	if s := (msDurationValue{&d}).String(); s != "1500" {
		t.Errorf("String: %s", s)
	}
}
