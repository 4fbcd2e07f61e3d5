package spill

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// framePos locates one record on disk.
type framePos struct {
	seg  string // path
	off  int64
	size int64
	seq  uint64
	data []byte
}

// layout lists every record frame of a closed directory, in order.
func layout(t *testing.T, dir string) []framePos {
	t.Helper()
	var out []framePos
	for _, path := range segFiles(t, dir) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		sc := newScanner(f, startState(), st.Size(), 0, true)
		for {
			fr, skipped, _, ok := sc.next()
			if skipped.n > 0 {
				t.Fatalf("layout: damage in a fresh directory: %+v", skipped)
			}
			if !ok {
				break
			}
			if fr.typ == typeRecord {
				out = append(out, framePos{seg: path, off: fr.off, size: fr.size(), seq: fr.seq, data: bytes.Clone(fr.payload)})
			}
		}
		f.Close()
	}
	return out
}

// bySeg groups the frames by segment, in order.
func bySeg(frames []framePos) [][]framePos {
	var out [][]framePos
	for i, f := range frames {
		if i == 0 || f.seg != frames[i-1].seg {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], f)
	}
	return out
}

func flipBit(t *testing.T, path string, off int64, bit uint) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1 << bit
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func zeroRange(t *testing.T, path string, off, n int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[off : off+n])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// overlapping returns the frames that share a byte with [off, off+n) of path.
func overlapping(frames []framePos, path string, off, n int64) []framePos {
	var out []framePos
	for _, f := range frames {
		if f.seg == path && f.off < off+n && off < f.off+f.size {
			out = append(out, f)
		}
	}
	return out
}

// corruption damages a directory and returns the records it destroyed. countable says whether
// the recovery can count them exactly: records cut off the end with their headers leave no
// trace, and are then counted at most.
type corruption struct {
	name      string
	damage    func(t *testing.T, dir string, frames []framePos) (lost []framePos)
	countable bool
	metaLost  bool
}

var corruptions = []corruption{
	{name: "flipped bit in a payload", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		f := bySeg(fr)[1][5]
		flipBit(t, f.seg, f.off+frameHeaderSize+3, 2)
		return []framePos{f}
	}},
	{name: "flipped bit in a length", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		f := bySeg(fr)[1][7]
		flipBit(t, f.seg, f.off+1, 4) // grows the length by 4096: the frame now runs over the next ones
		return []framePos{f}
	}},
	{name: "flipped bit in a sequence number", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		f := bySeg(fr)[2][3]
		flipBit(t, f.seg, f.off+9, 0)
		return []framePos{f}
	}},
	{name: "flipped bit in the last record of a middle segment", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		s := bySeg(fr)[1]
		f := s[len(s)-1]
		flipBit(t, f.seg, f.off+frameHeaderSize, 0)
		return []framePos{f}
	}},
	{name: "two damaged regions in one segment", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		s := bySeg(fr)[2]
		flipBit(t, s[2].seg, s[2].off+frameHeaderSize, 7)
		zeroRange(t, s[6].seg, s[6].off, s[6].size+s[7].size)
		return []framePos{s[2], s[6], s[7]}
	}},
	{name: "zero-filled 1 KiB block", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		seg := bySeg(fr)[1][0].seg
		zeroRange(t, seg, 2048, 1024)
		return overlapping(fr, seg, 2048, 1024)
	}},
	{name: "garbage block", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		seg := bySeg(fr)[2][0].seg
		b, _ := os.ReadFile(seg)
		for i := int64(1000); i < 1600; i++ {
			b[i] = byte(i*7 + 3)
		}
		os.WriteFile(seg, b, 0o644)
		return overlapping(fr, seg, 1000, 600)
	}},
	{name: "deleted middle segment", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		s := bySeg(fr)[2]
		os.Remove(s[0].seg)
		return s
	}},
	{name: "deleted first segment", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		s := bySeg(fr)[0]
		os.Remove(s[0].seg)
		return s
	}},
	{name: "truncated in the middle of the last record", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		f := fr[len(fr)-1]
		truncate(t, f.seg, f.off+frameHeaderSize+5)
		return []framePos{f}
	}},
	{name: "truncated inside the last record's header", countable: false, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		f := fr[len(fr)-1]
		truncate(t, f.seg, f.off+20)
		return []framePos{f}
	}},
	{name: "truncated tail of three records", countable: false, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		// The cut leaves the first of the three whole but for its last byte: one intact header,
		// so one record counted; the two after it leave no trace.
		last := fr[len(fr)-3:]
		truncate(t, last[0].seg, last[0].off+last[0].size-1)
		return last
	}},
	{name: "garbage after the last record", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		f, _ := os.OpenFile(fr[len(fr)-1].seg, os.O_APPEND|os.O_WRONLY, 0)
		f.Write(bytes.Repeat([]byte{0xA5, 0x17, 0x00, 0x42}, 100))
		f.Close()
		return nil
	}},
	{name: "corrupt segment header", countable: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		flipBit(t, bySeg(fr)[1][0].seg, 3, 1)
		return nil
	}},
	{name: "corrupt meta file", countable: true, metaLost: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		flipBit(t, filepath.Join(dir, metaName), 20, 3)
		return nil
	}},
	{name: "deleted meta file", countable: true, metaLost: true, damage: func(t *testing.T, dir string, fr []framePos) []framePos {
		os.Remove(filepath.Join(dir, metaName))
		return nil
	}},
}

