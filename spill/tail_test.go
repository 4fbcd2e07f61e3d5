package spill

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
)

// readCountFS wraps OSFS and counts the bytes read from segment files.
type readCountFS struct {
	OSFS
	mu    sync.Mutex
	bytes int64
}

func (f *readCountFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, segmentExt) {
		return file, err
	}
	return &readCountFile{File: file, fs: f}, nil
}

func (f *readCountFS) read() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}

type readCountFile struct {
	File
	fs *readCountFS
}

func (f *readCountFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.mu.Lock()
	f.fs.bytes += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

// scanOnly makes l trim by scanning the segments only, as before read marks existed (open it
// WithTailBytes(0) too, and it reads only from the files).
func scanOnly(l *Log) *Log {
	l.mu.Lock()
	l.rd.marks.limit = 0
	l.mu.Unlock()
	return l
}

// memDir is a fresh directory on /dev/shm (tmpfs) where there is one, for tests that fsync a
// lot and are about logic, not disks; removed when the test ends.
func memDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "spill-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// segSnapshot is what a Log knows of one segment.
type segSnapshot struct {
	index                     uint64
	size                      int64
	records                   int
	bytes                     int64
	trim                      scanState
	trimRecs                  int
	trimBytes                 int64
	firstSeq, lastSeq, endOrd uint64
}

func segSnapshots(l *Log) []segSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []segSnapshot
	for _, s := range l.segs {
		out = append(out, segSnapshot{s.index, s.size, s.records, s.bytes, s.trim, s.trimRecs, s.trimBytes, s.firstSeq, s.lastSeq, s.endOrd})
	}
	return out
}

// comparableStats are the Stats that do not depend on timing (fsyncs do).
func comparableStats(s Stats) Stats {
	s.Syncs, s.SyncErrors = 0, 0
	return s
}

// checkSameState fails if the two logs differ in their counters or their segments.
func checkSameState(t tb, fast, slow *Log) {
	t.Helper()
	if a, b := comparableStats(fast.Stats()), comparableStats(slow.Stats()); a != b {
		t.Fatalf("stats differ:\nfast %+v\nscan %+v", a, b)
	}
	a, b := segSnapshots(fast), segSnapshots(slow)
	if len(a) != len(b) {
		t.Fatalf("%d segments, scan-only log %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("segment %d differs:\nfast %+v\nscan %+v", i, a[i], b[i])
		}
	}
}

