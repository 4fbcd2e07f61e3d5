package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestRefuseWhenFull: without a spill directory and with RefuseWhenFull, an agent whose Brain
// is away accepts records until RAM holds RingRecords of them, then refuses with ErrFull
// (ingest.ErrSinkOverflow, so HTTP answers 429) instead of dropping the oldest; nothing is
// dropped, and once the Brain is back every accepted record arrives, once, in order, and
// deliveries are accepted again.
//
// With a cluster (one Brain, failover: one shard, whose ring is RingRecords) each shard's inbox
// keeps the budget of its own ring.
func TestRefuseWhenFull(t *testing.T) {
	t.Run("single", func(t *testing.T) { testRefuseWhenFull(t, false) })
	t.Run("cluster", func(t *testing.T) { testRefuseWhenFull(t, true) })
}

func testRefuseWhenFull(t *testing.T, cluster bool) {
	const ring = 2_000
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	opts := agentOptions(t, b)
	if cluster {
		opts.Cluster = &agent.ClusterConfig{Targets: []agent.Target{opts.Brain}, HealthInterval: 100 * time.Millisecond}
		opts.Brain = agent.Target{}
	}
	opts.RingRecords = ring
	opts.Delivery.MaxPending = 500
	opts.RefuseWhenFull = true
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)
	deliverAll(t, a, "before", 0, 100)
	waitState(t, a, 10*time.Second, fsm.Streaming)
	if _, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources["before"].Received >= 100 }); !ok {
		t.Fatal("before the outage: not delivered")
	}
	b.Kill9()
	waitState(t, a, 10*time.Second, fsm.Disconnected)
	const src = "refused"
	accepted := 0
	for i := 0; i < 3*ring; i++ {
		err := a.DeliverMetric(seqMetric(src, accepted))
		if err == nil {
			accepted++
			continue
		}
		if !errors.Is(err, agent.ErrFull) || !errors.Is(err, ingest.ErrSinkOverflow) || !errors.Is(err, ingest.ErrSinkFull) {
			t.Fatalf("record %d refused with %v, want agent.ErrFull", accepted, err)
		}
	}
	stats := a.Stats()
	t.Logf("accepted %d of %d during the outage; %+v", accepted, 3*ring, stats)
	if accepted == 0 || accepted > ring || stats.Dropped != 0 {
		t.Fatalf("accepted %d (ring %d), dropped %d", accepted, ring, stats.Dropped)
	}
	b.Restart()
	st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= int64(accepted) })
	if !ok || !st.Sources[src].Exactly(int64(accepted)) {
		t.Fatalf("Brain got %+v, want exactly %d in order", st.Sources[src], accepted)
	}
	waitState(t, a, 10*time.Second, fsm.Streaming)
	// RAM holds a record until its delivery is confirmed: the room comes back with the last
	// confirmation, a round trip after the Brain has the records.
	for deadline := time.Now().Add(10 * time.Second); a.Stats().Confirmed < uint64(100+accepted); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("records not confirmed: %+v", a.Stats())
		}
	}
	deliverAll(t, a, src, accepted, accepted+ring) // room again
	if st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= int64(accepted+ring) }); !ok || !st.Sources[src].Exactly(int64(accepted+ring)) {
		t.Fatalf("after the outage: %+v", st.Sources[src])
	}
	if a.Stats().Dropped != 0 {
		t.Fatal("dropped")
	}
}
