package ws

// ringBatch is a flusher's reused state for one io_uring submission.
type ringBatch struct {
	sends []ringSend
	outs  []flushOut
	conns []*Conn
	ends  []int  // where each connection's bytes end in arena
	arena []byte // the encoded frames of every connection in the batch
}

// flushRing writes the listed connections' queues through the ring,
// ringEntries connections per submission. Should the ring fail, it is
// closed and the rest (and every later batch) goes through write(2).
func (f *flusher) flushRing(batch []*Conn) {
	for len(batch) > 0 && f.ring != nil {
		k := min(len(batch), ringEntries)
		f.flushChunk(batch[:k])
		batch = batch[k:]
		if f.ring.broken {
			f.ring.close()
			f.ring = nil
		}
	}
	for _, c := range batch {
		c.flushFrom(f)
	}
}

// flushChunk encodes each connection's queue into one arena (beginFlush:
// the flusher becomes each one's writer), sends them with one submission,
// and hands each result to endFlush, as flushRaw does a write's: the same
// order, OnSent counts, writer goroutine for a full socket's rest.
func (f *flusher) flushChunk(chunk []*Conn) {
	b := &f.ringBatch
	arena := b.arena[:0]
	for _, c := range chunk {
		c.mu.Lock()
		c.scheduled = false
		c.mu.Unlock()
		var out flushOut
		var ok bool
		if arena, out, ok = c.beginFlush(arena); !ok {
			continue
		}
		b.ends = append(b.ends, len(arena))
		b.sends = append(b.sends, ringSend{raw: c.raw})
		b.outs = append(b.outs, out)
		b.conns = append(b.conns, c)
	}
	from := 0
	for i := range b.sends {
		b.sends[i].buf = arena[from:b.ends[i]]
		from = b.ends[i]
	}
	f.ring.send(b.sends)
	for i, c := range b.conns {
		f.frames += b.outs[i].frames
		f.writes++
		c.endFlush(b.sends[i].buf, b.sends[i].n, b.sends[i].err, b.outs[i])
	}
	clear(b.sends)
	clear(b.conns)
	if cap(arena) > 1<<20 {
		arena = nil // a burst's; not kept
	}
	b.arena, b.sends, b.outs, b.conns, b.ends = arena[:0], b.sends[:0], b.outs[:0], b.conns[:0], b.ends[:0]
}
