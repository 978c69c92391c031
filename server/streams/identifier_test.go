package streams

import (
	"encoding/json"
	"reflect"
	"testing"
)

var identifierCases = []string{
	`{"channel":"$pubsub","signed_stream_name":"ImJlbmNoIg==--abc"}`,
	`{"channel":"$pubsub","stream_name":"chat\/1"}`,
	`{"channel":"ChatChannel","id":"1","room":"a b"}`,
	`{"Channel":"$pubsub","channel":"x"}`,
	`{"channel":"$pubsub","channel":"x"}`,
	`{"channel":"$pubsub","stream_name":null}`,
	`{"channel":"\u0024pubsub","stream_name":"s"}`,
	`{"channel":"$pubsub","stream_name":"s","STREAM_NAME":"t"}`,
	`{"channel":1}`,
	`{"channel":"$pubsub"`,
	`[]`,
	``,
}

// TestParseIdentifierMatchesJSON: the plain path decodes what
// encoding/json decodes, and refuses what it refuses.
func TestParseIdentifierMatchesJSON(t *testing.T) {
	for _, id := range identifierCases {
		checkIdentifier(t, id)
	}
}

func FuzzParseIdentifier(f *testing.F) {
	for _, id := range identifierCases {
		f.Add(id)
	}
	f.Fuzz(checkIdentifier)
}

func checkIdentifier(t *testing.T, id string) {
	got, err := parseIdentifier(id)
	var want identifier
	wantErr := json.Unmarshal([]byte(id), &want)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json %v", id, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %+v, encoding/json %+v", id, got, want)
	}
}