// fill writes n records into a fresh directory of 8 KiB segments and closes it.
func fill(t *testing.T, dir string, n int) (sourceID string) {
	t.Helper()
	l := mustOpen(t, dir, WithSegmentSize(8<<10), WithMaxBytes(1<<20), WithSync(SyncNever), WithLogger(testLogger(t)))
	for i := range n {
		if _, err := l.Append(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	id := l.SourceID()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCorruption damages a directory in each named way and checks that Open keeps every intact
// record, counts the losses exactly, and keeps working (append, restart, replay); then that
// Repair keeps every intact record, leaves .broken copies, and leaves a directory that verifies
// and opens without damage.
func TestCorruption(t *testing.T) {
	for _, c := range corruptions {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			id := fill(t, dir, 300)
			frames := layout(t, dir)
			if n := len(bySeg(frames)); n < 4 {
				t.Fatalf("only %d segments", n)
			}
			lost := c.damage(t, dir, frames)
			gone := map[uint64]bool{}
			var lostBytes uint64
			for _, f := range lost {
				gone[f.seq] = true
				lostBytes += uint64(len(f.data))
			}
			var intact []framePos
			for _, f := range frames {
				if !gone[f.seq] {
					intact = append(intact, f)
				}
			}

			// Inspect sees it without changing anything.
			before := dirBytes(t, dir)
			rep, err := Verify(dir)
			if err == nil {
				t.Fatal("Verify found nothing wrong")
			}
			var ce *CorruptionError
			if !c.metaLost && !errors.As(err, &ce) {
				t.Fatalf("Verify error %v is not a *CorruptionError", err)
			}
			if c.metaLost && !errors.Is(err, ErrBadMeta) {
				t.Fatalf("Verify error %v is not ErrBadMeta", err)
			}
			if !bytes.Equal(before, dirBytes(t, dir)) {
				t.Fatal("Verify changed the directory")
			}

			// Repair, straight on the damage (on a copy): every intact record stays.
			repaired := t.TempDir()
			copyDir(t, dir, repaired)
			res, err := Repair(repaired, WithLogger(testLogger(t)))
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			t.Logf("repair of the damage: rewritten %v, truncated %v, broken %v", res.Rewritten, res.Truncated, res.Broken)
			if res.Before.LostRecords != rep.LostRecords {
				t.Errorf("Repair saw %d lost records, Inspect %d", res.Before.LostRecords, rep.LostRecords)
			}
			if r, err := Verify(repaired); err != nil {
				t.Fatalf("Verify after Repair: %v (damage %+v)", err, r.Damage)
			}
			l := mustOpen(t, repaired, WithSegmentSize(8<<10))
			if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Damage) != 0 || rec.TornBytes != 0 {
				t.Errorf("Open after Repair found %+v", rec)
			}
			checkRecords(t, readAll(t, l), intact)
			l.Close()

			// Open recovers, counts, replays the intact records oldest first.
			opts := []Option{WithSegmentSize(8 << 10), WithMaxBytes(1 << 20), WithLogger(testLogger(t))}
			l = mustOpen(t, dir, opts...)
			rec := l.Recovery()
			t.Logf("recovery: %d lost records, %d lost bytes, %d torn bytes, %d damaged regions", rec.LostRecords, rec.LostBytes, rec.TornBytes, len(rec.Damage))
			if c.countable {
				if rec.LostRecords != uint64(len(lost)) || rec.LostBytes != lostBytes {
					t.Errorf("counted %d records / %d bytes lost, want %d / %d; damage %+v", rec.LostRecords, rec.LostBytes, len(lost), lostBytes, rec.Damage)
				}
			} else if rec.LostRecords > uint64(len(lost)) || rec.LostBytes > lostBytes {
				t.Errorf("counted %d records / %d bytes lost, more than the %d / %d destroyed", rec.LostRecords, rec.LostBytes, len(lost), lostBytes)
			}
			if rep.LostRecords != rec.LostRecords || rep.LostBytes != rec.LostBytes {
				t.Errorf("Inspect counted %d/%d, Open %d/%d", rep.LostRecords, rep.LostBytes, rec.LostRecords, rec.LostBytes)
			}
			if c.metaLost {
				if !rec.MetaRebuilt || l.SourceID() != id {
					t.Errorf("meta rebuilt %v, source id %q, want %q", rec.MetaRebuilt, l.SourceID(), id)
				}
			}
			checkRecords(t, readAll(t, l), intact)
			if rep.Records != len(intact) {
				t.Errorf("Inspect counted %d records, want %d", rep.Records, len(intact))
			}

			// It keeps working: append, restart, replay all.
			var added []framePos
			for i := range 40 {
				seq, err := l.Append(payload(1000 + i))
				if err != nil {
					t.Fatal(err)
				}
				// Numbers resume after the last record left: one lost at the end gives its
				// number again (it was never read). Record number = log number - 1 here.
				if seq < intact[len(intact)-1].seq {
					t.Fatalf("sequence went back: %d", seq)
				}
				added = append(added, framePos{seq: seq + 1, data: payload(1000 + i)})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, opts...)
			checkRecords(t, readAll(t, l), append(slices.Clone(intact), added...))
			l.Close()

			// Repair: every intact record stays, the directory verifies, nothing left to count.
			res, err = Repair(dir, WithLogger(testLogger(t)))
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			t.Logf("repair: rewritten %v, truncated %v, broken %v, removed %v", res.Rewritten, res.Truncated, res.Broken, res.Removed)
			for _, b := range res.Broken {
				if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
					t.Errorf("no .broken copy %s: %v", b, err)
				}
			}
			if r, err := Verify(dir); err != nil {
				t.Fatalf("Verify after Repair: %v (damage %+v)", err, r.Damage)
			}
			l = mustOpen(t, dir, opts...)
			if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Damage) != 0 || rec.MetaRebuilt {
				t.Errorf("Open after Repair found %+v", rec)
			}
			checkRecords(t, readAll(t, l), append(slices.Clone(intact), added...))
			if _, err := l.Append([]byte("after repair")); err != nil {
				t.Fatal(err)
			}
			l.Close()
		})
	}
}