// TestStreamReadsFromTail: in the append, read, trim stream, Read and Trim never read the
// segment files, and the records are those appended.
func TestStreamReadsFromTail(t *testing.T) {
	fsys := &readCountFS{}
	l := mustOpen(t, t.TempDir(), small(WithFS(fsys), WithSync(SyncNever), WithFlushBytes(1000))...)
	defer l.Close()
	next := 0
	for round := range 50 {
		n := 1 + round%17
		for range n {
			if _, err := l.Append(payload(next)); err != nil {
				t.Fatal(err)
			}
			next++
		}
		got, err := l.Read(nil, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("round %d: read %d records, want %d", round, len(got), n)
		}
		for i, r := range got {
			if want := payload(next - n + i); string(r.Data) != string(want) {
				t.Fatalf("round %d: record %d is %q, want %q", round, i, r.Data, want)
			}
		}
		if err := l.Trim(got[n-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Records != 0 || st.Trimmed != uint64(next) || segSnapshots(l)[0].index < 3 {
		t.Fatalf("stats %+v: want nothing pending, %d trimmed, rotations and deletions", st, next)
	}
	if n := fsys.read(); n != 0 {
		t.Fatalf("%d bytes read from the segment files, want 0", n)
	}
}

// TestReadTailMatchesDisk reads the same appends, with random Read sizes, Rewinds and tail
// sizes, from a log that keeps a tail and one that reads its files only: the records are the
// same, and so are the counters.
func TestReadTailMatchesDisk(t *testing.T) {
	for _, tailBytes := range []int64{512, 3000, 64 << 10, DefaultTailBytes} {
		rng := rand.New(rand.NewPCG(uint64(tailBytes), 7))
		fsys := &readCountFS{}
		flush := WithFlushBytes(1 + rng.IntN(2000))
		fast := mustOpen(t, t.TempDir(), small(WithFS(fsys), WithSync(SyncNever), WithTailBytes(tailBytes), flush)...)
		slow := scanOnly(mustOpen(t, t.TempDir(), small(WithSync(SyncNever), WithTailBytes(0), flush)...))
		next := 0
		for range 400 {
			switch op := rng.IntN(10); {
			case op < 5:
				for range rng.IntN(30) {
					rec := payload(next)
					next++
					for _, l := range []*Log{fast, slow} {
						if _, err := l.Append(rec); err != nil {
							t.Fatal(err)
						}
					}
				}
			case op < 8:
				readBoth(t, fast, slow, 1+rng.IntN(40))
			case op < 9:
				fast.Rewind()
				slow.Rewind()
			default:
				k := rng.IntN(40) // records past the trim point, 0 to 39
				if k == 0 {
					break
				}
				upTo := fast.Stats().UntrimmedFrom + uint64(k) - 1
				if err := fast.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				if err := slow.Trim(upTo); err != nil {
					t.Fatal(err)
				}
			}
			checkSameState(t, fast, slow)
		}
		checkSame(t, readAll(t, fast), readAll(t, slow))
		if tailBytes == DefaultTailBytes && fsys.read() != 0 {
			t.Errorf("tail of %d bytes: %d bytes read from the files", tailBytes, fsys.read())
		}
		fast.Close()
		slow.Close()
	}
}

// TestRewindPastTail: after a Rewind to records the tail no longer holds, Read gets them from
// the file, then from the tail again, and Trim counts them the same.
func TestRewindPastTail(t *testing.T) {
	fsys := &readCountFS{}
	l := mustOpen(t, t.TempDir(), WithFS(fsys), WithSync(SyncNever), WithTailBytes(4096), WithFlushBytes(512))
	defer l.Close()
	const n = 300
	for i := range n {
		if _, err := l.Append(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := l.Read(nil, n)
	if err != nil || len(first) != n {
		t.Fatalf("Read: %d records, %v", len(first), err)
	}
	if fsys.read() == 0 {
		t.Fatalf("a tail of 4 KiB holds %d records: some must have come from the file", n)
	}
	l.Rewind()
	again := readAll(t, l)
	checkSame(t, again, first)
	if err := l.Trim(first[n/2].Seq); err != nil {
		t.Fatal(err)
	}
	rest, err := l.Read(nil, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 {
		t.Fatalf("the cursor was past everything; read %d more", len(rest))
	}
	l.Rewind()
	checkSame(t, readAll(t, l), first[n/2+1:])
	if st := l.Stats(); st.Trimmed != n/2+1 || st.Records != n-n/2-1 {
		t.Fatalf("stats %+v: want %d trimmed, %d pending", st, n/2+1, n-n/2-1)
	}
}

// TestTrimMarksMatchScan: Trims at batch ends, inside batches, past what was read and after
// Rewinds, across segment rotations and deletions, leave the same counters and segment state
// whether they use the read marks or scan.
func TestTrimMarksMatchScan(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncNever, SyncAlways} {
		t.Run(policy.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(policy), 11))
			opts := small(WithSync(policy), WithFlushBytes(700))
			fast := mustOpen(t, memDir(t), opts...)
			defer fast.Close()
			slow := scanOnly(mustOpen(t, memDir(t), append(opts, WithTailBytes(0))...))
			defer slow.Close()
			next := 0
			var read []Record
			for range 300 {
				for range rng.IntN(40) {
					rec := payload(next)
					next++
					fast.Append(rec)
					slow.Append(rec)
				}
				for range 1 + rng.IntN(3) {
					read = append(read, readBoth(t, fast, slow, 1+rng.IntN(30))...)
				}
				var upTo uint64
				switch k := rng.IntN(6); {
				case len(read) == 0 || k == 0:
					upTo = fast.NextSeq() - 1 - uint64(rng.IntN(5)) // past what was read
				case k == 1:
					upTo = read[rng.IntN(len(read))].Seq // inside a batch
				default:
					upTo = read[len(read)-1].Seq // the acknowledgement of everything read
				}
				if err := fast.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				if err := slow.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				for len(read) > 0 && read[0].Seq <= upTo {
					read = read[1:]
				}
				if rng.IntN(8) == 0 {
					fast.Rewind()
					slow.Rewind()
					read = nil
				}
				checkSameState(t, fast, slow)
			}
			if st := fast.Stats(); st.Trimmed == 0 || st.Segments == 0 {
				t.Fatalf("stats %+v: nothing trimmed", st)
			}
		})
	}
}

// TestTrimMarksAcrossRestart: records trimmed through the read marks stay trimmed after a
// clean restart and, under SyncAlways with every trim point persisted, after a crash.
func TestTrimMarksAcrossRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		dir := memDir(t)
		opts := small(WithSync(SyncAlways), WithSyncInterval(1)) // every trim point is persisted
		l := mustOpen(t, dir, opts...)
		next := 0
		var trimmed uint64
		for round := range 40 {
			for range 25 {
				if _, err := l.Append(payload(next)); err != nil {
					t.Fatal(err)
				}
				next++
			}
			got, err := l.Read(nil, 20)
			if err != nil || len(got) == 0 {
				t.Fatalf("Read: %d records, %v", len(got), err)
			}
			trimmed = got[len(got)-1].Seq
			if round%3 == 0 {
				trimmed = got[len(got)/2].Seq
			}
			if err := l.Trim(trimmed); err != nil {
				t.Fatal(err)
			}
		}
		want := l.Stats()
		pending := readAll(t, l)
		if crash {
			l.crash()
		} else if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, opts...)
		if rec := l.Recovery(); rec.Records != want.Records || rec.Bytes != want.Bytes || rec.LostRecords != 0 {
			t.Fatalf("crash %v: recovered %+v, want %d records of %d bytes", crash, rec, want.Records, want.Bytes)
		}
		if st := l.Stats(); st.UntrimmedFrom != trimmed+1 {
			t.Fatalf("crash %v: untrimmed from %d, want %d", crash, st.UntrimmedFrom, trimmed+1)
		}
		checkSame(t, readAll(t, l), pending)
		l.Close()
	}
}

