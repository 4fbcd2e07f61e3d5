package spill

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// decodeFrameHeader validates and decodes the 40 bytes of a frame header. It does not look at
// the payload.
func decodeFrameHeader(h []byte) (frameHeader, error) {
	fh := parseFrameHeader(h)
	switch {
	case fh.typ != typeRecord && fh.typ != typeGap:
		return fh, ErrBadFrame
	case fh.typ == typeGap && fh.length != gapPayloadLen:
		return fh, ErrBadFrame
	case binary.LittleEndian.Uint32(h[36:40]) != 0:
		return fh, ErrBadFrame
	case binary.LittleEndian.Uint32(h[4:8]) != headerCRC(h):
		return fh, ErrChecksum
	}
	return fh, nil
}

// parseFrameHeader decodes the 40 bytes of a frame header without validating them.
func parseFrameHeader(h []byte) frameHeader {
	h = h[:frameHeaderSize]
	w := binary.LittleEndian.Uint32(h[0:4])
	return frameHeader{
		typ:    byte(w >> 24),
		length: w & maxFrameLen,
		seq:    binary.LittleEndian.Uint64(h[8:16]),
		ord:    binary.LittleEndian.Uint64(h[16:24]),
		pos:    binary.LittleEndian.Uint64(h[24:32]),
		crc:    binary.LittleEndian.Uint32(h[32:36]),
	}
}

// decodeSegmentHeader validates a segment header and returns its index and source id.
func decodeSegmentHeader(h []byte) (index uint64, sourceID string, err error) {
	if len(h) < segmentHeaderSize {
		return 0, "", io.ErrUnexpectedEOF
	}
	h = h[:segmentHeaderSize]
	if string(h[0:8]) != segmentMagic {
		return 0, "", fmt.Errorf("%w: bad magic", ErrBadHeader)
	}
	if v := binary.LittleEndian.Uint16(h[8:10]); v != formatVersion {
		return 0, "", fmt.Errorf("%w: version %d", ErrBadHeader, v)
	}
	if binary.LittleEndian.Uint32(h[12:16]) != skipCRC(h, 12) {
		return 0, "", fmt.Errorf("%w: %w", ErrBadHeader, ErrChecksum)
	}
	n := int(h[10])
	if n > MaxSourceIDLen {
		return 0, "", fmt.Errorf("%w: source id length %d", ErrBadHeader, n)
	}
	return binary.LittleEndian.Uint64(h[16:24]), string(h[32 : 32+n]), nil
}

// scanState is where a scan of one segment stands and what it expects next. The ordering
// constraints apply once a first frame has been accepted: a record's seq must grow, and ord and
// pos must not go back; a jump forward is a loss.
type scanState struct {
	off     int64
	started bool
	lastSeq uint64
	nextOrd uint64
	nextPos uint64
}

// span is a region of a segment that holds no valid frame; err is why its first bytes were
// rejected.
type span struct {
	off, n int64
	err    error
}

// gap is what is missing between the expected position and a frame: records and payload bytes.
type gap struct{ records, bytes uint64 }

// frame is a valid frame found by a scanner.
type frame struct {
	frameHeader
	off     int64
	payload []byte // aliases the scanner's window
}

func (f frame) size() int64 { return frameSize(int(f.length)) }

// gapCounts returns the lost records and bytes a gap frame declares.
func (f frame) gapCounts() (records, bytes uint64) {
	return binary.LittleEndian.Uint64(f.payload[0:8]), binary.LittleEndian.Uint64(f.payload[8:16])
}

// defaultWindow is how much a scanner reads at a time.
const defaultWindow = 1 << 20

// scanner finds the valid frames of one segment between st.off and end, skipping damage. It
// never panics and never allocates more than the bytes it reads.
type scanner struct {
	r      io.ReaderAt
	end    int64
	st     scanState
	window int  // read size
	fresh  bool // each refill gets a new buffer (the frames handed out alias the old one)
	win    []byte
	winOff int64
	// winMem: win is bytes of the log's in-memory tail, which this process wrote and checked
	// by construction; their checksums are not computed again. Such a window is never
	// refilled.
	winMem   bool
	winArena *writeArena // the tail's array win lies in, when winMem
	buf      []byte      // !fresh: the buffer refills reuse, the scanner's own
	err      error       // a read error: the scan stops

	// mem, if set, is where the bytes of seg written last are kept: they are looked up there
	// before the file is read (and, if fresh, lent: the frames handed out alias them).
	mem *tail
	seg *segment
}

func newScanner(r io.ReaderAt, st scanState, end int64, window int, fresh bool) *scanner {
	if window <= 0 {
		window = defaultWindow
	}
	return &scanner{r: r, st: st, end: end, window: window, fresh: fresh}
}

// bytes returns [off, off+n) of the segment, or nil if it cannot (s.err says whether a read
// failed or the segment is shorter).
func (s *scanner) bytes(off, n int64) []byte {
	if off >= s.winOff && off+n <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff : off-s.winOff+n]
	}
	if s.mem != nil && off+n <= s.end {
		if b, bOff, a := s.mem.find(s.seg, off, n, s.fresh); b != nil {
			s.win, s.winOff, s.winMem, s.winArena = b, bOff, true, a
			return b[off-bOff : off-bOff+n]
		}
	}
	want := max(n, int64(s.window))
	want = min(want, s.end-off)
	if want < n {
		return nil
	}
	var buf []byte
	if !s.fresh && int64(cap(s.buf)) >= want {
		buf = s.buf[:want]
	} else {
		buf = make([]byte, want)
	}
	if !s.fresh {
		s.buf = buf
	}
	got, err := s.r.ReadAt(buf, off)
	s.winMem, s.winArena = false, nil
	if int64(got) < want {
		if err == nil || errors.Is(err, io.EOF) {
			// The file is shorter than we were told: scan what there is.
			s.end = off + int64(got)
		} else {
			s.err = err
		}
		s.win, s.winOff = buf[:got], off
		if int64(got) < n {
			return nil
		}
		return buf[:n]
	}
	s.win, s.winOff = buf, off
	return buf[:n]
}

