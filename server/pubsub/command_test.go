package pubsub

import (
	"encoding/json"
	"testing"
)

// Remote commands travel as AnyCable's remote command message, so mixed
// AnyCable/Cablehub clusters carry out each other's disconnects; the flat
// form of earlier Cablehub versions is still read.
func TestCommandWireFormat(t *testing.T) {
	b, err := json.Marshal(&Command{Command: "disconnect", Identifier: `{"user":"ann"}`, Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"command":"disconnect","payload":{"identifier":"{\"user\":\"ann\"}","reconnect":true}}`; string(b) != want {
		t.Fatalf("encoded %s\nwant    %s", b, want)
	}
	for _, in := range []string{
		`{"command":"disconnect","payload":{"identifier":"{\"user\":\"ann\"}","reconnect":true}}`,
		`{"command":"disconnect","identifier":"{\"user\":\"ann\"}","reconnect":true}`,
	} {
		var c Command
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatal(err)
		}
		if c != (Command{Command: "disconnect", Identifier: `{"user":"ann"}`, Reconnect: true}) {
			t.Fatalf("%s decoded as %+v", in, c)
		}
	}
}
