package spill

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// numbered checks that the untrimmed records read from l are records from..from+n-1 of
// payload(), numbered first, first+1, ...
func numbered(t *testing.T, l *Log, from, n int, first uint64) {
	t.Helper()
	recs := readAll(t, l)
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Seq != first+uint64(i) || !bytes.Equal(r.Data, payload(from+i)) {
			t.Fatalf("record %d: seq %d %q, want seq %d %q", i, r.Seq, r.Data, first+uint64(i), payload(from+i))
		}
	}
}

// TestRenumber: Renumber shifts the numbers of a record and of every one after it, stored or
// appended later, up or down; Trim and Stats speak the new numbers; the numbering survives a
// clean restart and a crash; the marker moves with the records.
func TestRenumber(t *testing.T) {
	dir := t.TempDir()
	opts := small(WithSync(SyncAlways))
	l := mustOpen(t, dir, opts...)
	for i := range 10 {
		l.Append(payload(i))
	}
	// A Brain ahead of the log (an OS crash cut the directory short): records 4.. become 100..
	if err := l.Renumber(4, 100); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l)
	if recs[3].Seq != 3 || recs[4].Seq != 100 || recs[9].Seq != 105 || l.NextSeq() != 106 {
		t.Fatalf("after Renumber(4, 100): %d %d %d, next %d", recs[3].Seq, recs[4].Seq, recs[9].Seq, l.NextSeq())
	}
	if seq, _ := l.Append(payload(10)); seq != 106 {
		t.Fatalf("Append after Renumber = %d, want 106", seq)
	}
	// Trim takes the new numbers; numbers between the spans (4..99) belong to no record.
	if err := l.Trim(50); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Records != 7 || st.UntrimmedFrom != 100 {
		t.Fatalf("after Trim(50): %+v", st)
	}
	// A hole, closed downward: the records from 103 on become 101...
	if err := l.Renumber(103, 101); !errors.Is(err, ErrSeqOrder) {
		t.Fatalf("Renumber(103, 101) below the record before (102): %v, want ErrSeqOrder", err)
	}
	if err := l.Renumber(103, 103); err != nil {
		t.Fatalf("Renumber to the same number: %v", err)
	}
	if err := l.Renumber(103, 200); err != nil {
		t.Fatal(err)
	}
	numberedFrom := func(l *Log) {
		t.Helper()
		recs := readAll(t, l)
		want := []uint64{100, 101, 102, 200, 201, 202, 203}
		if len(recs) != len(want) {
			t.Fatalf("%d records, want %d", len(recs), len(want))
		}
		for i, r := range recs {
			if r.Seq != want[i] || !bytes.Equal(r.Data, payload(4+i)) {
				t.Fatalf("record %d: seq %d %q, want %d %q", i, r.Seq, r.Data, want[i], payload(4+i))
			}
		}
	}
	numberedFrom(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, opts...)
	numberedFrom(l)
	if rep, err := Inspect(dir); err != nil || rep.NextSeq != 204 || rep.UntrimmedFrom != 100 || rep.Spans != 2 || rep.FirstSeq != 100 || rep.LastSeq != 203 {
		t.Fatalf("Inspect: %+v, %v", rep, err)
	}
	// Renumber at NextSeq: only records appended later; durable before it returns (a crash).
	if err := l.Renumber(204, 1000); err != nil {
		t.Fatal(err)
	}
	l.crash()
	l = mustOpen(t, dir, opts...)
	defer l.Close()
	numberedFrom(l)
	if seq, _ := l.Append(payload(11)); seq != 1000 {
		t.Fatalf("Append after Renumber at NextSeq and a crash = %d, want 1000", seq)
	}
	// The crash set the marker at NextSeq then (1000's record); Renumber moves it with it.
	if u, ok := l.UnsentFrom(); !ok || u != 1000 {
		t.Fatalf("UnsentFrom %d %v, want 1000", u, ok)
	}
	if err := l.Renumber(202, 300); err != nil {
		t.Fatal(err)
	}
	// Numbered anew from 300, the renumbering at 1000 replaced: 1000's record is now 302.
	if u, _ := l.UnsentFrom(); u != 302 {
		t.Fatalf("UnsentFrom after Renumber %d, want 302", u)
	}
	// Numbers no untrimmed record has.
	for _, n := range []uint64{99, 50, 103, 150, 999, 5000} {
		if err := l.Renumber(n, 7000); !errors.Is(err, ErrSeqOrder) {
			t.Errorf("Renumber(%d): %v, want ErrSeqOrder", n, err)
		}
	}
}

