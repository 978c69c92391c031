package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// The publish benchmarks measure whole API requests over loopback against a
// running server with no subscribers: the cost of the API path itself.
// Compare ns/op between them; requests/s = 1e9 / ns/op.

func restBody(n int) []byte {
	if n == 1 {
		return []byte(`{"stream":"bench","data":"{\"text\":\"hello\"}"}`)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"stream":"bench-%d","data":"{\"n\":%d}"}`, i%10, i)
	}
	b.WriteByte(']')
	return []byte(b.String())
}

func benchREST(b *testing.B, batch int) {
	r := startBench(b)
	body := restBody(batch)
	url := "http://" + r.APIAddr + "/api/publish"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetBytes(int64(len(body)))
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			// Read to the end so the keep-alive connection is reused.
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func grpcRequest(n int) *cablehubv1.PublishRequest {
	req := &cablehubv1.PublishRequest{}
	for i := range n {
		req.Publications = append(req.Publications, &cablehubv1.Publication{Stream: "bench-" + strconv.Itoa(i%10), Data: `{"text":"hello"}`})
	}
	return req
}

func benchGRPC(b *testing.B, batch int, dedicated bool) {
	var r *Runner
	if dedicated {
		r = startBench(b, "--grpc_port", strconv.Itoa(freeBenchPort(b)))
	} else {
		r = startBench(b)
	}
	conn, err := grpc.NewClient(r.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := cablehubv1.NewCableServiceClient(conn)
	req := grpcRequest(batch)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Publish(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPublishREST(b *testing.B)                  { benchREST(b, 1) }
func BenchmarkPublishRESTBatch100(b *testing.B)          { benchREST(b, 100) }
func BenchmarkPublishGRPCShared(b *testing.B)            { benchGRPC(b, 1, false) }
func BenchmarkPublishGRPCSharedBatch100(b *testing.B)    { benchGRPC(b, 100, false) }
func BenchmarkPublishGRPCDedicated(b *testing.B)         { benchGRPC(b, 1, true) }
func BenchmarkPublishGRPCDedicatedBatch100(b *testing.B) { benchGRPC(b, 100, true) }
