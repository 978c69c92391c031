package protocol

import (
	"encoding/json"
	"testing"
)

// streamMessageCases cover every optional key of a stream message.
var streamMessageCases = []Publication{
	{Stream: "chat", Data: `{"text":"hi"}`},
	{Stream: "chat", Data: `<b>&"\</b>` + "\n\u2028\xff"},
	{Stream: "chat", Data: "1", ExcludeSocket: "sid"},
	{Stream: "chat", Data: "1", BroadcastType: "custom"},
	{Stream: "chat", Data: "1", Transient: true},
	{Stream: "chat", Data: "1", ExcludeSocket: "sid", BroadcastType: "presence", Transient: true},
	{Stream: "chat", Data: "1", Offset: 7, Epoch: "qB3y"},
	{Stream: "a stream/with \"quotes\"", Data: "1", BroadcastType: "t", Offset: 1 << 40, Epoch: "x_-9"},
}

// The stream message is byte for byte what encoding/json makes of
// AnyCable's StreamMessage, so nodes of older versions read it alike.
func TestAppendStreamMessageMatchesEncodingJSON(t *testing.T) {
	type meta struct {
		ExcludeSocket string `json:"exclude_socket,omitempty"`
		BroadcastType string `json:"broadcast_type,omitempty"`
		Transient     bool   `json:"transient,omitempty"`
	}
	type message struct {
		Stream string `json:"stream"`
		Data   string `json:"data"`
		Meta   meta   `json:"meta,omitzero"`
		Offset uint64 `json:"offset,omitempty"`
		Epoch  string `json:"epoch,omitempty"`
	}
	for _, p := range streamMessageCases {
		want, _ := json.Marshal(message{Stream: p.Stream, Data: p.Data, Offset: p.Offset, Epoch: p.Epoch,
			Meta: meta{ExcludeSocket: p.ExcludeSocket, BroadcastType: p.BroadcastType, Transient: p.Transient}})
		if got := AppendStreamMessage(nil, &p); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// Head and tail make the whole message; decoding gives the publication
// back, without what never travels.
func TestStreamMessageRoundTrip(t *testing.T) {
	for _, p := range streamMessageCases {
		whole := AppendStreamMessage(nil, &p)
		parts := AppendStreamMessageTail(AppendStreamMessageHead(nil, &p), p.Offset, p.Epoch)
		if string(parts) != string(whole) {
			t.Errorf("head+tail %s, whole %s", parts, whole)
		}
		if enc := EncodeStreamMessage(&p); string(enc) != string(whole) {
			t.Errorf("EncodeStreamMessage %s", enc)
		}
		sent := p
		sent.IdempotencyKey, sent.Recovered = "key", true
		got, err := DecodeStreamMessage(AppendStreamMessage(nil, &sent))
		if err != nil {
			t.Fatal(err)
		}
		want := p
		if want.Data == streamMessageCases[1].Data {
			want.Data = `<b>&"\</b>` + "\n\u2028\ufffd" // invalid UTF-8 travels as U+FFFD
		}
		if *got != want {
			t.Errorf("decoded %+v, want %+v", *got, want)
		}
	}
	stamped := &streamMessageCases[len(streamMessageCases)-1]
	if n := testing.AllocsPerRun(100, func() { EncodeStreamMessage(stamped) }); n != 1 {
		t.Errorf("EncodeStreamMessage allocates %v times, want once", n)
	}
	if _, err := DecodeStreamMessage([]byte(`{"stream":`)); err == nil {
		t.Error("a truncated message decoded")
	}
}

func BenchmarkAppendStreamMessage(b *testing.B) {
	p := &Publication{Stream: "chat/1", Data: `{"text":"hello, world","user":{"id":42,"name":"Alice"}}`, Epoch: "qB3y", Offset: 12345}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendStreamMessage(buf[:0], p)
	}
}

// A JetStream message holding several publications is a JSON array of
// stream messages; one alone is a plain stream message. Both decode to the
// publications in order.
func TestDecodeStreamMessages(t *testing.T) {
	a := Publication{Stream: "s", Data: `{"n":1}`, Epoch: "e", Offset: 1, ExcludeSocket: "x"}
	b := Publication{Stream: "s", Data: "2", Epoch: "e", Offset: 2, BroadcastType: "t"}
	batch := append(append(append([]byte("[ "), AppendStreamMessage(nil, &a)...), ','), AppendStreamMessage(nil, &b)...)
	batch = append(batch, ']')
	for _, c := range []struct {
		data []byte
		want []Publication
	}{
		{EncodeStreamMessage(&a), []Publication{a}},
		{batch, []Publication{a, b}},
		{[]byte(" \n" + string(batch)), []Publication{a, b}},
	} {
		got, err := DecodeStreamMessages(c.data)
		if err != nil || len(got) != len(c.want) {
			t.Fatalf("%s: %+v %v", c.data, got, err)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: publication %d is %+v, want %+v", c.data, i, got[i], c.want[i])
			}
		}
	}
	for _, bad := range []string{`[{"stream":"s"},1]`, `[`, `nope`} {
		if _, err := DecodeStreamMessages([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}
