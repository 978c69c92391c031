package ws

import (
	"fmt"
	"strings"
	"testing"
)

// benchMessage is an Action Cable broadcast of about size bytes: a Turbo
// Stream's HTML, the kind of text deployments compress.
func benchMessage(size int) []byte {
	head := `{"identifier":"{\"channel\":\"Turbo::StreamsChannel\",\"signed_stream_name\":\"IkdpZDovL2FwcC9Sb29tLzEi--0ab1c2\"}","message":"`
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len() < size-2; i++ {
		fmt.Fprintf(&b, `<turbo-stream action=\"append\" target=\"messages\"><template><p id=\"m%d\">hi</p></template></turbo-stream>`, i)
	}
	return []byte(b.String()[:size-2] + `"}`)
}

// BenchmarkDeflateMessage compresses one message, as the first subscriber
// of a broadcast does (the others reuse it), and reports the bytes saved;
// the break-even size is Options.CompressionMinSize's default.
func BenchmarkDeflateMessage(b *testing.B) {
	d := &deflateCodec{}
	for _, size := range []int{64, 128, 256, 512, 1024, 4096} {
		msg := benchMessage(size)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			var out []byte
			for b.Loop() {
				out = d.compress(msg, 15)
			}
			b.ReportMetric(float64(len(msg)-len(out)), "saved-bytes")
			b.ReportMetric(float64(len(out))/float64(len(msg)), "ratio")
		})
	}
}

// BenchmarkInflateMessage is what each client pays for a compressed
// message (the server pays it for a client's).
func BenchmarkInflateMessage(b *testing.B) {
	d := &deflateCodec{}
	for _, size := range []int{64, 256, 1024, 4096} {
		z := d.compress(benchMessage(size), 15)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for b.Loop() {
				if _, err := d.inflate(z, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFanoutCompressed is the per-subscriber cost of a compressed
// broadcast: the cache lookup once the first subscriber compressed it.
func BenchmarkFanoutCompressed(b *testing.B) {
	d := &deflateCodec{}
	msg := benchMessage(1024)
	d.compressed(msg, 15)
	for b.Loop() {
		d.compressed(msg, 15)
	}
}
