package spill

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// encodeMetaV1 is a version-1 meta file, as the code before version 2 wrote it.
func encodeMetaV1(sourceID string, nextSeq, trimmedSeq, headOrd, headPos uint64) []byte {
	b := make([]byte, metaV1Size)
	copy(b[0:8], metaMagic)
	binary.LittleEndian.PutUint16(b[8:10], 1)
	b[10] = byte(len(sourceID))
	binary.LittleEndian.PutUint64(b[16:24], nextSeq)
	binary.LittleEndian.PutUint64(b[24:32], trimmedSeq)
	binary.LittleEndian.PutUint64(b[32:40], headOrd)
	binary.LittleEndian.PutUint64(b[40:48], headPos)
	copy(b[56:56+MaxSourceIDLen], sourceID)
	binary.LittleEndian.PutUint32(b[12:16], skipCRC(b, 12))
	return b
}

// v1Payload is the record stored under log number seq in a version-1 test directory.
func v1Payload(seq uint64) []byte { return fmt.Appendf(nil, "log-%d", seq) }

// writeV1Dir writes a version-1 directory: a record under each log number of seqs, perSeg per
// segment, the meta file, and the numbering file (none if doc is nil).
func writeV1Dir(t tb, dir, sourceID string, seqs []uint64, perSeg int, nextSeq, trimmedSeq uint64, doc *numberingDoc) {
	t.Helper()
	var ord, pos uint64
	for i := 0; i < len(seqs); i += perSeg {
		index := uint64(i/perSeg + 1)
		b := encodeSegmentHeader(index, sourceID)
		for _, seq := range seqs[i:min(i+perSeg, len(seqs))] {
			p := v1Payload(seq)
			b = appendFrame(b, typeRecord, seq, ord, pos, p)
			ord++
			pos += uint64(len(p))
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(index)), b, 0o644); err != nil {
			t.Fatalf("%v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, metaName), encodeMetaV1(sourceID, nextSeq, trimmedSeq, 0, 0), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	if doc != nil {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, numberingFile), b, 0o644); err != nil {
			t.Fatalf("%v", err)
		}
	}
}

// seqTierRef is agent.SeqTier with the connection manager's renumbering (fsm's deltaFor) as they
// were before version 2, reduced to their numbering: what a restarted agent would have sent each
// record under.
type seqTierRef struct {
	spans    [][2]uint64 // SeqTier's (LogSeq, WireSeq)
	manager  [][2]uint64 // fsm.Renumbering (FromSeq, Delta)
	next     uint64      // SeqTier's next number
	unsent   *uint64
	firstLog uint64 // records below it are trimmed by SeqTier.Read
}

// newSeqTierRef is NewSeqTier on a log whose highest number stored or trimmed is last and whose
// NextSeq is logNext.
func newSeqTierRef(doc *numberingDoc, last, logNext uint64) *seqTierRef {
	r := &seqTierRef{spans: [][2]uint64{{1, 0}}}
	if doc != nil {
		r.spans, r.manager, r.unsent = doc.Tier, doc.Manager, doc.UnsentFrom
	}
	k := sort.Search(len(r.spans), func(i int) bool { return r.spans[i][0] > last })
	if k == 0 {
		r.spans = r.spans[:1]
		r.next = r.spans[0][1]
	} else {
		r.spans = r.spans[:k]
		r.next = r.tier(last) + 1
	}
	if logNext > last+1 && (r.unsent == nil || r.next < *r.unsent) {
		n := r.next
		r.unsent = &n
	}
	r.firstLog = r.spans[0][0]
	return r
}

// tier is SeqTier.wire.
func (r *seqTierRef) tier(seq uint64) uint64 {
	last := r.spans[len(r.spans)-1]
	if seq >= last[0] {
		return last[1] + (seq - last[0])
	}
	i := sort.Search(len(r.spans), func(i int) bool { return r.spans[i][0] > seq }) - 1
	if i < 0 {
		i = 0
	}
	return r.spans[i][1] + (seq - r.spans[i][0])
}

// wire is fsm's number for SeqTier number t.
func (r *seqTierRef) wire(t uint64) uint64 {
	i := sort.Search(len(r.manager), func(i int) bool { return r.manager[i][0] > t })
	if i == 0 {
		return t
	}
	return t - r.manager[i-1][1]
}

