package spill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAppendReadTrimAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := fmt.Sprintf("%s/%v", dir, policy)
			opts := small(WithSync(policy), WithSyncInterval(5*time.Millisecond))
			l := mustOpen(t, dir, opts...)
			id := l.SourceID()
			var want []Record
			for i := range 500 {
				seq, err := l.Append(payload(i))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, Record{seq, payload(i)})
			}
			checkSame(t, readAll(t, l), want)
			if err := l.Trim(want[299].Seq); err != nil {
				t.Fatal(err)
			}
			want = want[300:]
			if l.Len() != 200 || l.Stats().Segments >= 14 {
				t.Fatalf("after trim: %d records, %d segments", l.Len(), l.Stats().Segments)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, opts...)
			defer l.Close()
			if l.SourceID() != id {
				t.Fatalf("source id changed across a restart: %q then %q", id, l.SourceID())
			}
			checkSame(t, readAll(t, l), want)
			seq, _ := l.Append([]byte("after restart"))
			if seq != want[len(want)-1].Seq+1 {
				t.Fatalf("after a clean restart the sequence goes on at %d, want %d", seq, want[len(want)-1].Seq+1)
			}
		})
	}
}

// TestNumberingAfterCrash: numbers are dense, and after a crash they resume right after the
// last record stored: under SyncAlways every number an Append returned is kept; under
// SyncInterval the records lost with the write buffer were never read, and their numbers are
// given again. (It replaces TestSequenceAfterCrashNeverGoesBack and TestAppendSeqOfReserved:
// the sequence lease, Reserve and AppendSeq are gone.)
func TestNumberingAfterCrash(t *testing.T) {
	dir := t.TempDir()
	opts := small(WithSync(SyncAlways))
	l := mustOpen(t, dir, opts...)
	for i := range 30 {
		if seq, err := l.Append(payload(i)); err != nil || seq != uint64(i) {
			t.Fatalf("Append %d = %d, %v; want dense numbers from 0", i, seq, err)
		}
	}
	l.crash()
	l = mustOpen(t, dir, opts...)
	if seq, _ := l.Append([]byte("x")); seq != 30 {
		t.Fatalf("after a crash Append gave %d, want 30", seq)
	}
	l.Close()

	dir = t.TempDir()
	opts = small(WithSync(SyncInterval), WithSyncInterval(time.Hour))
	l = mustOpen(t, dir, opts...)
	for i := range 10 {
		l.Append(payload(i))
	}
	if recs, err := l.Read(nil, 100); err != nil || len(recs) != 10 {
		t.Fatalf("Read: %d records, %v", len(recs), err) // Read writes the buffer first
	}
	for i := range 5 {
		l.Append(payload(10 + i)) // buffered, never read: lost with the crash
	}
	if n := l.NextSeq(); n != 15 {
		t.Fatalf("NextSeq %d, want 15", n)
	}
	l.crash()
	l = mustOpen(t, dir, opts...)
	defer l.Close()
	if n, st := l.NextSeq(), l.Stats(); n != 10 || st.Records != 10 || st.UntrimmedFrom != 0 {
		t.Fatalf("after the crash NextSeq %d, stats %+v; want 10 records, next 10", n, st)
	}
}

