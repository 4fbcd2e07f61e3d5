package fsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPropertyTakeInRunsIsPerRecord: the unacknowledged modes take the inbox in runs, one
// flush per run (unackedMode.take). Whatever the interleaving of bursts, failures, lost
// connections and time, a manager taking each burst from its inbox ends every step where one
// given the same records one event each does: same state, same records delivered, the same
// records held in the same order (disk, then RAM), same counters. Only where the held records
// are may differ: after a failure in the middle of a run, the rest of the run is in the ring
// where one by one the ring would have been spilled before some of them (either way the ring
// holds at most MaxPending+1 records, so nothing is evicted that the disk could keep).
func TestPropertyTakeInRunsIsPerRecord(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := testConfig()
		cfg.MaxPending = rapid.IntRange(1, 6).Draw(rt, "maxPending")
		cfg.DrainBatch = rapid.IntRange(1, 8).Draw(rt, "drainBatch")
		ringCap := cfg.MaxPending + rapid.IntRange(1, 4).Draw(rt, "ringSlack")
		seed := rapid.Uint64().Draw(rt, "seed")
		disk := rapid.Bool().Draw(rt, "disk")
		batch := rapid.Bool().Draw(rt, "batch")
		build := func(in *Inbox) *harness {
			opts := []harnessOption{withConfig(cfg), withRingCap(ringCap), withRand(rand.New(rand.NewPCG(seed, 1))), withInbox(in)}
			if disk {
				opts = append(opts, withSpill(&fakeSpill{}))
			}
			if batch {
				opts = append(opts, withBatch())
			}
			return newHarness(rt, opts...)
		}
		in, err := NewInbox(1000)
		if err != nil {
			rt.Fatal(err)
		}
		one, runs := build(nil), build(in)
		both := []*harness{one, runs}
		for _, h := range both {
			h.manager.Start()
		}
		n := 0
		rt.Repeat(map[string]func(*rapid.T){
			"deliver": func(rt *rapid.T) {
				var burst [][]byte
				for range rapid.IntRange(1, 12).Draw(rt, "burst") {
					burst = append(burst, []byte(fmt.Sprintf("r%d", n)))
					n++
				}
				for _, r := range burst {
					one.manager.Deliver(r)
				}
				if _, err := in.putMany(burst, func() error { return nil }, false); err != nil {
					rt.Fatal(err)
				}
				runs.manager.TakeInbox()
			},
			"sinkDown": func(rt *rapid.T) { one.transport.up, runs.transport.up = false, false },
			"sinkUp":   func(rt *rapid.T) { one.transport.up, runs.transport.up = true, true },
			"failLater": func(rt *rapid.T) {
				k := rapid.IntRange(1, 6).Draw(rt, "after")
				one.transport.failAfter, runs.transport.failAfter = k, k
			},
			"advance": func(rt *rapid.T) {
				d := time.Duration(rapid.IntRange(0, 300).Draw(rt, "ms")) * time.Millisecond
				one.clock.Advance(d)
				runs.clock.Advance(d)
			},
			"connectionLost": func(rt *rapid.T) {
				one.manager.ConnectionLost()
				runs.manager.ConnectionLost()
			},
			"": func(rt *rapid.T) {
				if a, b := one.manager.State(), runs.manager.State(); a != b {
					rt.Fatalf("state: one by one %v, in runs %v", a, b)
				}
				for _, c := range []struct {
					what string
					a, b []string
				}{
					{"sink", one.sinkStrings(), runs.sinkStrings()},
					{"disk+ring", slices.Concat(one.spillStrings(), one.ringStrings()), slices.Concat(runs.spillStrings(), runs.ringStrings())},
				} {
					if !slices.Equal(c.a, c.b) {
						rt.Fatalf("%s: one by one %v, in runs %v", c.what, c.a, c.b)
					}
				}
				sa, sb := one.manager.Stats(), runs.manager.Stats()
				sa.Transitions, sb.Transitions = [4][4]uint64{}, [4][4]uint64{}
				if disk && runs.ring.Len() > cfg.MaxPending+1 {
					// A run stops where the backlog passes MaxPending; buffering spills first.
					rt.Fatalf("ring holds %d with a disk tier (MaxPending %d)", runs.ring.Len(), cfg.MaxPending)
				}
				if sa != sb {
					rt.Fatalf("stats: one by one %+v, in runs %+v", sa, sb)
				}
			},
		})
	})
}

// A run larger than the ring's free bytes is not pushed whole: on a healthy connection, records
// that one by one would all have been sent are all sent when taken in runs, none evicted for the
// ring's byte bound (40 records of 200 bytes into a ring of 2,000 bytes).
func TestTakeInRunsKeepsToTheRingsBytes(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPending, cfg.DrainBatch = 50, 10
	in, err := NewInbox(1000)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, withConfig(cfg), withRingCap(100), withRingBytes(2000), withInbox(in), withBatch())
	h.manager.Start()
	h.settle()
	h.mustState(Streaming)
	recs := make([][]byte, 40)
	for i := range recs {
		recs[i] = fmt.Appendf(make([]byte, 0, 200), "%0200d", i)[:200]
	}
	if _, err := in.putMany(recs, func() error { return nil }, false); err != nil {
		t.Fatal(err)
	}
	h.manager.TakeInbox()
	h.settle()
	st := h.manager.Stats()
	if st.Dropped != 0 || st.Delivered != 40 || len(h.sinkStrings()) != 40 {
		t.Fatalf("delivered %d (sink %d), dropped %d; want 40 delivered, none dropped", st.Delivered, len(h.sinkStrings()), st.Dropped)
	}
}