// TestReadRecordsStayValid: the records Read hands out keep their bytes while the log goes on
// appending, flushing, trimming and reusing the arrays of the tail that nobody read from.
func TestReadRecordsStayValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	l := mustOpen(t, t.TempDir(), small(WithSync(SyncNever), WithTailBytes(8192), WithFlushBytes(600))...)
	defer l.Close()
	var kept []Record
	var keptIdx []int
	next := 0
	for range 2000 {
		switch rng.IntN(4) {
		case 0, 1:
			if _, err := l.Append(payload(next)); err != nil {
				t.Fatal(err)
			}
			next++
		case 2:
			got, err := l.Read(nil, 1+rng.IntN(5))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				kept = append(kept, r)
				keptIdx = append(keptIdx, int(r.Seq))
			}
		default:
			if rng.IntN(4) == 0 {
				// Skip records unread: the arrays they were in may be used again.
				if err := l.Trim(l.NextSeq() - 1); err != nil {
					t.Fatal(err)
				}
			} else if len(kept) > 0 {
				if err := l.Trim(kept[len(kept)-1].Seq); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(kept) < 100 {
		t.Fatalf("only %d records read", len(kept))
	}
	for i, r := range kept {
		if want := payload(keptIdx[i]); string(r.Data) != string(want) {
			t.Fatalf("record seq %d now holds %q, want %q", r.Seq, r.Data, want)
		}
	}
}

func TestTailBytesOption(t *testing.T) {
	if _, err := Open(t.TempDir(), WithTailBytes(-1)); !errors.Is(err, ErrBadOption) {
		t.Fatalf("WithTailBytes(-1): %v, want ErrBadOption", err)
	}
	fsys := &readCountFS{}
	l := mustOpen(t, t.TempDir(), WithFS(fsys), WithTailBytes(0), WithSync(SyncNever))
	defer l.Close()
	if _, err := l.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Read(nil, 1); err != nil || len(got) != 1 || string(got[0].Data) != "x" {
		t.Fatalf("Read: %v, %v", got, err)
	}
	if fsys.read() == 0 {
		t.Fatal("without a tail, Read must read the file")
	}
}

// TestReadsReleasedByTrim: with WithReadsReleasedByTrim, a record read and not yet trimmed keeps
// its bytes however much is appended, read, rewound and read again meanwhile, while the arrays
// of trimmed records are used again (the stream allocates far fewer arrays than it fills).
func TestReadsReleasedByTrim(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 13))
	l := mustOpen(t, memDir(t), small(WithSync(SyncNever), WithTailBytes(8192), WithFlushBytes(600), WithReadsReleasedByTrim())...)
	defer l.Close()
	var held []Record // read, not yet trimmed: must stay intact
	next, arenas := 0, map[*writeArena]bool{}
	check := func() {
		t.Helper()
		for _, r := range held {
			if want := payload(int(r.Seq)); string(r.Data) != string(want) {
				t.Fatalf("untrimmed record seq %d now holds %q, want %q", r.Seq, r.Data, want)
			}
		}
	}
	for step := range 20_000 {
		switch k := rng.IntN(10); {
		case k < 5:
			if _, err := l.Append(payload(next)); err != nil {
				t.Fatal(err)
			}
			next++
		case k < 8:
			got, err := l.Read(nil, 1+rng.IntN(6))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				if want := payload(int(r.Seq)); string(r.Data) != string(want) {
					t.Fatalf("step %d: read seq %d as %q, want %q", step, r.Seq, r.Data, want)
				}
			}
			held = append(held, got...)
		case k < 9:
			if rng.IntN(8) == 0 {
				l.Rewind() // what was read is read again; the copies held stay valid until trimmed
				continue
			}
			if len(held) > 0 {
				// Trim slowly, from the oldest: records stay held while much is appended.
				upTo := held[rng.IntN(min(len(held), 3))].Seq
				if err := l.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				kept := held[:0]
				for _, r := range held {
					if r.Seq > upTo {
						kept = append(kept, r)
					}
				}
				held = kept
			}
		default:
			check()
		}
		l.mu.Lock()
		if l.tail.arena != nil {
			arenas[l.tail.arena] = true
		}
		l.mu.Unlock()
	}
	check()
	// Every byte written went through an arena; without reuse each would be a new one.
	written := l.Stats().Appended * uint64(frameSize(len(payload(0))))
	if perArena := written / uint64(len(arenas)); perArena < 4*600 {
		t.Fatalf("%d arenas for %d bytes written: arrays are not used again", len(arenas), written)
	}
}

