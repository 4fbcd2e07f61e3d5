package fsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"testing"

	"pgregory.net/rapid"
)

// propertyHarness draws a small configuration and a manager around it.
func propertyHarness(rt *rapid.T, withDisk bool) *harness {
	cfg := testConfig()
	cfg.MaxPending = rapid.IntRange(1, 6).Draw(rt, "maxPending")
	cfg.DrainBatch = rapid.IntRange(1, 8).Draw(rt, "drainBatch")
	opts := []harnessOption{
		withConfig(cfg),
		// MaxPending+1 is the most the ring holds while a disk tier exists.
		withRingCap(cfg.MaxPending + rapid.IntRange(1, 4).Draw(rt, "ringSlack")),
		withRand(rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 1))),
	}
	if withDisk {
		opts = append(opts, withSpill(&fakeSpill{}))
	}
	if rapid.Bool().Draw(rt, "batch") {
		opts = append(opts, withBatch())
	}
	return newHarness(rt, opts...)
}

// interleave runs random deliveries, transport failures, connection losses
// and timer firings (due, early, stale, or cast), calling check after each.
func interleave(rt *rapid.T, h *harness, check func(all []string)) []string {
	var all []string
	h.manager.Start()
	rt.Repeat(map[string]func(*rapid.T){
		"deliver": func(rt *rapid.T) {
			for range rapid.IntRange(1, 8).Draw(rt, "burst") {
				rec := fmt.Sprintf("r%d", len(all))
				all = append(all, rec)
				h.deliver(rec)
			}
		},
		"sinkDown": func(rt *rapid.T) { h.transport.up = false },
		"sinkUp":   func(rt *rapid.T) { h.transport.up = true },
		"busy":     func(rt *rapid.T) { h.transport.busy = true },
		"notBusy":  func(rt *rapid.T) { h.transport.busy = false },
		"failNext": func(rt *rapid.T) { h.transport.failDeliverN = rapid.IntRange(1, 3).Draw(rt, "n") },
		"failLater": func(rt *rapid.T) {
			// Fail in the middle of a replay or a batch.
			h.transport.failAfter = rapid.IntRange(2, 6).Draw(rt, "after")
		},
		"advance": func(rt *rapid.T) {
			h.clock.Advance(time.Duration(rapid.IntRange(0, 300).Draw(rt, "ms")) * time.Millisecond)
		},
		"connectionLost": func(rt *rapid.T) { h.manager.ConnectionLost() },
		"fireAnyTimer": func(rt *rapid.T) {
			// A firing of any timer ever armed: the current one (early) or a
			// stale one that a cancelled Go timer still delivered.
			if len(h.armed) == 0 {
				rt.Skip("no timer armed yet")
			}
			h.manager.Fire(rapid.SampledFrom(h.armed).Draw(rt, "id"))
		},
		"castTimerEvent": func(rt *rapid.T) {
			h.cast(rapid.SampledFrom([]EventType{EventTick, EventAttempt, EventDrainTick, EventFlushTick}).Draw(rt, "event"))
		},
		"": func(rt *rapid.T) { check(all) },
	})
	return all
}

// heal brings the sink back and runs the clock until everything is out.
func heal(rt *rapid.T, h *harness) {
	h.transport.up = true
	h.transport.busy = false
	h.transport.failDeliverN = 0
	h.transport.failAfter = 0
	for range 10_000 {
		if h.manager.State() == Streaming && h.ring.Len() == 0 && (h.spill == nil || h.spill.Len() == 0) {
			return
		}
		h.clock.Advance(h.cfg.FlushInterval)
	}
	rt.Fatalf("did not drain: state %v, ring %d", h.manager.State(), h.ring.Len())
}

// TestPropertyDiskTierLosesNothing: with the disk tier on, every record
// reaches the sink, in order, exactly once, whatever the interleaving.
func TestPropertyDiskTierLosesNothing(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := propertyHarness(rt, true)
		all := interleave(rt, h, func(all []string) {
			// Nothing is in flight between events: sink, then disk, then
			// RAM is exactly what was delivered so far.
			held := slices.Concat(h.sinkStrings(), h.spillStrings(), h.ringStrings())
			if !slices.Equal(held, all) {
				rt.Fatalf("sink+disk+ring = %v, want %v", held, all)
			}
		})
		heal(rt, h)
		if got := h.sinkStrings(); !slices.Equal(got, all) {
			rt.Fatalf("sink = %v, want %v", got, all)
		}
		if s := h.manager.Stats(); s.Dropped != 0 {
			rt.Fatalf("dropped %d", s.Dropped)
		}
	})
}

// TestPropertyRAMOnlyCountsEveryDrop: without a disk tier records may be
// evicted, but each one is counted and the survivors keep their order.
func TestPropertyRAMOnlyCountsEveryDrop(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := propertyHarness(rt, false)
		all := interleave(rt, h, func(all []string) {
			held := slices.Concat(h.sinkStrings(), h.ringStrings())
			if !isSubsequence(held, all) {
				rt.Fatalf("order broken: %v of %v", held, all)
			}
			if got := uint64(len(held)) + h.manager.Stats().Dropped; got != uint64(len(all)) {
				rt.Fatalf("held %d + dropped %d != %d", len(held), h.manager.Stats().Dropped, len(all))
			}
		})
		heal(rt, h)
		if got := uint64(len(h.sinkStrings())) + h.manager.Stats().Dropped; got != uint64(len(all)) {
			rt.Fatalf("delivered+dropped = %d, want %d", got, len(all))
		}
	})
}
