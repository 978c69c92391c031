package sse

import (
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

const chatID = `{"channel":"$pubsub","stream_name":"chat_42"}`

// The events of a GET client, byte for byte as AnyCable writes them: named
// events for typed messages, the payload alone for publications (a JSON
// string as the string, its line breaks as data lines) with the
// offset/epoch/stream id.
func TestCodecGET(t *testing.T) {
	c := Codec{}
	cases := []struct {
		data, want string
		offset     uint64
	}{
		{`{"text":"hello"}`, "data: {\"text\":\"hello\"}\nid: 1/tXps/chat_42\n\n", 1},
		{`"plain string"`, "data: plain string\nid: 2/tXps/chat_42\n\n", 2},
		{`"line1\nline2"`, "data: line1\ndata: line2\nid: 3/tXps/chat_42\n\n", 3},
		{`"a\r\nb\rc"`, "data: a\ndata: b\ndata: c\nid: 4/tXps/chat_42\n\n", 4},
		{`not json`, "data: not json\nid: 5/tXps/chat_42\n\n", 5},
	}
	for _, tc := range cases {
		p := &protocol.Publication{Stream: "chat_42", Data: tc.data, Epoch: "tXps", Offset: tc.offset}
		if got := string(c.AppendBroadcast(nil, chatID, p, protocol.EncodeMessage(p.Data))); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.data, got, tc.want)
		}
	}
	unstamped := &protocol.Publication{Stream: "chat_42", Data: `"x"`}
	if got := string(c.AppendBroadcast(nil, chatID, unstamped, protocol.EncodeMessage(unstamped.Data))); got != "data: x\n\n" {
		t.Errorf("unstamped: %q", got)
	}
	for frame, want := range map[string]string{
		string(protocol.Welcome("sid1", nil)):                            "event: welcome\ndata: {\"type\":\"welcome\",\"sid\":\"sid1\"}\n\n",
		string(protocol.Confirm(chatID)):                                 "event: confirm_subscription\ndata: {\"type\":\"confirm_subscription\",\"identifier\":\"{\\\"channel\\\":\\\"$pubsub\\\",\\\"stream_name\\\":\\\"chat_42\\\"}\"}\n\n",
		string(protocol.Ping(1796523652)):                                "event: ping\ndata: {\"type\":\"ping\",\"message\":1796523652}\n\n",
		string(protocol.Disconnect("remote", false)):                     "event: disconnect\ndata: {\"type\":\"disconnect\",\"reason\":\"remote\",\"reconnect\":false}\nretry: 2147483647\n\n",
		string(protocol.Disconnect("server_restart", true)):              "event: disconnect\ndata: {\"type\":\"disconnect\",\"reason\":\"server_restart\",\"reconnect\":true}\n\n",
		`{"identifier":"x","message":{"a":1}}`:                           "data: {\"a\":1}\n\n",
		"{\"identifier\":\"x\",\"message\":\"two\\nlines\"}":             "data: two\ndata: lines\n\n",
		"{\"type\":\"confirm_subscription\",\"identifier\":\"app\"}":     "event: confirm_subscription\ndata: {\"type\":\"confirm_subscription\",\"identifier\":\"app\"}\n\n",
		"{ \"type\": \"reject_subscription\", \"identifier\": \"app\" }": "event: reject_subscription\ndata: { \"type\": \"reject_subscription\", \"identifier\": \"app\" }\n\n",
	} {
		if got := string(c.Encode([]byte(frame))); got != want {
			t.Errorf("%s:\n got %q\nwant %q", frame, got, want)
		}
	}
}

// A POST client gets the whole Action Cable message of a publication.
func TestCodecPOST(t *testing.T) {
	c := Codec{Envelope: true}
	p := &protocol.Publication{Stream: "chat_42", Data: `{"text":"via post"}`, Epoch: "tXps", Offset: 5}
	want := "data: {\"identifier\":\"{\\\"channel\\\":\\\"$pubsub\\\",\\\"stream_name\\\":\\\"chat_42\\\"}\",\"message\":{\"text\":\"via post\"},\"stream_id\":\"chat_42\",\"epoch\":\"tXps\",\"offset\":5}\nid: 5/tXps/chat_42\n\n"
	if got := string(c.AppendBroadcast(nil, chatID, p, protocol.EncodeMessage(p.Data))); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	frame := `{"identifier":"x","message":{"a":1}}`
	if got := string(c.Encode([]byte(frame))); got != "data: "+frame+"\n\n" {
		t.Errorf("transmission: %q", got)
	}
}
