package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/broker"
)

// restJSON is msg as the REST gateway writes it: protojson with proto
// field names, compacted.
func restJSON(t testing.TB, msg proto.Message) []byte {
	t.Helper()
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// randomJSON returns a JSON value of depth at most depth with the strings
// and numbers whose encodings differ most from their source.
func randomJSON(r *rand.Rand, depth int) any {
	switch k := r.IntN(7); {
	case k == 0 && depth > 0:
		m := map[string]any{}
		for range r.IntN(4) {
			m[randomString(r)] = randomJSON(r, depth-1)
		}
		return m
	case k == 1 && depth > 0:
		var l []any
		for range r.IntN(4) {
			l = append(l, randomJSON(r, depth-1))
		}
		return l
	case k == 2:
		return randomString(r)
	case k == 3:
		return r.IntN(2) == 0
	case k == 4:
		return nil
	default:
		nums := []float64{0, 1, -1, 1e20, 1e21, 9.99e20, 1e-6, 1e-7, 1.5e-300, math.MaxFloat64, -123.456, 1 / 3.0, float64(r.Int64())}
		return nums[r.IntN(len(nums))] * []float64{1, -1, 0.1}[r.IntN(3)]
	}
}

func randomString(r *rand.Rand) string {
	parts := []string{"a", "\"", "\\", "\n", "\t", "\b", "\x01", "\x1f", "\x7f", "<", "&", "é", "\u2028", "😀", "/", " "}
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

// The sizes the budget counts are never below the REST gateway's JSON (and
// match it but for protojson's shortened exponents), and are protobuf's.
func TestPresenceRecordJSONSize(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		rec := &cablehubv1.PresenceRecord{Id: randomString(r)}
		if i%5 != 0 {
			v, err := structpb.NewValue(randomJSON(r, 3))
			if err != nil {
				t.Fatal(err)
			}
			rec.Info = v
		}
		gotJSON, gotProto := presenceRecordSizes(rec)
		if want := len(restJSON(t, rec)); gotJSON < want || gotJSON > want+8 {
			t.Fatalf("%s: counted %d bytes, gateway writes %d", restJSON(t, rec), gotJSON, want)
		}
		if want := proto.Size(rec); gotProto != want {
			t.Fatalf("%s: counted %d bytes, protobuf takes %d", restJSON(t, rec), gotProto, want)
		}
	}
}

// presenceStream returns a service over a memory broker whose stream
// "room" has n presence ids, each joined with info.
func presenceStream(t testing.TB, n int, info string) *Service {
	ctx := context.Background()
	b := broker.NewMemory(broker.MemoryOptions{})
	for i := range n {
		if _, err := b.PresenceJoin(ctx, "room", fmt.Sprint("s", i), fmt.Sprintf("user-%05d", i), json.RawMessage(info)); err != nil {
			t.Fatal(err)
		}
	}
	return newService(b)
}

// A stream whose records are over MaxPresenceAnswer, whether in JSON or in
// protobuf (numbers take 9 bytes there, 2 in JSON), answers with the
// first records that fit in both, its real total and Truncated; one more
// record would not have fitted.
func TestGetPresenceWithinLimit(t *testing.T) {
	for name, info := range map[string]string{
		"strings": `"` + strings.Repeat("i", 4000) + `"`,
		"numbers": `[` + strings.Repeat("1,", 1999) + `1]`,
	} {
		t.Run(name, func(t *testing.T) {
			const n = 1000
			resp, err := presenceStream(t, n, info).GetPresence(context.Background(), &cablehubv1.GetPresenceRequest{Stream: "room"})
			if err != nil {
				t.Fatal(err)
			}
			body, size := restJSON(t, resp), proto.Size(resp)
			if len(body) > MaxPresenceAnswer || size > MaxPresenceAnswer {
				t.Fatalf("answer of %d bytes JSON, %d bytes protobuf", len(body), size)
			}
			if resp.GetTotal() != n || !resp.GetTruncated() || len(resp.Records) == 0 || len(resp.Records) == n {
				t.Fatalf("total %d, truncated %v, %d records", resp.GetTotal(), resp.GetTruncated(), len(resp.Records))
			}
			for i, r := range resp.Records {
				if r.Id != fmt.Sprintf("user-%05d", i) {
					t.Fatalf("record %d is %s", i, r.Id)
				}
			}
			more := proto.Clone(resp).(*cablehubv1.GetPresenceResponse)
			more.Records = append(more.Records, resp.Records[0])
			if len(restJSON(t, more)) <= MaxPresenceAnswer && proto.Size(more) <= MaxPresenceAnswer {
				t.Errorf("%d records: room for one more", len(resp.Records))
			}
		})
	}
	resp, err := presenceStream(t, 3, `{"n":1}`).GetPresence(context.Background(), &cablehubv1.GetPresenceRequest{Stream: "room"})
	if err != nil || resp.GetTruncated() || len(resp.Records) != 3 {
		t.Errorf("small stream: %v %v", resp, err)
	}
	if body := restJSON(t, resp); strings.Contains(string(body), "truncated") {
		t.Errorf("whole answer says truncated: %s", body)
	}
}
