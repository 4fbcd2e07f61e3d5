package agent_test

import (
	"context"
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