func TestOverflowDropOldest(t *testing.T) {
	l := mustOpen(t, t.TempDir(), WithSegmentSize(4096), WithMaxBytes(4*4096), WithOverflow(DropOldest))
	defer l.Close()
	var seqs []uint64
	for i := range 2000 {
		seq, err := l.Append(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	st := l.Stats()
	if st.DiskBytes > 4*4096 {
		t.Fatalf("%d bytes on disk, cap %d", st.DiskBytes, 4*4096)
	}
	if st.Dropped == 0 || int(st.Dropped)+st.Records != 2000 {
		t.Fatalf("dropped %d + kept %d != 2000", st.Dropped, st.Records)
	}
	recs := readAll(t, l)
	if recs[len(recs)-1].Seq != seqs[len(seqs)-1] || recs[0].Seq != seqs[st.Dropped] {
		t.Fatalf("kept %d..%d, want the newest from %d", recs[0].Seq, recs[len(recs)-1].Seq, seqs[st.Dropped])
	}
	var b uint64
	for i := range int(st.Dropped) {
		b += uint64(len(payload(i)))
	}
	if st.DroppedBytes != b {
		t.Fatalf("dropped bytes %d, want %d", st.DroppedBytes, b)
	}
}

func TestOverflowRefuse(t *testing.T) {
	l := mustOpen(t, t.TempDir(), WithSegmentSize(4096), WithMaxBytes(3*4096), WithOverflow(Refuse))
	defer l.Close()
	n := 0
	var err error
	for ; n < 2000; n++ {
		if _, err = l.Append(payload(n)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append at the cap: %v, want ErrFull", err)
	}
	if l.Len() != n || l.Stats().Refused != 1 {
		t.Fatalf("%d records kept of %d, stats %+v", l.Len(), n, l.Stats())
	}
	// Delivering frees space.
	recs := readAll(t, l)
	if err := l.Trim(recs[len(recs)/2].Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(payload(n)); err != nil {
		t.Fatalf("Append after a trim freed space: %v", err)
	}
}

func TestDrain(t *testing.T) {
	l := mustOpen(t, t.TempDir(), small()...)
	defer l.Close()
	for i := range 100 {
		l.Append(payload(i))
	}
	fail := errors.New("connection lost")
	var got []Record
	calls := 0
	deliver := func(b []Record) error {
		calls++
		if calls == 3 {
			return fail
		}
		got = append(got, b...)
		return nil
	}
	n, err := l.Drain(context.Background(), 10, deliver)
	if !errors.Is(err, fail) || n != 20 || l.Len() != 80 {
		t.Fatalf("Drain = %d, %v; %d left", n, err, l.Len())
	}
	n, err = l.Drain(context.Background(), 10, deliver)
	if err != nil || n != 80 || l.Len() != 0 {
		t.Fatalf("second Drain = %d, %v; %d left", n, err, l.Len())
	}
	for i, r := range got {
		if !bytes.Equal(r.Data, payload(i)) {
			t.Fatalf("record %d out of order", i)
		}
	}
}

func TestRewindRereads(t *testing.T) {
	l := mustOpen(t, t.TempDir(), small()...)
	defer l.Close()
	for i := range 10 {
		l.Append(payload(i))
	}
	a, _ := l.Read(nil, 4)
	b, _ := l.Read(nil, 4)
	l.Rewind()
	c, _ := l.Read(nil, 8)
	if a[0].Seq != c[0].Seq || b[3].Seq != c[7].Seq {
		t.Fatal("Rewind did not go back to the oldest untrimmed record")
	}
	l.Trim(c[5].Seq)
	l.Rewind()
	d, _ := l.Read(nil, 1)
	if d[0].Seq != c[6].Seq {
		t.Fatalf("after Trim, Rewind starts at %d, want %d", d[0].Seq, c[6].Seq)
	}
}

func TestConcurrentAppends(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, WithSync(policy), WithSyncInterval(time.Millisecond), WithSegmentSize(16<<10))
			var wg sync.WaitGroup
			const writers, each = 8, 200
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						if _, err := l.Append(fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			// A reader trims while the writers write.
			done := make(chan struct{})
			read := 0
			go func() {
				defer close(done)
				for read < writers*each {
					recs, err := l.Read(nil, 64)
					if err != nil {
						t.Error(err)
						return
					}
					if len(recs) > 0 {
						read += len(recs)
						l.Trim(recs[len(recs)-1].Seq)
					} else {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			wg.Wait()
			<-done
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if read != writers*each {
				t.Fatalf("read %d", read)
			}
			l = mustOpen(t, dir)
			defer l.Close()
			if l.Len() != 0 {
				t.Fatalf("%d records left after trimming everything", l.Len())
			}
		})
	}
}

func TestErrors(t *testing.T) {
	l := mustOpen(t, t.TempDir(), small(WithMaxRecordSize(100))...)
	if _, err := l.Append(make([]byte, 101)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	l.Close()
	if _, err := l.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, opt := range []Option{WithSegmentSize(100), WithMaxBytes(5000), WithSyncInterval(0), WithSourceID(strings.Repeat("x", 65)), WithMaxRecordSize(1 << 25)} {
		if _, err := Open(t.TempDir(), opt); !errors.Is(err, ErrBadOption) {
			t.Errorf("bad option accepted: %v", err)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); !errors.Is(err, ErrBadOption) {
		t.Error("ParseSyncPolicy accepted nonsense")
	}
}

func TestSourceIDOption(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, WithSourceID("edge-42"))
	l.Close()
	l = mustOpen(t, dir, WithSourceID("ignored-for-an-existing-directory"))
	defer l.Close()
	if l.SourceID() != "edge-42" {
		t.Fatalf("source id %q", l.SourceID())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	dir := t.TempDir()
	l := mustOpen(t, dir, small(WithRegisterer(reg))...)
	for i := range 10 {
		l.Append(payload(i))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if m.GetLabel()[0].GetValue() != dir {
			t.Fatalf("%s labelled %v", mf.GetName(), m.GetLabel())
		}
		values[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if len(mfs) < 10 || values["pharos_spill_records"] != 10 || values["pharos_spill_appended_records_total"] != 10 {
		t.Fatalf("%d metrics: %v", len(mfs), values)
	}
	l.Close()
	// Closed logs unregister, so the directory can be opened again with the same registry.
	l = mustOpen(t, dir, small(WithRegisterer(reg))...)
	l.Close()
}

// TestIntervalGroupCommit drives the group commit with a manual clock.
func TestIntervalGroupCommit(t *testing.T) {
	clk := &manualClock{c: make(chan time.Time)}
	l := mustOpen(t, t.TempDir(), small(WithSync(SyncInterval), WithClock(clk))...)
	defer l.Close()
	l.Append([]byte("a"))
	if st := l.Stats(); st.Syncs != 0 {
		t.Fatalf("synced before the tick: %+v", st)
	}
	clk.c <- time.Now()
	clk.c <- time.Now() // the second send returns once the first tick's sync is done
	if st := l.Stats(); st.Syncs != 1 {
		t.Fatalf("syncs after a tick: %d", st.Syncs)
	}
}

type manualClock struct{ c chan time.Time }

func (m *manualClock) Now() time.Time { return time.Now() }

func (m *manualClock) Tick(time.Duration) (<-chan time.Time, func()) { return m.c, func() {} }

// TestTrimDeletesSealedSegmentWithDamagedEnd guards the deletion of trimmed segments that end in
// bytes no frame can be read from: a torn tail that Open left in a segment because another one
// came after it, or a last segment whose header is destroyed, which Open does not append to (so
// does not cut). Their trim point stops at the last valid frame, short of the file's end; taken
// for untrimmed records, that kept them and every later segment forever, and under the Refuse
// policy every Append failed with ErrFull at the cap although every record was trimmed.
func TestTrimDeletesSealedSegmentWithDamagedEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) (path string)
	}{
		{"torn tail before another segment", func(t *testing.T, dir string) string {
			return filepath.Join(dir, segmentName(1))
		}},
		{"last segment with a zeroed header", func(t *testing.T, dir string) string {
			segs := segFiles(t, dir)
			path := segs[len(segs)-1]
			zeroRange(t, path, 0, segmentHeaderSize)
			return path
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := small(WithOverflow(Refuse), WithMaxBytes(4*4096), WithSync(SyncAlways))
			l := mustOpen(t, dir, opts...)
			for i := range 100 {
				if _, err := l.Append(payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(segFiles(t, dir)); n < 3 {
				t.Fatalf("%d segments, want at least 3", n)
			}
			path := tc.damage(t, dir)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			truncate(t, path, st.Size()-20) // the last frame torn

			l = mustOpen(t, dir, opts...)
			defer l.Close()
			if rec := l.Recovery(); rec.LostRecords != 1 {
				t.Fatalf("recovery %+v, want the torn record lost", rec)
			}
			recs := readAll(t, l)
			if err := l.Trim(recs[len(recs)-1].Seq); err != nil {
				t.Fatal(err)
			}
			// Several times the cap, each record trimmed as soon as it is stored.
			for i := range 2000 {
				seq, err := l.Append(payload(i))
				if err != nil {
					t.Fatalf("append %d with every record trimmed: %v (stats %+v)", i, err, l.Stats())
				}
				if err := l.Trim(seq); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("trimmed damaged segment %s not deleted: %v", filepath.Base(path), err)
			}
			if st := l.Stats(); st.Segments > 1 || st.DiskBytes > 4*4096 {
				t.Fatalf("%d segments, %d bytes on disk with every record trimmed", st.Segments, st.DiskBytes)
			}
		})
	}
}