// check validates the frame at s.st.off. It returns the frame, or the reason it is not one and
// how far a resync may jump (8 bytes, or the whole frame when its header is intact).
func (s *scanner) check() (frame, int64, error) {
	off := s.st.off
	h := s.bytes(off, frameHeaderSize)
	if h == nil {
		return frame{}, 8, io.ErrUnexpectedEOF
	}
	var fh frameHeader
	known := s.winMem // written by this process as a valid frame
	if known {
		fh = parseFrameHeader(h)
	} else {
		var err error
		if fh, err = decodeFrameHeader(h); err != nil {
			if isZero(h) {
				err = ErrBadFrame
			}
			return frame{}, 8, err
		}
	}
	size := frameSize(int(fh.length))
	if off+size > s.end {
		return frame{}, 8, io.ErrUnexpectedEOF
	}
	b := s.bytes(off, size)
	if b == nil {
		return frame{}, 8, io.ErrUnexpectedEOF
	}
	payload := b[frameHeaderSize : frameHeaderSize+int64(fh.length)]
	if !(known && s.winMem) && crc32.Checksum(payload, castagnoli) != fh.crc {
		return frame{}, size, ErrChecksum
	}
	f := frame{frameHeader: fh, off: off, payload: payload}
	if fh.typ == typeGap {
		n, nb := f.gapCounts()
		if fh.ord+n < fh.ord || fh.pos+nb < fh.pos {
			return frame{}, size, ErrBadFrame
		}
	}
	if s.st.started {
		st := s.st
		if fh.ord < st.nextOrd || fh.pos < st.nextPos || (fh.typ == typeRecord && fh.seq <= st.lastSeq) {
			return frame{}, size, ErrOrder
		}
	}
	return f, size, nil
}

// next returns the next valid frame. skipped is the damaged region before it (or before the end
// of the segment when ok is false); lost is the gap between what was expected and the frame,
// known only once an earlier frame of the segment has been accepted.
func (s *scanner) next() (f frame, skipped span, lost gap, ok bool) {
	if s.winMem {
		if f, ok := s.nextKnown(); ok {
			return f, span{off: f.off}, gap{}, true
		}
	}
	skipped.off = -1
	for s.err == nil && s.st.off+frameHeaderSize <= s.end {
		fr, jump, reason := s.check()
		if s.err != nil {
			break
		}
		if reason != nil {
			if skipped.off < 0 {
				skipped.off, skipped.err = s.st.off, reason
			}
			s.st.off += jump
			continue
		}
		if skipped.off >= 0 {
			skipped.n = fr.off - skipped.off
		} else {
			skipped.off = fr.off
		}
		if s.st.started {
			lost = gap{fr.ord - s.st.nextOrd, fr.pos - s.st.nextPos}
		}
		s.accept(fr)
		return fr, skipped, lost, true
	}
	if s.err == nil && s.st.off < s.end {
		if skipped.off < 0 {
			skipped.off, skipped.err = s.st.off, io.ErrUnexpectedEOF
		}
		s.st.off = s.end
	}
	if skipped.off >= 0 {
		skipped.n = s.st.off - skipped.off
	} else {
		skipped.off = s.st.off
	}
	return frame{}, skipped, gap{}, false
}

// nextKnown is next for the common case in a window of the tail: the frame at s.st.off lies in
// the window, is a record (written by this process, so valid), and follows the previous frame
// without a gap. Anything else (the window's end, a gap frame, a first frame) is left to next.
func (s *scanner) nextKnown() (frame, bool) {
	off := s.st.off
	i := off - s.winOff
	if !s.st.started || i < 0 || i+frameHeaderSize > int64(len(s.win)) {
		return frame{}, false
	}
	fh := parseFrameHeader(s.win[i:])
	size := frameSize(int(fh.length))
	if fh.typ != typeRecord || off+size > s.end || i+size > int64(len(s.win)) ||
		fh.ord != s.st.nextOrd || fh.pos != s.st.nextPos || fh.seq <= s.st.lastSeq {
		return frame{}, false
	}
	f := frame{frameHeader: fh, off: off, payload: s.win[i+frameHeaderSize : i+frameHeaderSize+int64(fh.length)]}
	s.st.off = off + size
	s.st.lastSeq = fh.seq
	s.st.nextOrd = fh.ord + 1
	s.st.nextPos = fh.pos + uint64(fh.length)
	return f, true
}

// accept moves the scan past f.
func (s *scanner) accept(f frame) {
	st := &s.st
	st.started = true
	st.off = f.off + f.size()
	switch f.typ {
	case typeRecord:
		st.lastSeq = f.seq
		st.nextOrd = f.ord + 1
		st.nextPos = f.pos + uint64(f.length)
	case typeGap:
		n, nb := f.gapCounts()
		st.nextOrd = f.ord + n
		st.nextPos = f.pos + nb
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
