package spill

import "slices"

// The in-memory tail and the read marks make the streaming use of a Log cheap: records are
// appended, read back soon after, and trimmed once delivered or acknowledged. Neither changes
// what is on disk; each only saves reading back what the log itself wrote or read moments ago.
//
//   - The tail keeps the bytes most recently written to the segments (the write buffer, handed
//     over as it is written), so that Read and Trim find them in memory instead of reading the
//     file. The bytes are not written to again while the tail keeps them, and never once
//     Read has handed out records that alias them (see writeArena).
//   - The read marks remember, for the last record each Read hands out from a segment, where a
//     scan of the segment stands after it and how many records and bytes of the segment lie
//     before that point, so that a Trim through it (the acknowledgement of a whole batch) moves
//     the trim point over the batch without scanning it again. A Trim that ends inside a
//     batch scans from the mark before, in the tail if the batch is still there.
//
// Both are bounded and both fall back to the file: a Read or Trim outside the tail reads the
// segment, a Trim past the last mark scans on from it.

// tailChunk is bytes [off, off+len(b)) of segment seg, as written to its file, in arena a.
type tailChunk struct {
	seg *segment
	off int64
	b   []byte
	a   *writeArena
}

// writeArena is an array the write buffer takes its bytes from while the tail keeps what it
// wrote. Once Read has handed out records aliasing it (lent), it is never written to again; an
// arena never lent is used again once the tail has let go of all of it, so that a log nobody
// reads from soon after writing allocates nothing.
type writeArena struct {
	b      []byte // the whole array
	chunks int    // tail chunks in it
	lent   bool
	// lentThrough: with WithReadsReleasedByTrim, the highest log number any Read had
	// handed out when it last lent this arena; once trimmed through it, nothing aliases the
	// arena any more and it can be used again.
	lentThrough uint64
}

// tail is the bytes most recently written to the segments, oldest first, at most limit bytes.
// Chunks of one segment are contiguous and in file order; a frame never spans two chunks,
// because each chunk is whole frames written at once.
type tail struct {
	limit  int64
	size   int64
	chunks []tailChunk
	arena  *writeArena   // the write buffer's
	spares []*writeArena // free for the write buffer, at most maxSpares

	// With WithReadsReleasedByTrim: lending holds the arenas the Read in progress lent, and
	// retired the lent arenas the tail let go of, waiting for a Trim through their lentThrough
	// (at most maxRetired; older ones are left to the garbage collector).
	releaseOnTrim bool
	lending       []*writeArena
	retired       []*writeArena
}

// maxSpares bounds the free arenas kept for the write buffer. One was not enough: a Trim that
// covers several lent arenas frees them together, and the writes that follow need as many
// before the next Trim. Of 190 arenas the write buffer took in a 1M-record acked send with the
// default sizes, 83 were new with one spare, 30 with two, 5 with four, and the sender's CPU per
// record fell by about a tenth (0.81 - 0.82 against 0.68 - 0.75 µs, alternating runs).
const maxSpares = 4

// maxRetired bounds the lent arenas kept for use again after a Trim.
const maxRetired = 8

// writeBufferSize is the largest usual arena: the tail (and the records Read hands out from
// it) share one array per this many bytes.
const writeBufferSize = 1 << 20

// grow returns buf, the write buffer, moved to another arena with room for n more bytes (at
// least size bytes in all). The old arena keeps what it holds for the tail.
func (t *tail) grow(buf []byte, n, size int) []byte {
	need := len(buf) + n
	old := t.arena
	if i := slices.IndexFunc(t.spares, func(a *writeArena) bool { return len(a.b) >= need }); i >= 0 {
		t.arena = t.spares[i]
		t.spares = slices.Delete(t.spares, i, i+1)
	} else {
		t.arena = &writeArena{b: make([]byte, max(size, 2*need))}
	}
	buf = append(t.arena.b[:0], buf...)
	if old != nil {
		t.free(old)
	}
	return buf
}

// free makes a an arena to use again if nothing refers to it any more.
func (t *tail) free(a *writeArena) {
	if a.chunks != 0 || a == t.arena {
		return
	}
	if a.lent {
		if t.releaseOnTrim && !slices.Contains(t.retired, a) {
			if len(t.retired) == maxRetired {
				t.retired = t.retired[:copy(t.retired, t.retired[1:])]
			}
			t.retired = append(t.retired, a)
		}
		return
	}
	if len(t.spares) < maxSpares {
		t.spares = append(t.spares, a)
		return
	}
	// All places taken: a replaces the smallest spare if it is larger.
	small := 0
	for i, s := range t.spares {
		if len(s.b) < len(t.spares[small].b) {
			small = i
		}
	}
	if len(t.spares[small].b) < len(a.b) {
		t.spares[small] = a
	}
}

// lent notes, at the end of a Read that handed out records up to seq, that the arenas it lent
// hold records up to seq.
func (t *tail) lent(seq uint64) {
	for _, a := range t.lending {
		a.lentThrough = max(a.lentThrough, seq)
	}
	clear(t.lending)
	t.lending = t.lending[:0]
}