// readBoth reads n records from fast and from slow, checks they are the same, and returns them.
func readBoth(t *testing.T, fast, slow *Log, n int) []Record {
	t.Helper()
	a, err := fast.Read(nil, n)
	if err != nil {
		t.Fatal(err)
	}
	b, err := slow.Read(nil, n)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, a, b)
	return a
}

// TestTrimFreesSeveralArenas: when one Trim releases several lent arenas at once (an ack that
// covers batches read from arenas the tail has let go of meanwhile), the writes that follow use
// them all again before taking a new one. (With one spare kept, only the first was used again:
// of the 190 arenas a 1M-record acked send took, 83 were new.)
func TestTrimFreesSeveralArenas(t *testing.T) {
	// Arenas of 2 KiB (a quarter of the tail), flushed every 600 bytes.
	l := mustOpen(t, memDir(t), small(WithSync(SyncNever), WithTailBytes(8192), WithFlushBytes(600), WithReadsReleasedByTrim())...)
	defer l.Close()
	current := func() *writeArena {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.tail.arena
	}
	retired := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.tail.retired)
	}
	// Append and read (lending every arena), trimming nothing, until the tail has let go of
	// three lent arenas; then trim through everything read, which frees those three.
	next, lastRead := 0, uint64(0)
	before := map[*writeArena]bool{}
	for retired() < 3 {
		if _, err := l.Append(payload(next)); err != nil {
			t.Fatal(err)
		}
		next++
		got, err := l.Read(nil, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("Read: %v, %v", got, err)
		}
		lastRead = got[0].Seq
		before[current()] = true
		if next > 10_000 {
			t.Fatal("the tail let go of no lent arena")
		}
	}
	if err := l.Trim(lastRead); err != nil {
		t.Fatal(err)
	}
	if n := retired(); n != 0 {
		t.Fatalf("%d arenas still retired after a Trim through every record read", n)
	}
	// Appending on, with no Trim that could free anything more, the next three arenas the
	// write buffer takes are freed ones.
	var taken []*writeArena
	for len(taken) < 4 {
		if _, err := l.Append(payload(next)); err != nil {
			t.Fatal(err)
		}
		next++
		if a := current(); len(taken) == 0 || taken[len(taken)-1] != a {
			taken = append(taken, a)
		}
	}
	for i, a := range taken[1:] { // taken[0] is the arena the buffer was already in
		if !before[a] {
			t.Fatalf("arena %d taken after the Trim is a new one, not one the Trim freed", i+1)
		}
	}
}