// TestRenumberAfterLoss: a record lost to damage leaves a hole in the numbers (Repair's gap
// frame, or the loss Open counts); the consumer closes it with Renumber, and Renumber of the
// lost number itself is refused.
func TestRenumberAfterLoss(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 300)
	frames := layout(t, dir)
	f := bySeg(frames)[1][5]
	flipBit(t, f.seg, f.off+frameHeaderSize+3, 2)
	lost := f.seq - 1
	l := mustOpen(t, dir, WithSegmentSize(8<<10))
	defer l.Close()
	if err := l.Renumber(lost, lost); !errors.Is(err, ErrSeqOrder) {
		t.Fatalf("Renumber of a lost record: %v, want ErrSeqOrder", err)
	}
	if err := l.Renumber(lost+1, lost); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l)
	for i, r := range recs {
		if r.Seq != uint64(i) {
			t.Fatalf("record %d numbered %d: the hole is not closed", i, r.Seq)
		}
	}
	if len(recs) != 299 || l.NextSeq() != 299 {
		t.Fatalf("%d records, next %d", len(recs), l.NextSeq())
	}
}

// TestRenumberSpanLimit: at most WithMaxSpans renumberings are kept; one whose records are all
// trimmed is forgotten, and then Renumber works again.
func TestRenumberSpanLimit(t *testing.T) {
	dir := t.TempDir()
	opts := small(WithMaxSpans(3))
	l := mustOpen(t, dir, opts...)
	defer l.Close()
	to := uint64(1000)
	for i := range 3 {
		l.Append(payload(i))
		if err := l.Renumber(l.NextSeq()-1, to); err != nil {
			t.Fatalf("Renumber %d: %v", i, err)
		}
		to += 1000
	}
	l.Append(payload(3))
	if err := l.Renumber(l.NextSeq()-1, to); !errors.Is(err, ErrTooManySpans) {
		t.Fatalf("Renumber past the limit: %v, want ErrTooManySpans", err)
	}
	recs := readAll(t, l)
	if recs[3].Seq != 3001 {
		t.Fatalf("a refused Renumber changed the numbers: %d", recs[3].Seq)
	}
	if err := l.Trim(recs[1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := l.Renumber(3001, to); err != nil {
		t.Fatalf("Renumber once the oldest spans are trimmed: %v", err)
	}
	if rep, _ := Inspect(dir); rep.Spans > 3 {
		t.Fatalf("%d spans kept, at most 3", rep.Spans)
	}
	if _, err := Open(t.TempDir(), WithMaxSpans(0)); !errors.Is(err, ErrBadOption) {
		t.Fatalf("WithMaxSpans(0): %v", err)
	}
}

// TestNumberingWritesFail: a Renumber or ClearUnsent whose meta file cannot be written fails and
// changes nothing, in memory or on disk.
func TestNumberingWritesFail(t *testing.T) {
	dir := t.TempDir()
	fsys := newFaultFS()
	l := mustOpen(t, dir, small(WithFS(fsys), WithSync(SyncAlways))...)
	for i := range 5 {
		l.Append(payload(i))
	}
	l.crash() // not closed cleanly: the next Open sets the marker
	l = mustOpen(t, dir, small(WithFS(fsys), WithSync(SyncAlways))...)
	defer l.Close()
	before, _ := os.ReadFile(filepath.Join(dir, metaName))
	fsys.setFailSync(true)
	if err := l.Renumber(2, 50); err == nil {
		t.Fatal("Renumber with failing fsyncs succeeded")
	}
	if err := l.ClearUnsent(); err == nil {
		t.Fatal("ClearUnsent with failing fsyncs succeeded")
	}
	fsys.setFailSync(false)
	if after, _ := os.ReadFile(filepath.Join(dir, metaName)); !bytes.Equal(before, after) {
		t.Fatal("the meta file changed")
	}
	numbered(t, l, 0, 5, 0)
	if u, ok := l.UnsentFrom(); !ok || u != 5 {
		t.Fatalf("UnsentFrom %d %v, want 5", u, ok)
	}
}

// machineCrash abandons l as a crash of the machine would, losing whatever was written to the
// segments after they held keep bytes in all (the last segment cut, later ones removed): the
// meta file says the directory is open and keeps its trim point, for the trim points of the
// records lost had not reached it.
func machineCrash(t *testing.T, l *Log, keep int64) {
	t.Helper()
	dir := l.Dir()
	l.crash()
	for _, path := range segFiles(t, dir) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case keep <= 0:
			os.Remove(path)
		case keep < st.Size():
			truncate(t, path, keep)
		}
		keep -= st.Size()
	}
}

