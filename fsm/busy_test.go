package fsm

import (
	"math"
	"slices"
	"testing"
	"time"
)

// TestBusyPeerKeepsTheConnection: a transport that refuses to send for a busy peer
// (ErrPeerBusy: the Brain's mailbox at its limit) is no lost connection. Streaming goes to
// Throttled; nothing is counted lost or sent again; there is no reconnect; each drain turn
// tries again, and once the peer takes records the backlog goes out in order and the manager
// is back in Streaming. With a disk tier the backlog spilled meanwhile is replayed first.
func TestBusyPeerKeepsTheConnection(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(map[bool]string{false: "ram", true: "disk"}[disk], func(t *testing.T) {
			var opts []harnessOption
			if disk {
				opts = append(opts, withSpill(&fakeSpill{}), withBatch())
			}
			h := newHarness(t, opts...)
			h.manager.Start()
			h.settle()
			h.mustState(Streaming)
			connects := h.transport.connectCalls
			h.transport.busy = true
			for _, r := range recs("r", 3) {
				h.deliver(r)
			}
			h.mustState(Throttled)
			for _, r := range recs("s", 9) { // Throttled buffers: past MaxPending, to disk
				h.deliver(r)
			}
			h.clock.Advance(h.cfg.DrainInterval)
			h.mustState(Throttled)
			h.transport.busy = false
			for range 20 {
				h.clock.Advance(h.cfg.DrainInterval)
			}
			h.mustState(Streaming)
			want := slices.Concat(recs("r", 3), recs("s", 9))
			if disk {
				if got := h.sinkStrings(); !slices.Equal(got, want) {
					t.Fatalf("sink = %v, want %v", got, want)
				}
			} else if got := h.sinkStrings(); !isSubsequence(got, want) || uint64(len(got))+h.manager.Stats().Dropped != uint64(len(want)) {
				t.Fatalf("sink = %v (dropped %d), want %v", got, h.manager.Stats().Dropped, want)
			}
			st := h.manager.Stats()
			if h.transport.connectCalls != connects || st.Reconnects != 0 || st.PossiblyLost != 0 || st.Busy < 2 {
				t.Fatalf("connects %d -> %d, stats %+v", connects, h.transport.connectCalls, st)
			}
			if st.Transitions[Streaming-1][Disconnected-1] != 0 {
				t.Fatalf("went to Disconnected: %v", st.Transitions)
			}
		})
	}
}

// TestDrainEstimate: the estimate is the backlog over the rate it fell, smoothed; 0 with
// nothing waiting; +Inf before a rate is known and while the backlog does not fall, unless it is
// at most a tenth of a second of what leaves it.
func TestDrainEstimate(t *testing.T) {
	var e drainEstimator
	t0 := newFakeClock().Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	if got := e.observe(at(0), 10_000, 0); !math.IsInf(got, 1) {
		t.Fatalf("no rate yet: %v", got)
	}
	if got := e.observe(at(0.5), 9_000, 0); !math.IsInf(got, 1) {
		t.Fatalf("within a second of the first sample: %v", got)
	}
	if got := e.observe(at(1), 8_000, 12_000); got != 4 { // 2,000/s: 8,000 left
		t.Fatalf("estimate %v, want 4", got)
	}
	if got := e.observe(at(2), 7_000, 23_000); got != 7_000/1_500.0 { // smoothed: (2,000+1,000)/2
		t.Fatalf("estimate %v, want %v", got, 7_000/1_500.0)
	}
	if got := e.observe(at(3), 9_000, 33_000); !math.IsInf(got, 1) { // (1,500-2,000)/2 < 0: growing
		t.Fatalf("growing backlog: %v", got)
	}
	// Streaming: 200 records in passing, 10,000/s leaving (smoothed: 10,375/s after 12,000,
	// 11,000, 10,000, 10,000), whatever the net rate: a fiftieth of a second.
	if got, want := e.observe(at(4), 200, 43_000), 200/10_375.0; got != want {
		t.Fatalf("records in passing: %v, want %v", got, want)
	}
	if got := e.observe(at(4.1), 0, 43_200); got != 0 {
		t.Fatalf("empty: %v", got)
	}
}

// TestIdleFlushIsRare: in Streaming with nothing waiting the periodic flush comes once every
// idleFlushEvery intervals (records are flushed as they arrive); with records waiting, every
// FlushInterval.
func TestIdleFlushIsRare(t *testing.T) {
	h := newHarness(t)
	reach(t, h, Streaming)
	start := h.clock.Now()
	due, ok := h.clock.NextDue()
	if !ok || due.Sub(start) != idleFlushEvery*h.cfg.FlushInterval {
		t.Fatalf("idle: next flush in %v, want %v", due.Sub(start), idleFlushEvery*h.cfg.FlushInterval)
	}
	for _, r := range recs("w", 5) { // DrainBatch 2 per flush: 3 wait in the ring
		h.ring.Push([]byte(r))
	}
	h.clock.Advance(idleFlushEvery * h.cfg.FlushInterval)
	if h.ring.Len() != 3 {
		t.Fatalf("ring holds %d after one flush, want 3", h.ring.Len())
	}
	due, _ = h.clock.NextDue()
	if got := due.Sub(h.clock.Now()); got != h.cfg.FlushInterval {
		t.Fatalf("records waiting: next flush in %v, want %v", got, h.cfg.FlushInterval)
	}
}
