package spill

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fullDisk is a filesystem that can run out of space: a real 1 MiB tmpfs when this process may
// mount one (root), else (or with PHAROS_SPILL_NO_MOUNT set) an injected faultFS with a 1 MiB
// budget. fill takes all but free bytes
// of it with a filler file; release gives them back.
type fullDisk struct {
	dir     string
	opts    []Option
	how     string
	fault   *faultFS
	filler  string
	release func()
}

func newFullDisk(t *testing.T) *fullDisk {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput()
	if os.Getenv("PHAROS_SPILL_NO_MOUNT") != "" {
		if err == nil {
			exec.Command("umount", mnt).Run()
		}
		err, out = errors.New("PHAROS_SPILL_NO_MOUNT is set"), nil
	}
	if err == nil {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", mnt, err, out)
				exec.Command("umount", "-l", mnt).Run()
			}
		})
		d := &fullDisk{dir: filepath.Join(mnt, "spill"), how: "a real 1 MiB tmpfs mounted at " + mnt}
		d.filler = filepath.Join(mnt, "filler")
		return d
	}
	t.Logf("cannot mount a tmpfs (%v: %s); using the injected filesystem", err, bytes.TrimSpace(out))
	f := newFaultFS()
	f.setBudget(1 << 20)
	return &fullDisk{dir: filepath.Join(mnt, "spill"), how: "an injected filesystem with a 1 MiB write budget", fault: f, opts: []Option{WithFS(f)}}
}

// fill leaves about free bytes of space.
func (d *fullDisk) fill(t *testing.T, free int64) {
	t.Helper()
	if d.fault != nil {
		d.fault.setBudget(free)
		d.release = func() { d.fault.setBudget(-1) }
		return
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(d.filler), &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail > free {
		if err := os.WriteFile(d.filler, make([]byte, avail-free), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.release = func() { os.Remove(d.filler) }
}

// TestENOSPC fills the disk under a Log: Append fails with a typed error and stores nothing,
// what was stored stays intact, and appending resumes when space returns (a file removed, or
// the log's own trimmed segments deleted).
func TestENOSPC(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval} {
		t.Run(policy.String(), func(t *testing.T) {
			d := newFullDisk(t)
			t.Logf("ENOSPC comes from %s", d.how)
			opts := append([]Option{WithSync(policy), WithSegmentSize(32 << 10), WithMaxBytes(64 << 20),
				WithFlushBytes(4 << 10), WithLogger(testLogger(t))}, d.opts...)
			l := mustOpen(t, d.dir, opts...)
			t.Cleanup(func() { l.Close() }) // before the unmount
			d.fill(t, 200<<10)

			// Append until the disk is full.
			var stored []Record
			var err error
			for i := 0; i < 100_000; i++ {
				rec := payload(i)
				var seq uint64
				if seq, err = l.Append(rec); err != nil {
					break
				}
				stored = append(stored, Record{seq, rec})
			}
			var we *WriteError
			if !errors.Is(err, ErrNoSpace) || !errors.As(err, &we) {
				t.Fatalf("Append on a full disk: %v, want a *WriteError that is ErrNoSpace", err)
			}
			t.Logf("disk full after %d records: %v", len(stored), err)
			// A record that needs a new page of the filesystem cannot be stored either.
			for range 5 {
				if _, err := l.Append(bytes.Repeat([]byte("x"), 5000)); !errors.Is(err, ErrNoSpace) {
					t.Fatalf("Append while full: %v", err)
				}
			}
			if policy == SyncAlways {
				// Everything acknowledged is readable while the disk is full.
				checkSame(t, readAll(t, l), stored)
			}

			// Space returns: appending resumes.
			d.release()
			for i := range 50 {
				rec := []byte(fmt.Sprintf("after space returned %d", i))
				seq, err := l.Append(rec)
				if err != nil {
					t.Fatalf("Append after space returned: %v", err)
				}
				stored = append(stored, Record{seq, rec})
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			checkSame(t, readAll(t, l), stored)

			// Full again; this time the log frees space itself by trimming.
			d.fill(t, 64<<10)
			for i := 0; ; i++ {
				rec := payload(i)
				seq, err := l.Append(rec)
				if err != nil {
					if !errors.Is(err, ErrNoSpace) {
						t.Fatal(err)
					}
					break
				}
				stored = append(stored, Record{seq, rec})
			}
			half := stored[len(stored)/2].Seq
			if err := l.Trim(half); err != nil {
				t.Fatalf("Trim on a full disk: %v", err)
			}
			stored = stored[len(stored)/2+1:]
			if d.fault != nil {
				d.fault.setBudget(1 << 20) // the injected disk has no files to free
			}
			seq, err := l.Append([]byte("after trim"))
			if err != nil {
				t.Fatalf("Append after the trim freed segments: %v", err)
			}
			stored = append(stored, Record{seq, []byte("after trim")})
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			d.release()

			l = mustOpen(t, d.dir, opts...)
			if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Damage) != 0 {
				t.Fatalf("damage after ENOSPC: %+v", rec)
			}
			checkSame(t, readAll(t, l), stored)
		})
	}
}

func checkSame(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("record %d: seq %d %q, want seq %d %q", i, got[i].Seq, got[i].Data, want[i].Seq, want[i].Data)
		}
	}
}

