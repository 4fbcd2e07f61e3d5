package agent_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/spill"
	pharostier "github.com/pharos-node/pharos-node/tier"
)

// crashImage copies a live spill directory (as a kill -9 leaves it: written, not closed) to a
// new directory.
func crashImage(t *testing.T, l *spill.Log) string {
	t.Helper()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	entries, err := os.ReadDir(l.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		in, err := os.Open(filepath.Join(l.Dir(), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

func openTier(t *testing.T, dir string) (*spill.Log, *agent.SeqTier) {
	t.Helper()
	l, err := spill.Open(dir, spill.WithSync(spill.SyncNever))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tier, err := agent.NewSeqTier(l, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return l, tier
}

func appendN(t *testing.T, tier *agent.SeqTier, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		seq, err := tier.Append(fmt.Appendf(nil, "rec-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i) {
			t.Fatalf("Append of record %d numbered %d", i, seq)
		}
	}
}

// readAll rewinds and checks that the untrimmed records are from..to-1, each under its own
// number. After a crash, records trimmed shortly before it may be there again (the trim point
// reaches the disk at most once per sync interval): readAfterCrash allows an earlier start.
func readAll(t *testing.T, tier *agent.SeqTier, from, to int) { readRange(t, tier, from, from, to) }

func readAfterCrash(t *testing.T, tier *agent.SeqTier, from, to int) { readRange(t, tier, 0, from, to) }

func readRange(t *testing.T, tier *agent.SeqTier, minFrom, from, to int) {
	t.Helper()
	tier.Rewind()
	var got []pharostier.Record
	for {
		n := len(got)
		var err error
		if got, err = tier.Read(got, 100); err != nil {
			t.Fatal(err)
		}
		if len(got) == n {
			break
		}
	}
	if len(got) > 0 && int(got[0].Seq) >= minFrom && int(got[0].Seq) < from {
		from = int(got[0].Seq)
	}
	if len(got) != to-from {
		t.Fatalf("read %d records, want %d (%d..%d)", len(got), to-from, from, to-1)
	}
	for i, r := range got {
		want := from + i
		if r.Seq != uint64(want) || string(r.Data) != fmt.Sprintf("rec-%d", want) {
			t.Fatalf("record %d: seq %d data %q, want seq %d data rec-%d", i, r.Seq, r.Data, want, want)
		}
	}
}

// A new directory numbers from 0, densely; the numbers survive a clean restart and, though the
// spill log's own numbers jump by its lease after a crash, every crash too: the k-th record
// ever stored is number k, and Trim takes SeqTier numbers.
func TestSeqTierDenseAcrossCrashes(t *testing.T) {
	dir := t.TempDir()
	l, tier := openTier(t, dir)
	if tier.NextSeq() != 0 {
		t.Fatalf("NextSeq %d on a new directory", tier.NextSeq())
	}
	appendN(t, tier, 0, 100)
	readAll(t, tier, 0, 100)
	if err := tier.Trim(39); err != nil {
		t.Fatal(err)
	}
	readAll(t, tier, 40, 100)
	if _, err := os.Stat(filepath.Join(dir, agent.NumberingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("numbering file written without a jump: %v", err)
	}

	// Crash 1: the spill log resumes a lease ahead.
	img := crashImage(t, l)
	l2, tier2 := openTier(t, img)
	if tier2.NextSeq() != 100 {
		t.Fatalf("NextSeq %d after a crash, want 100", tier2.NextSeq())
	}
	appendN(t, tier2, 100, 50)
	if l2.NextSeq() < 1<<20 {
		t.Fatalf("the spill log did not jump (next %d): the test does not test the jump", l2.NextSeq())
	}
	readAfterCrash(t, tier2, 40, 150)
	if err := tier2.Trim(119); err != nil { // across the jump
		t.Fatal(err)
	}
	readAll(t, tier2, 120, 150)

	// Crash 2, after the jump: the same numbers again, the next one exact.
	img2 := crashImage(t, l2)
	_, tier3 := openTier(t, img2)
	if tier3.NextSeq() != 150 {
		t.Fatalf("NextSeq %d after a second crash, want 150", tier3.NextSeq())
	}
	readAfterCrash(t, tier3, 120, 150)
	appendN(t, tier3, 150, 10)
	readAfterCrash(t, tier3, 120, 160)

	// A clean close and reopen of the same directory: no jump, same numbers.
	l.Close()
	_, tier4 := openTier(t, dir)
	if tier4.NextSeq() != 100 {
		t.Fatalf("NextSeq %d after a clean restart, want 100", tier4.NextSeq())
	}
	readAll(t, tier4, 40, 100)
}

// Everything trimmed, then a crash: the next number is still one past the last stored.
func TestSeqTierAllTrimmedThenCrash(t *testing.T) {
	l, tier := openTier(t, t.TempDir())
	appendN(t, tier, 0, 30)
	if err := tier.Trim(29); err != nil {
		t.Fatal(err)
	}
	_, tier2 := openTier(t, crashImage(t, l))
	if tier2.NextSeq() != 30 {
		t.Fatalf("NextSeq %d, want 30", tier2.NextSeq())
	}
	appendN(t, tier2, 30, 5)
	readAfterCrash(t, tier2, 30, 35)
}

// Records trimmed before a crash may come back after it (the trim point reaches the disk
// lazily). When they lie below every span the tier kept (addSpan drops the spans of trimmed
// records), they are acknowledged ones: Read trims them again instead of numbering them from
// the first span, which wrapped their numbers around (found in review: 2^64 - 9 and so on).
func TestSeqTierRecordsBelowEverySpanAreTrimmedAgain(t *testing.T) {
	l, tier := openTier(t, t.TempDir())
	appendN(t, tier, 0, 10)
	// Crash 1: the log jumps; records 10.. get a span of their own.
	l2, tier2 := openTier(t, crashImage(t, l))
	appendN(t, tier2, 10, 5)
	if err := tier2.Trim(14); err != nil { // in memory only (SyncNever)
		t.Fatal(err)
	}
	// Crash 2: trimmed again through 14, the next Append's span drops the first one, whose
	// records are all trimmed.
	l3, tier3 := openTier(t, crashImage(t, l2))
	readAfterCrash(t, tier3, 0, 15)
	if err := tier3.Trim(14); err != nil {
		t.Fatal(err)
	}
	appendN(t, tier3, 15, 2)
	// Crash 3, and the log's meta file lost with it: the log rebuilds it with no trim point, and
	// records 0..14 come back once more, 0..9 now below every span. (The same happens without a
	// damaged meta file when the crash falls between addSpan's save and the log's next write
	// of its trim point.)
	img := crashImage(t, l3)
	if err := os.WriteFile(filepath.Join(img, "meta"), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, tier4 := openTier(t, img)
	if tier4.NextSeq() != 17 {
		t.Fatalf("NextSeq %d, want 17", tier4.NextSeq())
	}
	readAfterCrash(t, tier4, 10, 17)
	tier4.Rewind()
	got, err := tier4.Read(nil, 100)
	if err != nil || len(got) == 0 || got[0].Seq != 10 {
		t.Fatalf("first read after the records below every span: %v, %v; want from 10", got, err)
	}
}

// After a crash the tier marks its next number as the first unsent one (fsm.UnsentMarker): the
// crash may have been an OS crash that lost records the Brain had. The marker survives further
// crashes at its lowest, is durable, and ClearUnsent removes it durably. A new directory and a
// clean restart set none.
func TestSeqTierUnsentMarker(t *testing.T) {
	dir := t.TempDir()
	l, tier := openTier(t, dir)
	if _, set := tier.UnsentFrom(); set {
		t.Fatal("marker set on a new directory")
	}
	appendN(t, tier, 0, 10)
	img := crashImage(t, l)
	l.Close()
	_, tier2 := openTier(t, dir)
	if _, set := tier2.UnsentFrom(); set {
		t.Fatal("marker set after a clean restart")
	}

	l3, tier3 := openTier(t, img)
	if from, set := tier3.UnsentFrom(); !set || from != 10 {
		t.Fatalf("after a crash: marker %d, %v; want 10", from, set)
	}
	appendN(t, tier3, 10, 5)
	l4, tier4 := openTier(t, crashImage(t, l3)) // crashed again before a manager sent any
	if from, set := tier4.UnsentFrom(); !set || from != 10 {
		t.Fatalf("after a second crash: marker %d, %v; want 10 (the lower)", from, set)
	}
	if err := tier4.ClearUnsent(); err != nil {
		t.Fatal(err)
	}
	if _, set := tier4.UnsentFrom(); set {
		t.Fatal("marker still set after ClearUnsent")
	}
	appendN(t, tier4, 15, 1)
	l4.Close()
	_, tier5 := openTier(t, l4.Dir())
	if _, set := tier5.UnsentFrom(); set {
		t.Fatal("marker back after ClearUnsent and a clean restart")
	}
}

// A numbering file of another source, or a damaged one, is refused with ErrNumbering.
func TestSeqTierRefusesForeignOrDamagedFile(t *testing.T) {
	for name, content := range map[string]string{
		"foreign": `{"version":1,"source_id":"someone-else","tier":[[1,0]],"manager":[]}`,
		"damaged": `{"version":1,"sou`,
		"version": `{"version":9}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := spill.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := os.WriteFile(filepath.Join(dir, agent.NumberingFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := agent.NewSeqTier(l, zerolog.Nop()); !errors.Is(err, agent.ErrNumbering) {
				t.Fatalf("NewSeqTier: %v, want ErrNumbering", err)
			}
		})
	}
}
