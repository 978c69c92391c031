package publication

import (
	"strings"
	"testing"
)

// The idempotency key is read at the top level and in meta, the way
// AnyCable SDKs put delivery options; both places reach the same field.
func TestDecodeIdempotencyKey(t *testing.T) {
	long := strings.Repeat("k", 129)
	max := strings.Repeat("k", 128)
	ok := []struct{ name, body, want string }{
		{"none", `{"stream":"a","data":"x"}`, ""},
		{"top level", `{"stream":"a","data":"x","idempotency_key":"k1"}`, "k1"},
		{"in meta", `{"stream":"a","data":"x","meta":{"idempotency_key":"k2","transient":true}}`, "k2"},
		{"both, equal", `{"stream":"a","data":"x","idempotency_key":"k3","meta":{"idempotency_key":"k3"}}`, "k3"},
		{"top level, meta empty", `{"stream":"a","data":"x","idempotency_key":"k4","meta":{"idempotency_key":""}}`, "k4"},
		{"null is none", `{"stream":"a","data":"x","idempotency_key":null,"meta":{"idempotency_key":null}}`, ""},
		{"128 bytes", `{"stream":"a","data":"x","idempotency_key":"` + max + `"}`, max},
		{"multi-byte", `{"stream":"a","data":"x","idempotency_key":"ключ"}`, "ключ"},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			pubs, err := Decode([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := pubs[0].GetIdempotencyKey(); got != c.want {
				t.Errorf("key %q, want %q", got, c.want)
			}
		})
	}
	bad := []struct{ name, body, want string }{
		{"too long", `{"stream":"a","data":"x","idempotency_key":"` + long + `"}`, "idempotency_key is longer than 128 bytes"},
		{"too long in meta", `{"stream":"a","data":"x","meta":{"idempotency_key":"` + long + `"}}`, "meta.idempotency_key is longer than 128 bytes"},
		{"too long in a batch", `[{"stream":"a","data":"x"},{"stream":"a","data":"y","idempotency_key":"` + long + `"}]`, "publications[1]: idempotency_key is longer than 128 bytes"},
		{"not a string", `{"stream":"a","data":"x","idempotency_key":7}`, "idempotency_key must be a string"},
		{"not a string in meta", `{"stream":"a","data":"x","meta":{"idempotency_key":true}}`, "meta.idempotency_key must be a string"},
		{"both, different", `{"stream":"a","data":"x","idempotency_key":"a","meta":{"idempotency_key":"b"}}`, "idempotency_key and meta.idempotency_key differ"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			pubs, err := Decode([]byte(c.body))
			if err == nil {
				t.Fatalf("accepted: %v", pubs)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %q, want it to start with %q", err, c.want)
			}
		})
	}
}

// Each item of a batch carries its own key.
func TestDecodeIdempotencyKeyPerBatchItem(t *testing.T) {
	pubs, err := Decode([]byte(`[{"stream":"a","data":"1","idempotency_key":"x"},{"stream":"a","data":"2"},{"stream":"b","data":"3","meta":{"idempotency_key":"y"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pubs {
		got = append(got, p.GetIdempotencyKey())
	}
	if strings.Join(got, ",") != "x,,y" {
		t.Errorf("keys %q", got)
	}
}