// TestConvertV1 is the conversion's property: for random version-1 directories (log numbers with
// lease jumps, trim points, SeqTier spans as SeqTier saved them plus spans for records never
// stored, the manager's renumbering spans, an unsent marker, clean or not), every untrimmed record
// gets the number SeqTier and the manager would have given it, NextSeq is the number they would
// have given the next record, and the unsent marker marks the records theirs did.
func TestConvertV1(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 60).Draw(t, "records")
		// SeqTier's history: dense numbers from w0, a new span wherever the log numbers jump.
		var seqs []uint64
		w0 := rapid.Uint64Range(0, 5).Draw(t, "w0")
		tier := [][2]uint64{{1, w0}}
		seq := uint64(1)
		for i := range n {
			if i > 0 && rapid.IntRange(0, 5).Draw(t, "jump") == 0 {
				seq += rapid.Uint64Range(1, 1<<20).Draw(t, "lease")
				tier = append(tier, [2]uint64{seq, w0 + uint64(i)})
			}
			seqs = append(seqs, seq)
			seq++
		}
		last := uint64(0)
		if n > 0 {
			last = seqs[n-1]
		}
		trimmed := uint64(0)
		if n > 0 && rapid.Bool().Draw(t, "trim") {
			trimmed = seqs[rapid.IntRange(0, n-1).Draw(t, "trimmedIdx")]
		}
		// SeqTier dropped the spans wholly below its oldest untrimmed record (a trim point that
		// may not have reached the meta file before a crash), and saved spans for records a
		// crash took before they were stored.
		if drop := rapid.IntRange(0, len(tier)-1).Draw(t, "drop"); drop > 0 && tier[drop][0] <= trimmed+1 {
			tier = tier[drop:]
		}
		if rapid.IntRange(0, 3).Draw(t, "unstored") == 0 {
			tier = append(tier, [2]uint64{last + rapid.Uint64Range(1, 100).Draw(t, "unstoredAt"), w0 + uint64(n) + 7})
		}
		var mgr [][2]uint64
		from := uint64(0)
		for range rapid.IntRange(0, 4).Draw(t, "managerSpans") {
			from += rapid.Uint64Range(1, 20).Draw(t, "managerGap")
			mgr = append(mgr, [2]uint64{from, rapid.Uint64Range(0, from).Draw(t, "delta")})
		}
		var doc *numberingDoc
		if rapid.IntRange(0, 4).Draw(t, "withFile") != 0 {
			doc = &numberingDoc{Version: 1, SourceID: "src", Tier: tier, Manager: mgr}
			if rapid.Bool().Draw(t, "unsent") {
				u := w0 + rapid.Uint64Range(0, uint64(n)+3).Draw(t, "unsentAt")
				doc.UnsentFrom = &u
			}
		}
		logNext := max(last, trimmed) + 1
		if rapid.Bool().Draw(t, "crashed") {
			logNext += rapid.Uint64Range(1, 1<<20).Draw(t, "leaseLeft")
		}
		dir := tempDir(t)
		writeV1Dir(t, dir, "src", seqs, rapid.IntRange(1, 20).Draw(t, "perSeg"), logNext, trimmed, doc)
		ref := newSeqTierRef(doc, max(last, trimmed), logNext)

		l, err := Open(dir, WithSync(SyncNever))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		recs := readAll(t, l)
		var want []uint64 // the untrimmed log numbers, as SeqTier's Read would hand them out
		for _, s := range seqs {
			if s > trimmed && s >= ref.firstLog {
				want = append(want, s)
			}
		}
		if len(recs) != len(want) {
			t.Fatalf("%d records, want %d", len(recs), len(want))
		}
		for i, r := range recs {
			s := want[i]
			if !bytes.Equal(r.Data, v1Payload(s)) {
				t.Fatalf("record %d is %q, want log number %d", i, r.Data, s)
			}
			if w := ref.wire(ref.tier(s)); r.Seq != w {
				t.Fatalf("log number %d numbered %d, want %d (tier %d)", s, r.Seq, w, ref.tier(s))
			}
			// The marker marks the records SeqTier's did.
			if ref.unsent != nil && (ref.tier(s) >= *ref.unsent) != (s >= l.num.unsent) {
				t.Fatalf("log number %d (tier %d): at or past the marker %v, SeqTier's (%d) %v", s, ref.tier(s), s >= l.num.unsent, *ref.unsent, ref.tier(s) >= *ref.unsent)
			}
		}
		if next := l.NextSeq(); next != ref.wire(ref.next) {
			t.Fatalf("NextSeq %d, want %d", next, ref.wire(ref.next))
		}
		if _, ok := l.UnsentFrom(); ok != (ref.unsent != nil) {
			t.Fatalf("UnsentFrom set %v, SeqTier's %v", ok, ref.unsent != nil)
		}
		if ref.unsent != nil && *ref.unsent == ref.next && len(mgr) == 0 {
			if u, _ := l.UnsentFrom(); u != ref.next {
				t.Fatalf("UnsentFrom %d, want %d", u, ref.next)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, numberingFile)); !os.IsNotExist(err) {
			t.Fatalf("%s not removed: %v", numberingFile, err)
		}
		if _, err := os.Stat(filepath.Join(dir, metaName+brokenExt)); err != nil {
			t.Fatalf("no copy of the version-1 meta file: %v", err)
		}
		// It goes on: the next record gets NextSeq.
		next := l.NextSeq()
		if seq, err := l.Append([]byte("after")); err != nil || seq != next {
			t.Fatalf("Append = %d, %v; want %d", seq, err, next)
		}
	})
}

