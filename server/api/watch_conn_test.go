package api

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/protocol"
)

func record(offset uint64, epoch, data string) []byte {
	return watchCodec{}.AppendBroadcast(nil, "", &protocol.Publication{Offset: offset, Epoch: epoch, Data: data}, nil)
}

// A watch passes each publication once, in order, transient ones too; a
// new epoch, a refused history or a backlog past the limit end it with
// the matching code once what was queued before is taken.
func TestWatchConn(t *testing.T) {
	c := newWatchConn("e1", 1)
	c.Send(protocol.Confirm(watchIdentifier), nil)
	for _, f := range [][]byte{record(1, "e1", "old"), record(2, "e1", "two\x00with a zero"), record(2, "e1", "again"), record(0, "", "transient"), record(3, "e1", "three")} {
		if !c.Send(f, nil) {
			t.Fatalf("refused %q", f)
		}
	}
	items, err := c.take()
	if err != nil || len(items) != 3 || items[0].data != "two\x00with a zero" || items[1].offset != 0 || items[2].offset != 3 {
		t.Fatalf("take = %+v, %v", items, err)
	}
	if c.Send(record(1, "e2", "new epoch"), nil) {
		t.Fatal("a publication of another epoch was taken")
	}
	if _, err := c.take(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("after a new epoch: %v", err)
	}

	c = newWatchConn("", 0)
	c.Send(record(5, "e", "x"), nil)
	c.Send(protocol.RejectHistory(watchIdentifier), nil)
	if items, _ := c.take(); len(items) != 1 {
		t.Fatalf("what came before the refusal: %+v", items)
	}
	if _, err := c.take(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("after reject_history: %v", err)
	}

	c = newWatchConn("", 0)
	slow := make(chan struct{})
	c.OnSlow(func() { close(slow) })
	big := strings.Repeat("x", 1<<20)
	for i := uint64(1); c.Send(record(i, "e", big), nil); i++ {
		if i > 100 {
			t.Fatal("a backlog past the limit was taken")
		}
	}
	c.take()
	if _, err := c.take(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("too slow: %v", err)
	}
	select {
	case <-slow:
	case <-time.After(5 * time.Second):
		t.Fatal("OnSlow's function was not called")
	}
}

func TestParseWatchRecordRefusesOthers(t *testing.T) {
	for _, f := range []string{"", "{}", "\x00", "\x00x\x00e\x00d", "\x001\x00e"} {
		if _, err := parseWatchRecord([]byte(f)); err == nil {
			t.Errorf("parsed %q", f)
		}
	}
}