// checkRecords compares records read with the expected frames, in order. The directories are
// never renumbered: a record's number is its log number - 1.
func checkRecords(t *testing.T, got []Record, want []framePos) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].seq-1 || !bytes.Equal(got[i].Data, want[i].data) {
			t.Fatalf("record %d: seq %d %q, want seq %d %q", i, got[i].Seq, got[i].Data, want[i].seq, want[i].data)
		}
	}
}

// dirBytes is the content of every file of dir but LOCK, for detecting changes.
func dirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var out []byte
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == lockName {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()...)
		out = append(out, b...)
	}
	return out
}

// TestTornTailIsCut: Open truncates a torn tail and appends after the last good record.
func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 50)
	frames := layout(t, dir)
	last := frames[len(frames)-1]
	truncate(t, last.seg, last.off+frameHeaderSize+2)
	l := mustOpen(t, dir, WithSegmentSize(8<<10))
	if rec := l.Recovery(); rec.TornBytes != frameHeaderSize+2 || rec.LostRecords != 1 {
		t.Fatalf("recovery %+v", rec)
	}
	st, _ := os.Stat(last.seg)
	if st.Size() != last.off {
		t.Fatalf("segment is %d bytes, want %d (cut at the last good record)", st.Size(), last.off)
	}
	l.Append([]byte("next"))
	l.Close()
	l = mustOpen(t, dir, WithSegmentSize(8<<10))
	defer l.Close()
	if rec := l.Recovery(); len(rec.Damage) != 0 {
		t.Fatalf("damage after the cut: %+v", rec.Damage)
	}
	recs := readAll(t, l)
	if len(recs) != 50 || string(recs[49].Data) != "next" {
		t.Fatalf("%d records, last %q", len(recs), recs[len(recs)-1].Data)
	}
}

