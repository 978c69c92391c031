package protocol

import "testing"

func TestAppendBroadcast(t *testing.T) {
	const id = `{"channel":"$pubsub","stream_name":"chat"}`
	const idJSON = `"{\"channel\":\"$pubsub\",\"stream_name\":\"chat\"}"`
	cases := []struct {
		name string
		pub  Publication
		want string
	}{
		{"object", Publication{Stream: "chat", Data: `{"text":"hi"}`}, `{"identifier":` + idJSON + `,"message":{"text":"hi"}}`},
		{"object with spaces is compacted", Publication{Stream: "chat", Data: " {\"a\": [1, 2]}\n"}, `{"identifier":` + idJSON + `,"message":{"a":[1,2]}}`},
		{"plain string", Publication{Stream: "chat", Data: "plain string"}, `{"identifier":` + idJSON + `,"message":"plain string"}`},
		{"number", Publication{Stream: "chat", Data: "42"}, `{"identifier":` + idJSON + `,"message":42}`},
		{"null stays a string", Publication{Stream: "chat", Data: "null"}, `{"identifier":` + idJSON + `,"message":"null"}`},
		{"empty", Publication{Stream: "chat", Data: ""}, `{"identifier":` + idJSON + `,"message":""}`},
		{"broken JSON", Publication{Stream: "chat", Data: `{"a":`}, `{"identifier":` + idJSON + `,"message":"{\"a\":"}`},
		{"keys sorted, numbers and HTML re-encoded like AnyCable", Publication{Stream: "chat", Data: `{"b":1,"html":"<b>&</b>","a":[1, 2.50, 1e3],"big":12345678901234567890}`}, `{"identifier":` + idJSON + `,"message":{"a":[1,2.5,1000],"b":1,"big":12345678901234567000,"html":"\u003cb\u003e\u0026\u003c/b\u003e"}}`},
		{"JSON string", Publication{Stream: "chat", Data: `"a json string"`}, `{"identifier":` + idJSON + `,"message":"a json string"}`},
		{"typed", Publication{Stream: "chat", Data: "1", BroadcastType: "custom"}, `{"type":"custom","identifier":` + idJSON + `,"message":1}`},
		{"stamped", Publication{Stream: "chat", Data: "1", Epoch: "qB3y", Offset: 7}, `{"identifier":` + idJSON + `,"message":1,"stream_id":"chat","epoch":"qB3y","offset":7}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendBroadcast(nil, id, &c.pub, EncodeMessage(c.pub.Data))); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func BenchmarkAppendBroadcast(b *testing.B) {
	p := &Publication{Stream: "chat/1", Data: `{"text":"hello, world","user":{"id":42,"name":"Alice"}}`, Epoch: "qB3y", Offset: 12345}
	id := `{"channel":"$pubsub","stream_name":"chat/1"}`
	buf := make([]byte, 0, 256)
	msg := EncodeMessage(p.Data)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBroadcast(buf[:0], id, p, msg)
	}
}
