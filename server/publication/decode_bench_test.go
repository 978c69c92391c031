package publication

import (
	"fmt"
	"strings"
	"testing"
)

// The publish decode benchmarks measure turning a REST publish body into
// publications, the gateway's own share of a publish request.

func BenchmarkDecodePublish(b *testing.B) {
	body := []byte(`{"stream":"chat/42","data":"{\"text\":\"hello\",\"from\":\"ann\"}"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublishBatch100(b *testing.B) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"stream":"chat/%d","data":"{\"n\":%d}","meta":{"ttl":60}}`, i%10, i)
	}
	sb.WriteByte(']')
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
