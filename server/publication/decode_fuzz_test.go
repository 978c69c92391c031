package publication

import (
	"encoding/json"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

// FuzzDecodePublications feeds arbitrary publish bodies to
// decodePublications: it either fails with a message, or returns at least
// one publication, each with a non-empty stream, one per item of a JSON
// array, with the values encoding/json sees in the body. The seed corpus is
// in testdata/fuzz/FuzzDecodePublications.
func FuzzDecodePublications(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		pubs, err := Decode(body)
		if err != nil {
			if pubs != nil || err.Error() == "" {
				t.Fatalf("error %q with publications %v", err, pubs)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		items, isArray := v.([]any)
		if !isArray {
			items = []any{v}
		}
		if len(pubs) == 0 || len(pubs) != len(items) {
			t.Fatalf("%d publications from %d items: %q", len(pubs), len(items), body)
		}
		for i, p := range pubs {
			item, _ := items[i].(map[string]any)
			if p == nil || p.GetStream() == "" || item == nil {
				t.Fatalf("item %d: publication %v from %v", i, p, items[i])
			}
			if p.GetStream() != item["stream"] || p.GetData() != item["data"] {
				t.Fatalf("item %d: stream/data %q/%q, the body has %v/%v", i, p.GetStream(), p.GetData(), item["stream"], item["data"])
			}
			meta, _ := item["meta"].(map[string]any)
			if transient, _ := meta["transient"].(bool); p.GetMeta().GetTransient() != transient {
				t.Fatalf("item %d: transient %t, the body has %v", i, p.GetMeta().GetTransient(), meta["transient"])
			}
			key, _ := item["idempotency_key"].(string)
			if key == "" {
				key, _ = meta["idempotency_key"].(string)
			}
			if p.GetIdempotencyKey() != key || len(key) > protocol.MaxIdempotencyKeySize {
				t.Fatalf("item %d: idempotency key %q, the body has %q", i, p.GetIdempotencyKey(), key)
			}
		}
	})
}
