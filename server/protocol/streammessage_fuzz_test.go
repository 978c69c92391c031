package protocol

import "testing"

// FuzzDecodeStreamMessages feeds arbitrary pub/sub payloads to
// DecodeStreamMessages: it never panics, and what it accepts encodes and
// decodes again to the same publications. The seed corpus is in
// testdata/fuzz/FuzzDecodeStreamMessages.
func FuzzDecodeStreamMessages(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		pubs, err := DecodeStreamMessages(data)
		if err != nil {
			return
		}
		for _, p := range pubs {
			again, err := DecodeStreamMessages(EncodeStreamMessage(&p))
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%+v does not survive a round trip: %+v %v", p, again, err)
			}
		}
	})
}
