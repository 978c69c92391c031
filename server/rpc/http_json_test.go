package rpc

import (
	"encoding/json"
	"strings"
	"testing"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/protobuf/proto"
)

// The env AnyCable 1.6.16 sent to a serverless-js app for a client with a
// cookie, an Origin and an X-Api-Token, with --headers
// cookie,origin,x-api-token (REMOTE_ADDR added).
func transcriptEnv() *anycablepb.Env {
	return &anycablepb.Env{
		Url: "http://127.0.0.1:29410/cable?user=alice",
		Headers: map[string]string{
			"x-api-token": "tok1",
			"origin":      "http://example.test",
			"cookie":      "_session=abc; theme=dark",
			"REMOTE_ADDR": "127.0.0.1",
		},
	}
}

const transcriptEnvJSON = `{"url":"http://127.0.0.1:29410/cable?user=alice","headers":{"REMOTE_ADDR":"127.0.0.1","cookie":"_session=abc; theme=dark","origin":"http://example.test","x-api-token":"tok1"}}`

// TestEncodeMatchesTranscripts reproduces, byte for byte, the requests
// AnyCable 1.6.16 sent to a serverless-js app over HTTP RPC, and the JSON
// of a Disconnect it sent over gRPC.
func TestEncodeMatchesTranscripts(t *testing.T) {
	const chat = `{"channel":"chat","room":"42"}`
	cases := []struct {
		name string
		msg  proto.Message
		want string
	}{
		{
			name: "connect (verbatim)",
			msg:  &anycablepb.ConnectionRequest{Env: transcriptEnv()},
			want: `{"env":{"url":"http://127.0.0.1:29410/cable?user=alice","headers":{"REMOTE_ADDR":"127.0.0.1","cookie":"_session=abc; theme=dark","origin":"http://example.test","x-api-token":"tok1"}}}`,
		},
		{
			name: "subscribe: no data",
			msg: &anycablepb.CommandMessage{Command: "subscribe", Identifier: chat,
				ConnectionIdentifiers: `{"user":"alice"}`, Env: transcriptEnv()},
			want: `{"command":"subscribe","identifier":"{\"channel\":\"chat\",\"room\":\"42\"}","connection_identifiers":"{\"user\":\"alice\"}","env":` + transcriptEnvJSON + `}`,
		},
		{
			name: "message",
			msg: &anycablepb.CommandMessage{Command: "message", Identifier: chat,
				ConnectionIdentifiers: `{"user":"alice"}`, Data: `{"action":"echo","x":1}`, Env: transcriptEnv()},
			want: `{"command":"message","identifier":"{\"channel\":\"chat\",\"room\":\"42\"}","connection_identifiers":"{\"user\":\"alice\"}","data":"{\"action\":\"echo\",\"x\":1}","env":` + transcriptEnvJSON + `}`,
		},
		{
			name: "disconnect: no subscriptions",
			msg:  &anycablepb.DisconnectRequest{Identifiers: `{"user":"alice"}`, Env: transcriptEnv()},
			want: `{"identifiers":"{\"user\":\"alice\"}","env":` + transcriptEnvJSON + `}`,
		},
		{
			name: "state round trip: sorted cstate and istate",
			msg: &anycablepb.CommandMessage{Command: "message", Identifier: "i", Env: &anycablepb.Env{
				Cstate: map[string]string{"visits": "1", "lang": "en", "c1": "x"},
				Istate: map[string]string{"k2": "v2", "k1": "v1"},
			}},
			want: `{"command":"message","identifier":"i","env":{"cstate":{"c1":"x","lang":"en","visits":"1"},"istate":{"k1":"v1","k2":"v2"}}}`,
		},
		{
			name: "gRPC disconnect with subscriptions and istate of JSON strings",
			msg: &anycablepb.DisconnectRequest{
				Identifiers:   `{"user":"gina"}`,
				Subscriptions: []string{`{"channel":"Chat","id":5}`},
				Env: &anycablepb.Env{
					Url:    "http://127.0.0.1:29416/cable?user=gina",
					Cstate: map[string]string{"k": "v"},
					Istate: map[string]string{`{"channel":"Chat","id":5}`: `{"joined":"yes"}`},
				},
			},
			want: `{"identifiers":"{\"user\":\"gina\"}","subscriptions":["{\"channel\":\"Chat\",\"id\":5}"],"env":{"url":"http://127.0.0.1:29416/cable?user=gina","cstate":{"k":"v"},"istate":{"{\"channel\":\"Chat\",\"id\":5}":"{\"joined\":\"yes\"}"}}}`,
		},
		{
			name: "HTML escaping in a URL with &, and empty map values kept",
			msg: &anycablepb.ConnectionRequest{Env: &anycablepb.Env{
				Url:    "http://h/cable?user=bob&mode=x<y>",
				Cstate: map[string]string{"gone": ""},
			}},
			want: `{"env":{"url":"http://h/cable?user=bob\u0026mode=x\u003cy\u003e","cstate":{"gone":""}}}`,
		},
		{
			name: "empty messages",
			msg:  &anycablepb.ConnectionRequest{},
			want: `{}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := encodeAny(t, tc.msg)
			if got != tc.want {
				t.Errorf("body:\n got %s\nwant %s", got, tc.want)
			}
			// AnyCable marshals the generated structs themselves; the
			// mirror structs must agree with them byte for byte.
			direct, err := json.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if string(direct) != got {
				t.Errorf("generated struct encodes differently:\n got %s\nmirror %s", direct, got)
			}
		})
	}
}

func encodeAny(t *testing.T, m proto.Message) string {
	t.Helper()
	var (
		b   []byte
		err error
	)
	switch m := m.(type) {
	case *anycablepb.ConnectionRequest:
		b, err = encodeConnect(m)
	case *anycablepb.CommandMessage:
		b, err = encodeCommand(m)
	case *anycablepb.DisconnectRequest:
		b, err = encodeDisconnect(m)
	default:
		t.Fatalf("unexpected %T", m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecodeServerlessReplies decodes replies @anycable/serverless-js
// 0.1.0 sent (explicit zero values, empty env and arrays).
func TestDecodeServerlessReplies(t *testing.T) {
	conn, err := decodeConnect([]byte(`{"status":1,"identifiers":"{\"user\":\"alice\"}","transmissions":["{\"type\":\"welcome\",\"sid\":\"YhOWV3bmwmmO3QT2Z95nj\"}"],"error_msg":"","env":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &anycablepb.ConnectionResponse{
		Status:        anycablepb.Status_SUCCESS,
		Identifiers:   `{"user":"alice"}`,
		Transmissions: []string{`{"type":"welcome","sid":"YhOWV3bmwmmO3QT2Z95nj"}`},
		Env:           &anycablepb.EnvResponse{},
	}
	if !proto.Equal(conn, want) {
		t.Errorf("connect reply = %v, want %v", conn, want)
	}

	cmd, err := decodeCommand([]byte(`{"status":1,"disconnect":false,"stop_streams":false,"transmissions":["{\"identifier\":\"{\\\"channel\\\":\\\"chat\\\",\\\"room\\\":\\\"42\\\"}\",\"type\":\"confirm_subscription\"}"],"streams":["room:42"],"stopped_streams":[],"env":{},"error_msg":""}`))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.GetStatus() != anycablepb.Status_SUCCESS || len(cmd.GetStreams()) != 1 || cmd.GetStreams()[0] != "room:42" ||
		cmd.GetTransmissions()[0] != `{"identifier":"{\"channel\":\"chat\",\"room\":\"42\"}","type":"confirm_subscription"}` {
		t.Errorf("command reply = %v", cmd)
	}

	rej, err := decodeConnect([]byte(`{"status":2,"identifiers":"","transmissions":["{\"type\":\"disconnect\",\"reason\":\"unauthorized\"}"],"error_msg":"Auth failed","env":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if rej.GetStatus() != anycablepb.Status_FAILURE || rej.GetErrorMsg() != "Auth failed" {
		t.Errorf("rejection = %v", rej)
	}

	disc, err := decodeDisconnect([]byte(`{"status":1,"error_msg":""}`))
	if err != nil || disc.GetStatus() != anycablepb.Status_SUCCESS {
		t.Errorf("disconnect reply = %v, %v", disc, err)
	}
}

// TestDecodeGoMatchingRules pins encoding/json's rules, which AnyCable's
// decoding inherits.
func TestDecodeGoMatchingRules(t *testing.T) {
	t.Run("case-insensitive keys, underscores significant", func(t *testing.T) {
		r, err := decodeCommand([]byte(`{"STATUS":1,"Stop_Streams":true,"stopStreams":false,"errorMsg":"ignored","ERROR_MSG":"kept"}`))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStatus() != anycablepb.Status_SUCCESS || !r.GetStopStreams() || r.GetErrorMsg() != "kept" {
			t.Errorf("reply = %v", r)
		}
	})
	t.Run("missing status is ERROR, unknown keys ignored", func(t *testing.T) {
		r, err := decodeConnect([]byte(`{"identifiers":"x","whatever":{"deep":[1,2]}}`))
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStatus() != anycablepb.Status_ERROR || r.GetIdentifiers() != "x" {
			t.Errorf("reply = %v", r)
		}
	})
	t.Run("empty-string state values kept", func(t *testing.T) {
		r, err := decodeCommand([]byte(`{"status":1,"env":{"istate":{"k1":"","k3":"v3"},"cstate":{"lang":""}}}`))
		if err != nil {
			t.Fatal(err)
		}
		is, cs := r.GetEnv().GetIstate(), r.GetEnv().GetCstate()
		if v, ok := is["k1"]; !ok || v != "" || is["k3"] != "v3" {
			t.Errorf("istate = %v", is)
		}
		if v, ok := cs["lang"]; !ok || v != "" {
			t.Errorf("cstate = %v", cs)
		}
	})
	t.Run("presence", func(t *testing.T) {
		r, err := decodeCommand([]byte(`{"status":1,"presence":{"type":"join","id":"u1","info":"{\"name\":\"Ann\"}","ttl":5}}`))
		if err != nil {
			t.Fatal(err)
		}
		p := r.GetPresence()
		if p.GetType() != "join" || p.GetId() != "u1" || p.GetInfo() != `{"name":"Ann"}` || p.GetTtl() != 5 {
			t.Errorf("presence = %v", p)
		}
	})
	for _, body := range []string{
		`{"status":"SUCCESS"}`, // enum names are not accepted, as in AnyCable
		`{"status":1.5}`,
		`not json`,
		`{"status":1}trailing`,
		``,
		`{"transmissions":"x"}`,
	} {
		t.Run("rejects "+strings.ReplaceAll(body, "/", "|"), func(t *testing.T) {
			if r, err := decodeConnect([]byte(body)); err == nil {
				t.Errorf("decodeConnect(%q) = %v, want an error", body, r)
			}
		})
	}
}