// TestShortWrites injects short writes and failed fsyncs through the FS seam: under SyncAlways
// a failed Append stores nothing (no invented record after a restart), and the log carries on.
func TestShortWrites(t *testing.T) {
	f := newFaultFS()
	dir := t.TempDir()
	opts := []Option{WithFS(f), WithSync(SyncAlways), WithSegmentSize(8 << 10), WithLogger(testLogger(t))}
	l := mustOpen(t, dir, opts...)
	var stored []Record
	for i := range 300 {
		switch i % 50 {
		case 10:
			f.setBudget(17) // the next frame is written in part, then ENOSPC
		case 20:
			f.setFailSync(true)
		}
		rec := payload(i)
		seq, err := l.Append(rec)
		switch i % 50 {
		case 10:
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("append %d after a short write: %v", i, err)
			}
			f.setBudget(-1)
		case 20:
			var we *WriteError
			if !errors.As(err, &we) || we.Op != "sync" {
				t.Fatalf("append %d with a failing fsync: %v", i, err)
			}
			f.setFailSync(false)
			stored = append(stored, Record{seq, rec}) // written; only its durability is in doubt
		default:
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			stored = append(stored, Record{seq, rec})
		}
	}
	checkSame(t, readAll(t, l), stored)
	st := l.Stats()
	if st.WriteErrors == 0 || st.SyncErrors == 0 {
		t.Fatalf("errors not counted: %+v", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, opts...)
	defer l.Close()
	if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Damage) != 0 {
		t.Fatalf("damage after short writes: %+v", rec)
	}
	checkSame(t, readAll(t, l), stored)
}

// appendBatch starts n Appends of payload(100) under SyncAlways and returns once they all
// wait in one group commit, which the caller holds back by holding l.syncSem. wait returns
// their results once the caller lets the commit go.
func appendBatch(t *testing.T, l *Log, n int) (wait func() (seqs []uint64, errs []error)) {
	t.Helper()
	want := l.Stats().Appended + uint64(n)
	seqs, errs := make([]uint64, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seqs[i], errs[i] = l.Append(payload(100))
		}()
	}
	for l.Stats().Appended < want {
		time.Sleep(time.Millisecond)
	}
	return func() ([]uint64, []error) {
		wg.Wait()
		return seqs, errs
	}
}

