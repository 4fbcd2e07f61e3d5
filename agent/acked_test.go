package agent_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/spill"
)

// In ModeAcked a full spill directory refuses new records even when the caller asked for
// DropOldest: the records it holds, not yet acknowledged, are all delivered, once each and in
// order, numbered densely from 0; the refused ones are counted as dropped.
func TestAckedSpillRefusesWhenFull(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	b.Kill9()
	opts := agentOptions(t, b)
	opts.Mode = agent.ModeAcked
	opts.SpillDir = t.TempDir()
	opts.SpillOptions = []spill.Option{spill.WithOverflow(spill.DropOldest),
		spill.WithSegmentSize(16 << 10), spill.WithMaxBytes(64 << 10)}
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)
	const n = 3_000 // far more than 64 KiB
	deliverAll(t, a, "acked-full", 0, n)
	deadline := time.Now().Add(10 * time.Second)
	for a.Stats().Dropped+uint64(a.Unacknowledged()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, unacknowledged %d", a.Stats(), a.Unacknowledged())
		}
		time.Sleep(5 * time.Millisecond)
	}
	kept := a.Unacknowledged()
	if next, ok := a.AckedNextSeq(); !ok || next != uint64(kept) || kept == 0 || kept == n {
		t.Fatalf("AckedNextSeq %d %v, %d records kept of %d", next, ok, kept, n)
	}
	b.Restart()
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Sources["acked-full"].Received >= int64(kept) })
	if !ok || !st.Sources["acked-full"].Exactly(int64(kept)) || st.Acked[a.SourceID()] != int64(kept) {
		t.Fatalf("Brain %+v, NextSeq %d; want exactly the %d records kept", st.Sources["acked-full"], st.Acked[a.SourceID()], kept)
	}
	if s := a.Stats(); s.Dropped != uint64(n-kept) {
		t.Fatalf("dropped %d, want %d", s.Dropped, n-kept)
	}
}

// crashImage copies a live spill directory (as a kill -9 leaves it: written, not closed, its meta
// file saying it is open) to a new directory.
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

// An OS crash can cut a spill directory short of records the Brain had acknowledged; the spill
// log then numbers the next records from what survived, below the Brain's NextSeq. Records stored
// so, by an agent that never reached the Brain, are delivered by the next agent on the directory
// (renumbered on top of the Brain's NextSeq), not taken for records the Brain has (found in
// review: they were trimmed unsent).
func TestAckedRecordsAfterAnOSCrashDelivered(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	// The directory as an OS crash leaves it: the Brain had records 0..99 of this directory,
	// the disk lost all but the first (here: one record, acknowledged, then a crash).
	l, err := spill.Open(t.TempDir(), spill.WithSync(spill.SyncNever))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]byte("acknowledged")); err != nil {
		t.Fatal(err)
	}
	if err := l.Trim(0); err != nil {
		t.Fatal(err)
	}
	dir := crashImage(t, l)
	l.Close()

	b.Kill9() // the first agent never reaches the Brain
	opts := agentOptions(t, b)
	opts.Mode, opts.SpillDir = agent.ModeAcked, dir
	a1, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	deliverAll(t, a1, "os-crash", 0, n) // numbered 1..5: the Brain had numbers 1..99
	for a1.Unacknowledged() < n {
		time.Sleep(5 * time.Millisecond)
	}
	source := a1.SourceID()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b.Restart()
	b.Eval(`pharos_brain_store:set_acked_state(#{<<"` + source + `">> => 100}), ok`)
	opts = agentOptions(t, b)
	opts.Mode, opts.SpillDir = agent.ModeAcked, dir
	a2, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a2, 10*time.Second)
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Acked[source] >= 100+n })
	if !ok || !st.Sources["os-crash"].Exactly(n) || st.Acked[source] != 100+n {
		t.Fatalf("Brain %+v, NextSeq %d; want the %d records, after 100", st.Sources["os-crash"], st.Acked[source], n)
	}
}