// TestRepairLocked: Repair refuses a directory a Log has open.
func TestRepairLocked(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	defer l.Close()
	if _, err := Repair(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("Repair of an open directory: %v, want ErrLocked", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEmptySegmentFromInterruptedRotation: a 0-byte segment (created, header never written) is
// removed at Open, not reported as damage.
func TestEmptySegmentFromInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 100)
	segs := segFiles(t, dir)
	empty := filepath.Join(dir, segmentName(uint64(len(segs)+1)))
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	l := mustOpen(t, dir, WithSegmentSize(8<<10))
	defer l.Close()
	if rec := l.Recovery(); len(rec.Damage) != 0 || rec.StaleSegments != 1 || l.Len() != 100 {
		t.Fatalf("recovery %+v, %d records", rec, l.Len())
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Fatalf("empty segment still there: %v", err)
	}
}

// keepFS cannot remove one file.
type keepFS struct {
	OSFS
	keep string // base name
}

func (f keepFS) Remove(name string) error {
	if filepath.Base(name) == f.keep {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrPermission}
	}
	return f.OSFS.Remove(name)
}

// TestNewSegmentPastEveryFile guards the index of a new segment against the segment files Open
// leaves in the directory besides the live ones: a foreign segment (left in place) or a stale
// one that cannot be removed. Taken as the last live segment's index + 1, it could be the name
// of such a file, and creating the segment (O_EXCL) failed at every Append, forever.
func TestNewSegmentPastEveryFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(t *testing.T, dir, name string) []Option
	}{
		{"foreign", func(t *testing.T, dir, name string) []Option {
			b, err := os.ReadFile(filepath.Join(dir, segmentName(1))) // its records go back
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"stale, cannot be removed", func(t *testing.T, dir, name string) []Option {
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return []Option{WithFS(keepFS{keep: name})}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, small(WithSync(SyncAlways))...)
			var want []Record
			for i := range 100 {
				seq, err := l.Append(payload(i))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, Record{seq, payload(i)})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			live := len(segFiles(t, dir))
			left := segmentName(uint64(live + 2)) // what the second new segment would be named
			opts := small(append(tc.leave(t, dir, left), WithSync(SyncAlways))...)
			before, _ := os.ReadFile(filepath.Join(dir, left))

			l = mustOpen(t, dir, opts...)
			rec := l.Recovery()
			if n := len(rec.Foreign) + rec.StaleSegments; n != 1 || l.Stats().Segments != live {
				t.Fatalf("recovery %+v, want %s left and %d live segments", rec, left, live)
			}
			for i := range 200 { // a few new segments
				seq, err := l.Append(payload(i))
				if err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
				want = append(want, Record{seq, payload(i)})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if after, err := os.ReadFile(filepath.Join(dir, left)); err != nil || !bytes.Equal(after, before) {
				t.Fatalf("%s changed: %v", left, err)
			}

			// The segments after the one left behind are read in order after a restart.
			l = mustOpen(t, dir, opts...)
			defer l.Close()
			if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Foreign)+rec.StaleSegments != 1 {
				t.Fatalf("recovery after a restart %+v", rec)
			}
			checkSame(t, readAll(t, l), want)
		})
	}
}

