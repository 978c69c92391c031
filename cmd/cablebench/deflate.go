package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// deflateOffer is the permessage-deflate offer browsers and ws send.
const deflateOffer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

// agreedDeflate reports whether a 101 response head agreed
// permessage-deflate.
func agreedDeflate(head []byte) bool {
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(k)), "sec-websocket-extensions") &&
			bytes.HasPrefix(bytes.TrimSpace(v), []byte("permessage-deflate")) {
			return true
		}
	}
	return false
}

// inflater inflates compressed messages for every client of a run, with
// pooled readers: a client holds none between messages, as the server
// agreed no context takeover.
type inflater struct {
	readers sync.Pool
}

// inflateTail completes a message for the reader (RFC 7692 §7.2.2) and
// ends the stream.
var inflateTail = []byte("\x00\x00\xff\xff\x01\x00\x00\xff\xff")

func (f *inflater) inflate(p []byte) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(inflateTail))
	r, _ := f.readers.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(src)
	} else if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	defer f.readers.Put(r)
	return io.ReadAll(r)
}

// padding is an "xpad" field (with its leading comma; named to sort after
// "t", as servers that re-encode the message sort keys) of about size bytes of
// the HTML a Turbo Stream broadcast carries, which is what compression is
// for; "" for size 0.
func padding(size int) string {
	if size <= 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`,"xpad":"`)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `<div class=\"message\" id=\"message_%d\"><p class=\"body\">Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p></div>`, i)
	}
	b.WriteString(`"`)
	return b.String()
}