// TestConvertV1Interrupted: a conversion a crash interrupted after the new meta file was written
// left the numbering file: the next Open removes it and does not fold it again.
func TestConvertV1Interrupted(t *testing.T) {
	dir := t.TempDir()
	seqs := []uint64{1, 2, 3, 1<<20 + 10, 1<<20 + 11}
	doc := &numberingDoc{Version: 1, SourceID: "src", Tier: [][2]uint64{{1, 0}, {1<<20 + 10, 3}}, Manager: [][2]uint64{{4, 1}}}
	writeV1Dir(t, dir, "src", seqs, 2, 1<<21, 0, doc)
	saved, err := os.ReadFile(filepath.Join(dir, numberingFile))
	if err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, dir)
	want := []uint64{0, 1, 2, 3, 3} // the manager's span from 4: 4 -> 3
	check := func(l *Log) {
		t.Helper()
		recs := readAll(t, l)
		if len(recs) != len(want) {
			t.Fatalf("%d records", len(recs))
		}
		for i, r := range recs {
			if r.Seq != want[i] {
				t.Fatalf("record %d numbered %d, want %d", i, r.Seq, want[i])
			}
		}
	}
	check(l)
	if u, ok := l.UnsentFrom(); !ok || u != 4 {
		t.Fatalf("UnsentFrom %d %v: the version-1 directory was not closed cleanly", u, ok)
	}
	l.crash()
	if err := os.WriteFile(filepath.Join(dir, numberingFile), saved, 0o644); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir)
	defer l.Close()
	check(l)
	if _, err := os.Stat(filepath.Join(dir, numberingFile)); !os.IsNotExist(err) {
		t.Fatalf("%s left: %v", numberingFile, err)
	}
}

// TestConvertV1RefusesBadNumberingFile: a numbering file that cannot be folded (another source,
// invalid) makes Open fail with ErrNumberingFile and leaves the directory as it was.
func TestConvertV1RefusesBadNumberingFile(t *testing.T) {
	for name, content := range map[string]string{
		"other source": `{"version":1,"source_id":"other","tier":[[1,0]],"manager":[]}`,
		"not JSON":     `{"version":1,`,
		"version":      `{"version":2,"source_id":"src","tier":[[1,0]]}`,
		"no spans":     `{"version":1,"source_id":"src","tier":[]}`,
		"out of order": `{"version":1,"source_id":"src","tier":[[5,0],[1,4]]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeV1Dir(t, dir, "src", []uint64{1, 2, 3}, 10, 4, 0, nil)
			if err := os.WriteFile(filepath.Join(dir, numberingFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			before := dirBytes(t, dir)
			if _, err := Open(dir); !errors.Is(err, ErrNumberingFile) {
				t.Fatalf("Open: %v, want ErrNumberingFile", err)
			}
			if !bytes.Equal(before, dirBytes(t, dir)) {
				t.Fatal("the refused Open changed the directory")
			}
		})
	}
}

// TestConvertV1WithoutNumberingFile: a version-1 directory of the unacknowledged modes (no
// numbering file) is numbered log number - 1, as SeqTier would have, its lease jumps kept.
func TestConvertV1WithoutNumberingFile(t *testing.T) {
	dir := t.TempDir()
	writeV1Dir(t, dir, "src", []uint64{1, 2, 100}, 10, 101, 1, nil)
	l := mustOpen(t, dir)
	defer l.Close()
	recs := readAll(t, l)
	if len(recs) != 2 || recs[0].Seq != 1 || recs[1].Seq != 99 || l.NextSeq() != 100 {
		t.Fatalf("records %v, next %d", recs, l.NextSeq())
	}
	if _, ok := l.UnsentFrom(); ok {
		t.Fatal("a cleanly closed version-1 directory got the unsent marker")
	}
	rep, err := Inspect(dir)
	if err != nil || rep.Version != metaVersion || rep.SourceID != "src" {
		t.Fatalf("Inspect: %+v, %v", rep, err)
	}
	for _, r := range recs {
		if want := strconv.Quote(string(v1Payload(r.Seq + 1))); strconv.Quote(string(r.Data)) != want {
			t.Fatalf("record %d is %q", r.Seq, r.Data)
		}
	}
}