// openSyncAlwaysFaults opens a SyncAlways log over a faultFS in a new directory and stores one
// record, first; opts reopen the directory.
func openSyncAlwaysFaults(t *testing.T) (f *faultFS, dir string, opts []Option, l *Log, first Record) {
	t.Helper()
	f, dir = newFaultFS(), t.TempDir()
	opts = []Option{WithFS(f), WithSync(SyncAlways), WithSegmentSize(64 << 10), WithLogger(testLogger(t))}
	l = mustOpen(t, dir, opts...)
	seq, err := l.Append(payload(0))
	if err != nil {
		t.Fatal(err)
	}
	return f, dir, opts, l, Record{seq, payload(0)}
}

// TestFailedBatchWriteIsCut guards "on error nothing was stored" under SyncAlways when the write
// of a group commit fails part way: the whole frames that reached the file belong to Appends
// that failed, and must not come back at the next Open (a caller that retries would store them
// twice), after a crash or a Close, even when cutting them fails at first (the next commit or
// Close cuts them then).
func TestFailedBatchWriteIsCut(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failCut bool // the cut after the failed write fails
		crash   bool // else Close
	}{
		{"close", false, false},
		{"crash", false, true},
		{"cut fails, Close cuts", true, false},
		{"cut fails, next commit cuts, crash", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, dir, opts, l, first := openSyncAlwaysFaults(t)
			want := []Record{first}

			l.syncSem <- struct{}{} // hold the commit: the next Appends share one batch
			wait := appendBatch(t, l, 4)
			f.setBudget(frameSize(len(payload(100)))*2 + 10) // two whole frames and a bit
			f.setFailTruncate(tc.failCut)
			<-l.syncSem
			_, errs := wait()
			for i, err := range errs {
				if !errors.Is(err, ErrNoSpace) {
					t.Fatalf("append %d of the failed batch: %v, want ErrNoSpace", i, err)
				}
			}
			f.setBudget(-1)
			f.setFailTruncate(false)

			if tc.failCut && tc.crash {
				seq, err := l.Append(payload(1))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, Record{seq, payload(1)})
			}
			if tc.crash {
				l.crash()
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, opts...)
			defer l.Close()
			checkSame(t, readAll(t, l), want)
			if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Damage) != 0 {
				t.Fatalf("recovery %+v", rec)
			}
		})
	}
}

// TestBatchPartlyWrittenByRead guards the Appends of a SyncAlways batch whose first records a
// Read wrote out (to hand them out) before the commit's own write of the rest failed: those
// records are stored, and may have been delivered, so their Appends get the fsync's result,
// not the write's error; only the rest fail, and only they are gone after a restart.
func TestBatchPartlyWrittenByRead(t *testing.T) {
	f, dir, opts, l, first := openSyncAlwaysFaults(t)
	readAll(t, l) // the cursor at the end: the next Read writes the buffer out

	l.syncSem <- struct{}{} // hold the commit: the next Appends share one batch
	waitRead := appendBatch(t, l, 2)
	read, err := l.Read(nil, 10)
	if err != nil || len(read) != 2 {
		t.Fatalf("Read of the buffered records: %d, %v", len(read), err)
	}
	waitFail := appendBatch(t, l, 2)
	f.setBudget(frameSize(len(payload(100))) + 10) // one whole frame and a bit
	<-l.syncSem
	readSeqs, readErrs := waitRead()
	_, failErrs := waitFail()
	f.setBudget(-1)
	slices.Sort(readSeqs)

	want := []Record{first}
	for i, err := range readErrs {
		if err != nil {
			t.Fatalf("append %d, written by the Read: %v", i, err)
		}
		want = append(want, Record{readSeqs[i], payload(100)})
	}
	for i, err := range failErrs {
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("append %d, rolled back: %v, want ErrNoSpace", i, err)
		}
	}
	checkSame(t, read, want[1:])
	l.crash()
	l = mustOpen(t, dir, opts...)
	defer l.Close()
	if rec := l.Recovery(); rec.LostRecords != 0 || len(rec.Damage) != 0 {
		t.Fatalf("recovery %+v", rec)
	}
	checkSame(t, readAll(t, l), want)
}
