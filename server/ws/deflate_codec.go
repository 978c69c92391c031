package ws

import (
	"bytes"
	"io"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/flate"
)

// deflateTail is what RFC 7692 §7.2.1 has the sender remove from the end
// of a compressed message (the empty stored block of a sync flush); the
// receiver puts it back before inflating.
const deflateTail = "\x00\x00\xff\xff"

// inflateEnd is deflateTail followed by a final empty stored block, so
// the inflater sees the end of the stream instead of waiting for more.
const inflateEnd = deflateTail + "\x01\x00\x00\xff\xff"

// deflateLevel is flate.BestSpeed: AnyCable's level, and on the JSON of a
// typical broadcast within a few percent of level 6's size at half its
// CPU.
const deflateLevel = flate.BestSpeed

// maxCachedDeflate is the largest message the cache keeps the compressed
// form of; larger ones (rare) are compressed per connection, so the cache
// holds at most deflateSlots × (this + its compressed form) bytes, about
// 8 MiB.
const maxCachedDeflate = 16 << 10

const deflateSlots = 256

// codec compresses server messages and inflates client ones for the
// connections of a transport that agreed permessage-deflate. It holds no
// per-connection state: compressors and inflaters are pooled and taken
// only for the length of one message.
//
// Every connection that agreed the same window compresses a message to the
// same bytes (no context is kept between messages), so the compressed
// form of a broadcast is made once and shared by its subscribers: a small
// cache keyed by the message's identity (a payload handed to Conn.Send is
// never modified after, and fan-out gives every subscriber the same
// slice). An entry holds its message, so the message's memory cannot be
// reused by another while the entry lasts, and an address seen again is
// the same message. (A weak pointer would keep less alive, but the
// runtime aborts on one made to memory outside the heap, which a payload
// may be.)
type deflateCodec struct {
	slots     [deflateSlots]deflateSlot
	writers   [16]sync.Pool // *flate.Writer by window bits
	inflaters sync.Pool     // io.ReadCloser that is a flate.Resetter
}

type deflateSlot struct {
	mu   sync.Mutex
	msg  []byte
	bits uint8
	out  []byte
}

// compressed returns p's compressed payload for window bits, from the
// cache when another connection has already compressed it. The result
// must not be modified.
func (d *deflateCodec) compressed(p []byte, bits uint8) []byte {
	if len(p) > maxCachedDeflate {
		return d.compress(p, bits)
	}
	ptr := unsafe.SliceData(p)
	h := uint64(uintptr(unsafe.Pointer(ptr)))*0x9E3779B97F4A7C15 ^ uint64(bits)
	s := &d.slots[h>>56]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msg) == len(p) && s.bits == bits && unsafe.SliceData(s.msg) == ptr {
		return s.out
	}
	out := d.compress(p, bits)
	s.msg, s.bits, s.out = p, bits, out
	return out
}

// compress deflates p on its own (no context before or after) with a
// window of 1<<bits, without the sync flush's tail.
func (d *deflateCodec) compress(p []byte, bits uint8) []byte {
	var buf bytes.Buffer
	buf.Grow(len(p)/2 + 32)
	w, _ := d.writers[bits].Get().(*flate.Writer)
	if w == nil {
		if bits == 15 {
			w, _ = flate.NewWriter(&buf, deflateLevel)
		} else {
			w, _ = flate.NewWriterWindow(&buf, 1<<bits)
		}
	} else {
		w.Reset(&buf)
	}
	w.Write(p)
	w.Flush()
	w.Reset(io.Discard) // drop the buffer before pooling
	d.writers[bits].Put(w)
	out := buf.Bytes()
	return out[:len(out)-len(deflateTail)]
}

// inflate decompresses a client's message, failing with closeTooBig when
// it inflates to more than limit bytes and with closeInvalidData when it
// is not valid deflate data.
func (d *deflateCodec) inflate(p []byte, limit int64) ([]byte, *closeError) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte(inflateEnd)))
	fr, _ := d.inflaters.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else {
		fr.(flate.Resetter).Reset(src, nil)
	}
	defer func() {
		fr.(flate.Resetter).Reset(bytes.NewReader(nil), nil)
		d.inflaters.Put(fr)
	}()
	out := make([]byte, 0, min(int64(len(p))*4+64, limit+1))
	for {
		if int64(len(out)) > limit {
			return nil, &closeError{code: closeTooBig}
		}
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		end := cap(out)
		if int64(end) > limit+1 {
			end = int(limit + 1)
		}
		n, err := fr.Read(out[len(out):end])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &closeError{code: closeInvalidData, reason: "invalid compressed message"}
		}
	}
	if int64(len(out)) > limit {
		return nil, &closeError{code: closeTooBig}
	}
	return out, nil
}
