package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// delivery is what a subscriber sees of a broadcast: its message and offset.
type delivery struct {
	Message json.RawMessage `json:"message"`
	Offset  int             `json:"offset"`
}

// nextDelivery reads c's next frame as a broadcast.
func nextDelivery(t *testing.T, c *wsClient) delivery {
	t.Helper()
	f := c.next(5 * time.Second)
	var d delivery
	if err := json.Unmarshal([]byte(f), &d); err != nil || d.Message == nil {
		t.Fatalf("not a broadcast: %s", f)
	}
	return d
}

// expectDeliveries checks that c's next broadcasts carry exactly these
// messages at these offsets, in order.
func expectDeliveries(t *testing.T, c *wsClient, want ...string) {
	t.Helper()
	for i, w := range want {
		d := nextDelivery(t, c)
		if got := fmt.Sprintf("%s@%d", d.Message, d.Offset); got != w {
			t.Fatalf("delivery %d: %s, want %s", i, got, w)
		}
	}
}

func grpcPublish(t *testing.T, s *server, pubs ...*cablehubv1.Publication) error {
	t.Helper()
	ctx, cancel := withToken("")
	defer cancel()
	_, err := dialGRPC(t, s.GRPC).Publish(ctx, &cablehubv1.PublishRequest{Publications: pubs})
	return err
}

// A publish retried with the same key, over REST (top level or meta) or
// gRPC, answers success and is delivered once, and stored once (the next
// publication gets the next offset). Another key, no key, or the same key
// on another stream are delivered. In a batch each item counts on its own.
func TestIdempotentPublish(t *testing.T) {
	s := startServer(t, nil, "--public")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.subscribe("orders")
	other := dialWS(t, s, dialOpts{})
	other.welcome()
	other.subscribe("audit")

	first := `{"stream":"orders","data":"{\"n\":1}","idempotency_key":"order-1"}`
	publish(t, s, first)
	publish(t, s, first)
	publish(t, s, `{"stream":"orders","data":"{\"n\":\"retry\"}","meta":{"idempotency_key":"order-1"}}`)
	if err := grpcPublish(t, s, &cablehubv1.Publication{Stream: "orders", Data: `{"n":"grpc retry"}`, IdempotencyKey: "order-1"}); err != nil {
		t.Fatalf("gRPC retry: %v", err)
	}
	publish(t, s, `{"stream":"orders","data":"{\"n\":2}","idempotency_key":"order-2"}`)
	publish(t, s, `{"stream":"orders","data":"{\"n\":3}"}`)
	publish(t, s, `{"stream":"audit","data":"{\"n\":1}","idempotency_key":"order-1"}`)
	// A batch: the retried key is skipped, the rest delivered in order.
	publish(t, s, `[{"stream":"orders","data":"{\"n\":4}","idempotency_key":"order-4"},`+
		`{"stream":"orders","data":"{\"n\":\"dup\"}","idempotency_key":"order-2"},`+
		`{"stream":"orders","data":"{\"n\":5}"},`+
		`{"stream":"orders","data":"{\"n\":\"dup in batch\"}","idempotency_key":"order-4"}]`)

	expectDeliveries(t, c, `{"n":1}@1`, `{"n":2}@2`, `{"n":3}@3`, `{"n":4}@4`, `{"n":5}@5`)
	expectDeliveries(t, other, `{"n":1}@1`)
	c.barrier()
	other.barrier()
}

// Keys over 128 bytes are refused, naming the field, over REST and gRPC.
func TestIdempotencyKeyTooLong(t *testing.T) {
	s := startServer(t, nil, "--public")
	url := "http://" + s.Main + "/api/publish"
	long := strings.Repeat("k", 129)
	r := do(t, "POST", url, `{"stream":"a","data":"1","idempotency_key":"`+long+`"}`)
	assertJSONError(t, r, 422, "idempotency_key is longer than 128 bytes")
	r = do(t, "POST", url, `[{"stream":"a","data":"1"},{"stream":"a","data":"2","meta":{"idempotency_key":"`+long+`"}}]`)
	assertJSONError(t, r, 422, "publications[1]: meta.idempotency_key is longer than 128 bytes")
	err := grpcPublish(t, s, &cablehubv1.Publication{Stream: "a", Data: "1", IdempotencyKey: long})
	wantCode(t, err, codes.InvalidArgument)
	if !strings.Contains(err.Error(), "idempotency_key is longer than 128 bytes") {
		t.Errorf("gRPC error %v does not name the field", err)
	}
}

// After the window the same key is delivered again, and not before.
func TestIdempotencyWindowPasses(t *testing.T) {
	s := startServer(t, nil, "--public", "--idempotency_window", "1")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.subscribe("orders")
	start := time.Now()
	publish(t, s, `{"stream":"orders","data":"\"first\"","idempotency_key":"k"}`)
	expectDeliveries(t, c, `"first"@1`)
	// Retry every 100 ms, each followed by a publication without a key as
	// a marker: while the retry is a no-op, the marker comes next.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		publish(t, s, fmt.Sprintf(`{"stream":"orders","data":"\"retry %d\"","idempotency_key":"k"}`, i))
		publish(t, s, fmt.Sprintf(`{"stream":"orders","data":"\"marker %d\""}`, i))
		d := nextDelivery(t, c)
		if string(d.Message) == fmt.Sprintf(`"retry %d"`, i) {
			if elapsed := time.Since(start); elapsed < time.Second {
				t.Fatalf("delivered again after %s, within the 1 s window", elapsed)
			}
			expectDeliveries(t, c, fmt.Sprintf(`"marker %d"@%d`, i, d.Offset+1))
			return
		}
		if string(d.Message) != fmt.Sprintf(`"marker %d"`, i) {
			t.Fatalf("unexpected delivery %s", d.Message)
		}
		if time.Now().After(deadline) {
			t.Fatal("the key still made retries no-ops 10 s into a 1 s window")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// With the window off keys are ignored.
func TestIdempotencyWindowZeroDisables(t *testing.T) {
	s := startServer(t, nil, "--public", "--idempotency_window", "0")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.subscribe("orders")
	publish(t, s, `{"stream":"orders","data":"1","idempotency_key":"k"}`)
	publish(t, s, `{"stream":"orders","data":"2","idempotency_key":"k"}`)
	expectDeliveries(t, c, `1@1`, `2@2`)
}

// With the Redis broker a retry on another node is a no-op: both nodes'
// subscribers get the publication once, and it is stored once.
func TestIdempotencyClusterRedis(t *testing.T) {
	a, b := redisCluster(t, 12)
	stream := uniqueStream(t, "orders")
	ca := dialWS(t, a, dialOpts{})
	ca.welcome()
	ca.subscribe(stream)
	cb := dialWS(t, b, dialOpts{})
	cb.welcome()
	cb.subscribe(stream)

	body := fmt.Sprintf(`{"stream":%q,"data":"\"once\"","idempotency_key":"order-1"}`, stream)
	publish(t, a, body)
	publish(t, b, body)
	publish(t, a, body)
	if err := grpcPublish(t, b, &cablehubv1.Publication{Stream: stream, Data: `"grpc retry"`, IdempotencyKey: "order-1"}); err != nil {
		t.Fatalf("gRPC retry on the other node: %v", err)
	}
	publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"\"next\"","idempotency_key":"order-2"}`, stream))
	for _, c := range []*wsClient{ca, cb} {
		expectDeliveries(t, c, `"once"@1`, `"next"@2`)
		c.barrier()
	}
}
