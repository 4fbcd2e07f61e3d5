package fsm

import (
	"context"
	"slices"
	"testing"
	"time"
)

// fakeRequestTransport is a RequestTransport: a batch transport whose
// deliveries are receipts, delivering at a backlog of min.
type fakeRequestTransport struct {
	*fakeBatchTransport
	min   int
	sizes []int
}

func (f *fakeRequestTransport) MinBatch() int { return f.min }

func (f *fakeRequestTransport) DeliverBatch(ctx context.Context, recs [][]byte) (int, error) {
	f.sizes = append(f.sizes, len(recs))
	return f.fakeBatchTransport.DeliverBatch(ctx, recs)
}

// newRequestHarness is newHarness with a RequestTransport of MinBatch min.
func newRequestHarness(t *testing.T, cfg Config, min int) (*harness, *fakeRequestTransport) {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), transport: &fakeTransport{up: true}, ring: newFakeRing(64), cfg: cfg}
	rt := &fakeRequestTransport{fakeBatchTransport: &fakeBatchTransport{fakeTransport: h.transport}, min: min}
	m, err := NewManager(ManagerOptions{
		Config: cfg, Transport: rt, Ring: h.ring, Clock: h.clock, Rand: fixedRand{frac: 0.5},
		Timers: func(after time.Duration, id TimeoutID) func() bool {
			return h.clock.AfterFunc(after, func() { h.manager.Fire(id) }).Stop
		},
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	h.manager = m
	return h, rt
}

// TestRequestTransportBatches: with a RequestTransport, Streaming delivers
// once MinBatch records wait, or at the flush timer; not at every record.
func TestRequestTransportBatches(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPending, cfg.DrainBatch = 40, 100
	h, rt := newRequestHarness(t, cfg, 5)
	reach(t, h, Streaming)
	for _, r := range recs("a", 4) {
		h.deliver(r)
	}
	if len(rt.sizes) != 0 {
		t.Fatalf("delivered below MinBatch: %v", rt.sizes)
	}
	h.deliver("a4")
	if !slices.Equal(rt.sizes, []int{5}) {
		t.Fatalf("batches = %v, want [5]", rt.sizes)
	}
	h.deliver("b0")
	h.deliver("b1")
	h.clock.Advance(cfg.FlushInterval)
	if !slices.Equal(rt.sizes, []int{5, 2}) {
		t.Fatalf("batches = %v, want [5 2] after the flush interval", rt.sizes)
	}
	want := append(recs("a", 5), "b0", "b1")
	if got := h.sinkStrings(); !slices.Equal(got, want) {
		t.Fatalf("sink = %v, want %v", got, want)
	}
	h.mustState(Streaming)
}

// TestRequestTransportBatchCapped: MinBatch above DrainBatch (or MaxPending)
// delivers at the smaller one.
func TestRequestTransportBatchCapped(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPending, cfg.DrainBatch = 40, 3
	h, rt := newRequestHarness(t, cfg, 1000)
	reach(t, h, Streaming)
	for _, r := range recs("a", 6) {
		h.deliver(r)
	}
	if !slices.Equal(rt.sizes, []int{3, 3}) {
		t.Fatalf("batches = %v, want [3 3]", rt.sizes)
	}
}

// TestRequestTransportNoPossiblyLost: a RequestTransport's deliveries are
// receipts: a drop right after them counts nothing as possibly lost, and
// what failed is kept and sent after the reconnect, in order.
func TestRequestTransportNoPossiblyLost(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPending, cfg.DrainBatch = 40, 100
	h, _ := newRequestHarness(t, cfg, 2)
	reach(t, h, Streaming)
	h.deliver("a0")
	h.deliver("a1")
	h.transport.up = false
	h.deliver("b0")
	h.deliver("b1")
	h.mustState(Disconnected)
	if s := h.manager.Stats(); s.PossiblyLost != 0 || s.Delivered != 2 {
		t.Fatalf("stats = %+v, want 2 delivered, none possibly lost", s)
	}
	h.transport.up = true
	due, _ := h.clock.NextDue()
	h.clock.Advance(due.Sub(h.clock.Now()))
	h.settle()
	h.mustState(Streaming)
	if got := h.sinkStrings(); !slices.Equal(got, []string{"a0", "a1", "b0", "b1"}) {
		t.Fatalf("sink = %v", got)
	}
}