// syncDirFS records the directories SyncDir was called on.
type syncDirFS struct {
	OSFS
	synced *[]string
}

func (f syncDirFS) SyncDir(name string) error {
	*f.synced = append(*f.synced, name)
	return f.OSFS.SyncDir(name)
}

// TestOpenMakesNewDirectoriesDurable: Open fsyncs the parent of every directory it creates, so a
// new spill directory does not vanish at a crash of the machine with the records fsynced into it;
// an existing one costs no such sync.
func TestOpenMakesNewDirectoriesDurable(t *testing.T) {
	root := t.TempDir()
	var synced []string
	dir := filepath.Join(root, "a", "b")
	l, err := Open(dir, WithFS(syncDirFS{synced: &synced}))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, want := range []string{root, filepath.Join(root, "a")} {
		if !slices.Contains(synced, want) {
			t.Errorf("SyncDir(%s) not called creating %s: %v", want, dir, synced)
		}
	}
	synced = nil
	l, err = Open(dir, WithFS(syncDirFS{synced: &synced}))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, d := range synced {
		if d == root || d == filepath.Join(root, "a") {
			t.Errorf("SyncDir(%s) when %s existed", d, dir)
		}
	}
}

// eventFS records, in order, the SyncDir calls and the truncations of files.
type eventFS struct {
	OSFS
	events *[]string
}

func (f eventFS) SyncDir(name string) error {
	*f.events = append(*f.events, "syncdir")
	return f.OSFS.SyncDir(name)
}

func (f eventFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return eventFile{File: file, name: filepath.Base(name), events: f.events}, nil
}

type eventFile struct {
	File
	name   string
	events *[]string
}

func (f eventFile) Truncate(size int64) error {
	*f.events = append(*f.events, "truncate "+f.name)
	return f.File.Truncate(size)
}

// TestRepairKeepsBrokenCopyDurable: Repair makes the .broken copy's name durable (SyncDir) before
// it cuts the damaged segment, so a crash of the machine in between cannot leave neither.
func TestRepairKeepsBrokenCopyDurable(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, WithSync(SyncNever))
	for i := range 5 {
		if _, err := l.Append(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	seg := filepath.Join(dir, segmentName(1))
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	truncate(t, seg, st.Size()-4) // a torn last record

	var events []string
	res, err := Repair(dir, WithFS(eventFS{events: &events}))
	if err != nil || len(res.Truncated) != 1 || len(res.Broken) != 1 {
		t.Fatalf("Repair: %+v, %v", res, err)
	}
	cut := slices.Index(events, "truncate "+segmentName(1))
	if cut < 0 || !slices.Contains(events[:cut], "syncdir") {
		t.Fatalf("events %v: the directory not synced between the .broken copy and the cut", events)
	}
}