// releaseTrimmed makes the retired arenas whose lent records are all trimmed (trimmed through
// trimmedSeq) free to use again, calling forget for each first so the log can drop any window
// of its own into it.
func (t *tail) releaseTrimmed(trimmedSeq uint64, forget func(a *writeArena)) {
	k := 0
	for _, a := range t.retired {
		if a.lentThrough > trimmedSeq {
			t.retired[k] = a
			k++
			continue
		}
		forget(a)
		a.lent, a.lentThrough = false, 0
		t.free(a)
	}
	clear(t.retired[k:])
	t.retired = t.retired[:k]
}

// add keeps b, just written to seg at offset off from the write buffer's arena. b is never
// written to again while the tail keeps it. The oldest chunks go when the tail passes its
// limit.
func (t *tail) add(seg *segment, off int64, b []byte) {
	if t.limit <= 0 || len(b) == 0 {
		return
	}
	if n := len(t.chunks); n > 0 {
		last := &t.chunks[n-1]
		l := len(last.b)
		// Bytes written right after the last chunk's, from the same buffer, extend it (up to
		// a quarter of the limit, so that the tail still drops in steps).
		if last.seg == seg && last.off+int64(l) == off && cap(last.b)-l >= len(b) &&
			&last.b[:l+1][l] == &b[0] && int64(l+len(b)) <= t.limit/4 {
			last.b = last.b[:l+len(b)]
			t.size += int64(len(b))
			t.shrink()
			return
		}
	}
	t.chunks = append(t.chunks, tailChunk{seg: seg, off: off, b: b, a: t.arena})
	t.arena.chunks++
	t.size += int64(len(b))
	t.shrink()
}

// shrink drops the oldest chunks until the tail is within its limit.
func (t *tail) shrink() {
	k := 0
	for k < len(t.chunks) && t.size > t.limit {
		t.size -= int64(len(t.chunks[k].b))
		k++
	}
	t.dropFront(k)
}

// dropFront drops the k oldest chunks.
func (t *tail) dropFront(k int) {
	if k == 0 {
		return
	}
	for _, c := range t.chunks[:k] {
		c.a.chunks--
		t.free(c.a)
	}
	n := copy(t.chunks, t.chunks[k:])
	clear(t.chunks[n:]) // let the buffers go
	t.chunks = t.chunks[:n]
}

// find returns the chunk of seg holding [off, off+n) and the chunk's offset, or nil. With lend,
// the caller hands out slices of the chunk: its arena is never used again.
func (t *tail) find(seg *segment, off, n int64, lend bool) ([]byte, int64, *writeArena) {
	for i := len(t.chunks) - 1; i >= 0; i-- {
		c := &t.chunks[i]
		if c.seg != seg {
			if c.seg.index < seg.index {
				return nil, 0, nil // older chunks are of older segments
			}
			continue
		}
		if off >= c.off && off+n <= c.off+int64(len(c.b)) {
			if lend {
				c.a.lent = true
				if t.releaseOnTrim && (len(t.lending) == 0 || t.lending[len(t.lending)-1] != c.a) {
					t.lending = append(t.lending, c.a)
				}
			}
			return c.b, c.off, c.a
		}
		if off >= c.off {
			return nil, 0, nil // older chunks of seg lie before c
		}
	}
	return nil, 0, nil
}

// release drops the chunks no Read or Trim can need any more: those of segments before seg,
// and those of seg that end at or before off (its trim point).
func (t *tail) release(seg *segment, off int64) {
	k := 0
	for k < len(t.chunks) {
		c := &t.chunks[k]
		if c.seg.index > seg.index || c.seg == seg && c.off+int64(len(c.b)) > off {
			break
		}
		t.size -= int64(len(c.b))
		k++
	}
	t.dropFront(k)
}

// readMark is where a scan of seg stands right after the frame of record seq, the last one a
// Read handed out from seg: the scan state, and the records (and their payload bytes) of seg
// before that point.
type readMark struct {
	seg   *segment
	seq   uint64
	after scanState
	recs  int
	bytes int64
}

// readMarks is a queue of marks in read order, at most limit of them; a Read that finds it full
// marks nothing, and the Trims past the last mark scan.
type readMarks struct {
	limit int
	q     []readMark
	head  int
}

// maxReadMarks bounds the read marks (72 bytes each, one per Read and segment): this many Reads
// ahead of the Trims.
const maxReadMarks = 1 << 12

func (m *readMarks) push(mk readMark) {
	n := len(m.q) - m.head
	if n >= m.limit {
		return
	}
	if n > 0 && m.q[len(m.q)-1].seq >= mk.seq {
		m.clear() // the cursor went back (Rewind): the marks start again
	}
	if m.head > 0 && len(m.q) == cap(m.q) {
		m.q = m.q[:copy(m.q, m.q[m.head:])]
		m.head = 0
	}
	m.q = append(m.q, mk)
}

// first returns the oldest mark, if any.
func (m *readMarks) first() (*readMark, bool) {
	if m.head == len(m.q) {
		return nil, false
	}
	return &m.q[m.head], true
}

func (m *readMarks) pop() {
	m.q[m.head] = readMark{}
	m.head++
	if m.head == len(m.q) {
		m.q, m.head = m.q[:0], 0
	}
}

func (m *readMarks) clear() {
	clear(m.q)
	m.q, m.head = m.q[:0], 0
}