// segBytes is the size of dir's segment files.
func segBytes(t *testing.T, dir string) int64 {
	var n int64
	for _, path := range segFiles(t, dir) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// TestUnsentMarkerAfterMachineCrash: a crash of the machine cuts the directory short of records
// the consumer delivered (the Brain has numbers up to 10, the directory keeps 0..2): Open sets
// the unsent marker at NextSeq (3), which the new records 3.. then carry, and persists it; a
// later crash keeps it at its lowest; Renumber moves it with its record; ClearUnsent removes it
// durably; a clean Close sets none.
func TestUnsentMarkerAfterMachineCrash(t *testing.T) {
	dir := t.TempDir()
	opts := small(WithSync(SyncAlways))
	l := mustOpen(t, dir, opts...)
	if _, ok := l.UnsentFrom(); ok {
		t.Fatal("a new directory has the unsent marker")
	}
	for i := range 3 {
		l.Append(payload(i))
	}
	durable := segBytes(t, dir)
	for i := 3; i < 10; i++ {
		l.Append(payload(i)) // delivered, acknowledged through 9, not trimmed yet
	}
	if recs := readAll(t, l); len(recs) != 10 {
		t.Fatalf("%d records", len(recs))
	}
	machineCrash(t, l, durable)

	l = mustOpen(t, dir, opts...)
	marker := func(l *Log, want uint64, wantOK bool) {
		t.Helper()
		if u, ok := l.UnsentFrom(); ok != wantOK || u != want {
			t.Fatalf("UnsentFrom %d %v, want %d %v", u, ok, want, wantOK)
		}
		rep, err := Inspect(l.Dir())
		if err != nil || rep.HasUnsent != wantOK || rep.UnsentFrom != want {
			t.Fatalf("on disk: marker %d %v, want %d %v (%v)", rep.UnsentFrom, rep.HasUnsent, want, wantOK, err)
		}
	}
	marker(l, 3, true)
	if l.NextSeq() != 3 {
		t.Fatalf("NextSeq %d, want 3", l.NextSeq())
	}
	for i := range 3 {
		if seq, _ := l.Append(payload(100 + i)); seq != uint64(3+i) {
			t.Fatalf("Append = %d", seq) // numbers the Brain has processed: the marker says not so
		}
	}
	// A crash that cuts nothing: the marker stays at its lowest, not at the new NextSeq (6).
	l.crash()
	l = mustOpen(t, dir, opts...)
	marker(l, 3, true)
	// A crash that cuts deeper (records 2.. lost): lower.
	machineCrash(t, l, segmentHeaderSize+frameSize(len(payload(0)))+frameSize(len(payload(1))))
	l = mustOpen(t, dir, opts...)
	marker(l, 2, true)
	for i := range 3 {
		l.Append(payload(200 + i))
	}
	// The consumer finds the Brain at 10: it renumbers from the marker up to there.
	if err := l.Renumber(2, 10); err != nil {
		t.Fatal(err)
	}
	marker(l, 10, true)
	if err := l.ClearUnsent(); err != nil {
		t.Fatal(err)
	}
	marker(l, 0, false)
	l.crash() // ClearUnsent was durable; this crash sets a new marker, at NextSeq
	l = mustOpen(t, dir, opts...)
	marker(l, 13, true)
	if err := l.ClearUnsent(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, opts...)
	defer l.Close()
	marker(l, 0, false)
	if rep, _ := Inspect(dir); rep.Clean {
		t.Fatal("an open directory's meta file says clean")
	}
}

// TestSyncNeverNeverClean: under SyncNever nothing is fsynced, so a crash of the machine after
// Close may still cut the directory: it never counts as closed cleanly.
func TestSyncNeverNeverClean(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, small(WithSync(SyncNever))...)
	l.Append(payload(0))
	l.Close()
	if rep, _ := Inspect(dir); rep.Clean {
		t.Fatal("SyncNever closed clean")
	}
	l = mustOpen(t, dir, small(WithSync(SyncNever))...)
	defer l.Close()
	if u, ok := l.UnsentFrom(); !ok || u != 1 {
		t.Fatalf("UnsentFrom %d %v, want 1", u, ok)
	}
}

