package agent_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/spill"
)

// syncFailFS is the OS filesystem whose segment fsyncs fail while fail is set.
type syncFailFS struct {
	spill.OSFS
	fail *atomic.Bool
}

func (f syncFailFS) OpenFile(name string, flag int, perm os.FileMode) (spill.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".seg") {
		return file, err
	}
	return syncFailFile{File: file, fail: f.fail}, nil
}

type syncFailFile struct {
	spill.File
	fail *atomic.Bool
}

func (f syncFailFile) Sync() error {
	if f.fail.Load() {
		return syscall.EIO
	}
	return f.File.Sync()
}

// TestSeqTierSyncAlwaysFailedFsync: under spill.SyncAlways a failed fsync makes
// spill.Log.Append return an error although the record is stored (the documented exception).
// SeqTier must count such a record: had it taken the error as "not stored", the next record
// would get the same SeqTier number, Read would return two records under one number (breaking
// fsm.SeqLog's strictly increasing numbers) and the Brain would drop one as a duplicate.
func TestSeqTierSyncAlwaysFailedFsync(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	l, err := spill.Open(dir, spill.WithSync(spill.SyncAlways), spill.WithFS(syncFailFS{fail: &fail}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tier, err := agent.NewSeqTier(l, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Append([]byte("a")); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	// spill.Log.Append fails here but stores the record; before the fix SeqTier returned the
	// error and did not count the record.
	bSeq, bErr := tier.Append([]byte("b"))
	fail.Store(false)
	if _, err := tier.Append([]byte("c")); err != nil {
		t.Fatal(err)
	}
	recs, err := tier.Read(nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s@%d", r.Data, r.Seq))
	}
	if want := []string{"a@0", "b@1", "c@2"}; !slices.Equal(got, want) {
		t.Fatalf("SeqTier.Read: %v, want %v (Append of b returned %d, %v)", got, want, bSeq, bErr)
	}
	if bErr != nil || bSeq != 1 {
		t.Fatalf("Append of b (stored) returned %d, %v; want 1, nil", bSeq, bErr)
	}
}
