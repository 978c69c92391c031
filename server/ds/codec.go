package ds

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/cablehub/cablehub/server/protocol"
)

// Codec is the wire format of the sessions that carry live reads (a
// node.Codec). A session's server messages keep their Action Cable JSON
// (the connection reads their type: welcome, confirmations, rejections),
// and a publication becomes a record the connection turns into the
// answer: recordMark, its offset, its epoch and its JSON message, so one
// encoding serves every live reader of a stream on the node. The client
// sends nothing; the handler itself hands the session its subscribe
// command, which Decode reads.
type Codec struct{}

// recordMark starts a publication's record: no Action Cable message
// starts with it.
const recordMark = 0

// Decode reads a command (the handler's own subscribe).
func (Codec) Decode(frame []byte) (*protocol.Command, error) {
	return protocol.ParseCommand(frame)
}

// Encode keeps a server message as it is.
func (Codec) Encode(frame []byte) []byte { return frame }

// AppendBroadcast appends the record of p, whose message is message.
func (Codec) AppendBroadcast(dst []byte, _ string, p *protocol.Publication, message []byte) []byte {
	dst = append(dst, recordMark)
	dst = strconv.AppendUint(dst, p.Offset, 10)
	dst = append(dst, recordMark)
	dst = append(dst, p.Epoch...)
	dst = append(dst, recordMark)
	return append(dst, message...)
}

// record is a publication read back from its record.
type record struct {
	seq     uint64
	epoch   string
	message []byte
}

var errNotRecord = errors.New("not a publication record")

// parseRecord reads a frame made by AppendBroadcast.
func parseRecord(frame []byte) (record, error) {
	if len(frame) == 0 || frame[0] != recordMark {
		return record{}, errNotRecord
	}
	parts := bytes.SplitN(frame[1:], []byte{recordMark}, 3)
	if len(parts) != 3 {
		return record{}, errNotRecord
	}
	seq, err := strconv.ParseUint(string(parts[0]), 10, 64)
	if err != nil {
		return record{}, errNotRecord
	}
	return record{seq: seq, epoch: string(parts[1]), message: parts[2]}, nil
}

// messageType reads the type of an Action Cable message composed by the
// protocol package ({"type":"<name>",...); "" for any other.
func messageType(frame []byte) string {
	const prefix = `{"type":"`
	rest, ok := bytes.CutPrefix(frame, []byte(prefix))
	if !ok {
		return ""
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return ""
	}
	return string(rest[:end])
}