func TestMetaCodec(t *testing.T) {
	m := meta{version: metaVersion, sourceID: "src", clean: true, trimmedSeq: 7, headOrd: 3, headPos: 300, unsent: 9,
		spans: []seqSpan{{from: 1, num: 0}, {from: 9, num: 100}, {from: 20, num: 50}}}
	b := encodeMeta(m)
	got, err := decodeMeta(b)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	// What an in-place rewrite that could not shrink the file leaves: ignored.
	if got, err := decodeMeta(append(bytes.Clone(b), 1, 2, 3)); err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("with trailing bytes: %+v, %v", got, err)
	}
	for n := range len(b) {
		if _, err := decodeMeta(b[:n]); !errors.Is(err, ErrBadMeta) {
			t.Fatalf("prefix of %d bytes: %v, want ErrBadMeta", n, err)
		}
	}
	for i := range len(b) {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := decodeMeta(c); !errors.Is(err, ErrBadMeta) {
			t.Fatalf("byte %d flipped: %v, want ErrBadMeta", i, err)
		}
	}
}

// TestAppendNotSynced: under SyncAlways, an Append whose fsync fails has stored its record: the
// error says so (ErrNotSynced), the number it returns is the record's, and the next record gets
// the next one. A failed write stores nothing, and its number goes to the next record.
func TestAppendNotSynced(t *testing.T) {
	fsys := newFaultFS()
	l := mustOpen(t, t.TempDir(), small(WithFS(fsys), WithSync(SyncAlways))...)
	defer l.Close()
	l.Append(payload(0))
	fsys.setFailSync(true)
	seq, err := l.Append(payload(1))
	if !errors.Is(err, ErrNotSynced) || seq != 1 {
		t.Fatalf("Append with a failing fsync = %d, %v; want 1, ErrNotSynced", seq, err)
	}
	fsys.setFailSync(false)
	fsys.setBudget(0)
	if _, err := l.Append(payload(2)); err == nil || errors.Is(err, ErrNotSynced) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	fsys.setBudget(-1)
	if seq, err := l.Append(payload(2)); err != nil || seq != 2 {
		t.Fatalf("Append = %d, %v; want 2", seq, err)
	}
	numbered(t, l, 0, 3, 0)
}
