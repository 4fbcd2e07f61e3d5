package spill

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// validSegment returns the bytes of a real segment holding n records (and, if withGap, a gap
// frame as Repair writes).
func validSegment(t testing.TB, n int, withGap bool) []byte {
	t.Helper()
	b := encodeSegmentHeader(1, "fuzz-source")
	var ord, pos uint64
	for i := range n {
		if withGap && i == n/2 {
			b = appendGap(b, uint64(i), ord, pos, 3, 120)
			ord, pos = ord+3, pos+120
		}
		p := payload(i)
		b = appendFrame(b, typeRecord, uint64(i+1), ord, pos, p)
		ord++
		pos += uint64(len(p))
	}
	return b
}

// checkScan scans seg and checks that every frame found re-encodes to the very bytes it was
// read from and decodes again to the same frame. It returns the records found.
func checkScan(t *testing.T, seg []byte) []Record {
	sc := newScanner(bytes.NewReader(seg), startState(), int64(len(seg)), 64, false)
	var recs []Record
	for {
		f, skipped, _, ok := sc.next()
		if skipped.n < 0 || skipped.n > 0 && (skipped.off < 0 || skipped.off+skipped.n > int64(len(seg))) {
			t.Fatalf("skipped span %+v outside %d bytes", skipped, len(seg))
		}
		if !ok {
			break
		}
		enc := appendFrame(nil, f.typ, f.seq, f.ord, f.pos, f.payload)
		end := f.off + frameHeaderSize + int64(f.length)
		if !bytes.Equal(enc[:frameHeaderSize+f.length], seg[f.off:end]) {
			t.Fatalf("frame at %d does not re-encode identically", f.off)
		}
		fh, err := decodeFrameHeader(enc)
		if err != nil || fh != f.frameHeader {
			t.Fatalf("re-encoded frame decodes to %+v, %v; want %+v", fh, err, f.frameHeader)
		}
		if f.typ == typeRecord {
			recs = append(recs, Record{Seq: f.seq, Data: bytes.Clone(f.payload)})
		}
	}
	if sc.err != nil {
		t.Fatalf("read error from memory: %v", sc.err)
	}
	return recs
}

// FuzzRecover feeds arbitrary bytes as a segment file to the decoder and to a whole Open and
// replay: neither panics, every frame read back re-encodes identically, and the log replays
// exactly the records the decoder found (fewer only if the header claims another index).
func FuzzRecover(f *testing.F) {
	seg := validSegment(f, 8, false)
	f.Add(seg)
	f.Add(validSegment(f, 8, true))
	f.Add(seg[:len(seg)-13])
	f.Add(seg[:segmentHeaderSize+20])
	flipped := bytes.Clone(seg)
	flipped[segmentHeaderSize+frameHeaderSize+2] ^= 0x10
	f.Add(flipped)
	zeroed := bytes.Clone(seg)
	clear(zeroed[200:400])
	f.Add(zeroed)
	f.Add([]byte{})
	f.Add(make([]byte, 512))
	base := f.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		// tmpfs: the fsyncs of Open and Close cost nothing there.
		if d, err := os.MkdirTemp("/dev/shm", "spill-fuzz-"); err == nil {
			base = d
			f.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		found := checkScan(t, data)

		n++
		dir := filepath.Join(base, "d", string(rune('a'+n%26))+string(rune('a'+n/26%26)))
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(dir); err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		l, err := Open(dir, WithSync(SyncNever), WithSegmentSize(64<<10))
		if err != nil {
			t.Fatalf("Open refused arbitrary bytes: %v", err)
		}
		got := readAll(t, l)
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if len(data) >= frameHeaderSize+segmentHeaderSize {
			// The records past the header are the ones the decoder finds there, numbered by
			// the meta file Open rebuilt: log number - 1.
			past := checkScan(t, append(make([]byte, segmentHeaderSize), data[segmentHeaderSize:]...))
			if len(got) != len(past) {
				t.Fatalf("replayed %d records, the decoder finds %d past the header (%d in all)", len(got), len(past), len(found))
			}
			for i := range got {
				if got[i].Seq != past[i].Seq-1 || !bytes.Equal(got[i].Data, past[i].Data) {
					t.Fatalf("record %d differs", i)
				}
			}
		}
	})
}

// TestEveryPrefix: every prefix of a valid segment yields the frames wholly inside it, and a
// cut inside a frame is reported as io.ErrUnexpectedEOF.
func TestEveryPrefix(t *testing.T) {
	seg := validSegment(t, 6, true)
	var ends []int64
	sc := newScanner(bytes.NewReader(seg), startState(), int64(len(seg)), 0, false)
	for {
		f, _, _, ok := sc.next()
		if !ok {
			break
		}
		ends = append(ends, f.off+f.size())
	}
	for p := segmentHeaderSize; p <= len(seg); p++ {
		sc := newScanner(bytes.NewReader(seg[:p]), startState(), int64(p), 0, false)
		frames := 0
		var tail span
		for {
			_, skipped, _, ok := sc.next()
			if !ok {
				tail = skipped
				break
			}
			if skipped.n != 0 {
				t.Fatalf("prefix %d: damage %+v before a valid frame", p, skipped)
			}
			frames++
		}
		want := 0
		for want < len(ends) && ends[want] <= int64(p) {
			want++
		}
		if frames != want {
			t.Fatalf("prefix %d: %d frames, want %d", p, frames, want)
		}
		atBoundary := p == segmentHeaderSize || (want > 0 && ends[want-1] == int64(p))
		if atBoundary && tail.n != 0 {
			t.Fatalf("prefix %d at a frame boundary reports damage %+v", p, tail)
		}
		if !atBoundary && (tail.n == 0 || !errors.Is(tail.err, io.ErrUnexpectedEOF)) {
			t.Fatalf("prefix %d cuts a frame: tail %+v, want io.ErrUnexpectedEOF", p, tail)
		}
	}
}
