package fsm

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// snapshot is everything an ignored event must leave untouched.
type snapshot struct {
	state        State
	ring, spill  []string
	sink         int
	connectCalls int
	deliverCalls int
	armedID      TimeoutID
	armed        bool
	attempt      int
}

func (h *harness) snap() snapshot {
	id, armed := h.manager.machine.TimeoutArmed()
	return snapshot{
		state:        h.manager.State(),
		ring:         h.ringStrings(),
		spill:        h.spillStrings(),
		sink:         len(h.transport.sink),
		connectCalls: h.transport.connectCalls,
		deliverCalls: h.transport.deliverCalls,
		armedID:      id,
		armed:        armed,
		attempt:      h.manager.Stats().Attempt,
	}
}

func (s snapshot) equal(o snapshot) bool {
	return s.state == o.state && slices.Equal(s.ring, o.ring) && slices.Equal(s.spill, o.spill) &&
		s.sink == o.sink && s.connectCalls == o.connectCalls && s.deliverCalls == o.deliverCalls &&
		s.armedID == o.armedID && s.armed == o.armed && s.attempt == o.attempt
}

// reach drives a fresh harness into the given state through real events.
func reach(t *testing.T, h *harness, s State) {
	t.Helper()
	switch s {
	case Disconnected:
		h.transport.up = false
		h.manager.Start()
		h.settle() // the attempt fails
		h.transport.up = true
	case Connecting:
		h.manager.Start() // the first Tick; the zero-delay Attempt is pending
	case Streaming:
		h.manager.Start()
		h.settle()
	case Throttled:
		for _, r := range recs("old", 10) {
			h.ring.Push([]byte(r))
		}
		h.manager.Start()
		h.settle() // connects, replays 2 of 10: 8 > MaxPending 4
	}
	h.mustState(s)
}

// TestStateEventTable mirrors the original's handle_event, state by event.
// Rows marked ignored must leave the state, buffers, transport and the armed
// timeout exactly as they were (STYLE rule 11).
func TestStateEventTable(t *testing.T) {
	type row struct {
		from    State
		event   EventType
		sink    string   // "up" (default), "down", "fail" (next delivery fails)
		ring    []string // pushed into the ring once `from` is reached
		want    State
		ignored bool
		check   func(t *testing.T, h *harness, before snapshot)
	}
	buffered := func(t *testing.T, h *harness, before snapshot) {
		if got := h.ringStrings(); !slices.Equal(got, append(before.ring, "new")) {
			t.Fatalf("ring = %v, want %v + new", got, before.ring)
		}
		if h.transport.deliverCalls != before.deliverCalls || h.transport.connectCalls != before.connectCalls {
			t.Fatalf("transport used while buffering")
		}
	}
	retryArmed := func(t *testing.T, h *harness, before snapshot) {
		id, armed := h.manager.machine.TimeoutArmed()
		if !armed || id == before.armedID {
			t.Fatalf("no fresh retry timer armed")
		}
		if got := h.manager.Stats().Attempt; got != before.attempt+1 {
			t.Fatalf("attempt = %d, want %d", got, before.attempt+1)
		}
	}
	keptInRing := func(want ...string) func(*testing.T, *harness, snapshot) {
		return func(t *testing.T, h *harness, _ snapshot) {
			if got := h.ringStrings(); !slices.Equal(got, want) {
				t.Fatalf("ring = %v, want %v", got, want)
			}
		}
	}
	delivered := func(want ...string) func(*testing.T, *harness, snapshot) {
		return func(t *testing.T, h *harness, before snapshot) {
			if got := h.sinkStrings()[before.sink:]; !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
		}
	}
	rows := []row{
		// Disconnected: buffers; only Tick moves it.
		{from: Disconnected, event: EventDeliver, want: Disconnected, check: buffered},
		{from: Disconnected, event: EventTick, want: Connecting, check: func(t *testing.T, h *harness, before snapshot) {
			if h.transport.connectCalls != before.connectCalls {
				t.Fatal("Tick must not connect by itself; the zero-delay Attempt does")
			}
			if _, armed := h.manager.machine.TimeoutArmed(); !armed {
				t.Fatal("Attempt not armed")
			}
		}},
		{from: Disconnected, event: EventAttempt, want: Disconnected, ignored: true},
		{from: Disconnected, event: EventDrainTick, want: Disconnected, ignored: true},
		{from: Disconnected, event: EventFlushTick, want: Disconnected, ignored: true},
		{from: Disconnected, event: EventConnectionLost, want: Disconnected, ignored: true},

		// Connecting: buffers; Attempt is the one connection attempt.
		{from: Connecting, event: EventDeliver, want: Connecting, check: buffered},
		{from: Connecting, event: EventTick, want: Connecting, ignored: true},
		{from: Connecting, event: EventAttempt, ring: []string{"a", "b"}, want: Streaming,
			check: delivered("a", "b")},
		{from: Connecting, event: EventAttempt, sink: "down", ring: []string{"a"}, want: Disconnected,
			check: func(t *testing.T, h *harness, before snapshot) {
				retryArmed(t, h, before)
				keptInRing("a")(t, h, before)
			}},
		{from: Connecting, event: EventAttempt, sink: "fail", ring: []string{"a", "b"}, want: Disconnected,
			check: keptInRing("a", "b")},
		{from: Connecting, event: EventDrainTick, want: Connecting, ignored: true},
		{from: Connecting, event: EventFlushTick, want: Connecting, ignored: true},
		{from: Connecting, event: EventConnectionLost, want: Connecting, ignored: true},

		// Streaming: delivers as records arrive, ring first.
		{from: Streaming, event: EventDeliver, ring: []string{"a"}, want: Streaming, check: delivered("a", "new")},
		{from: Streaming, event: EventDeliver, sink: "fail", ring: []string{"a"}, want: Disconnected,
			check: func(t *testing.T, h *harness, before snapshot) {
				retryArmed(t, h, before)
				keptInRing("a", "new")(t, h, before)
			}},
		{from: Streaming, event: EventTick, want: Streaming, ignored: true},
		{from: Streaming, event: EventAttempt, want: Streaming, ignored: true},
		{from: Streaming, event: EventDrainTick, want: Streaming, ignored: true},
		{from: Streaming, event: EventFlushTick, ring: []string{"a", "b"}, want: Streaming,
			check: func(t *testing.T, h *harness, before snapshot) {
				delivered("a", "b")(t, h, before)
				if id, armed := h.manager.machine.TimeoutArmed(); !armed || id == before.armedID {
					t.Fatal("FlushTick not re-armed")
				}
			}},
		{from: Streaming, event: EventFlushTick, sink: "down", ring: []string{"a", "b"}, want: Disconnected,
			check: keptInRing("a", "b")},
		{from: Streaming, event: EventConnectionLost, want: Disconnected, check: retryArmed},

		// Throttled (8 old records in the ring): buffers, drains on DrainTick.
		{from: Throttled, event: EventDeliver, want: Throttled, check: buffered},
		{from: Throttled, event: EventDrainTick, want: Throttled, check: delivered("old2", "old3")},
		{from: Throttled, event: EventDrainTick, sink: "down", want: Disconnected,
			check: keptInRing(recs("old", 10)[2:]...)},
		{from: Throttled, event: EventTick, want: Throttled, ignored: true},
		{from: Throttled, event: EventAttempt, want: Throttled, ignored: true},
		{from: Throttled, event: EventFlushTick, want: Throttled, ignored: true},
		{from: Throttled, event: EventConnectionLost, want: Disconnected, check: retryArmed},

		// A busy peer (ErrPeerBusy) keeps the connection: Throttled, records held.
		{from: Connecting, event: EventAttempt, sink: "busy", ring: []string{"a", "b"}, want: Throttled,
			check: keptInRing("a", "b")},
		{from: Streaming, event: EventDeliver, sink: "busy", ring: []string{"a"}, want: Throttled,
			check: keptInRing("a", "new")},
		{from: Throttled, event: EventDrainTick, sink: "busy", want: Throttled,
			check: keptInRing(recs("old", 10)[2:]...)},

		// Probe: only Disconnected probes, and only with a Prober (TestProbe*): ignored here.
		{from: Disconnected, event: EventProbe, want: Disconnected, ignored: true},
		{from: Connecting, event: EventProbe, want: Connecting, ignored: true},
		{from: Streaming, event: EventProbe, want: Streaming, ignored: true},
		{from: Throttled, event: EventProbe, want: Throttled, ignored: true},
	}
	covered := map[[2]uint8]bool{}
	for _, r := range rows {
		covered[[2]uint8{uint8(r.from), uint8(r.event)}] = true
	}
	for _, s := range States() {
		for _, e := range []EventType{EventDeliver, EventTick, EventAttempt, EventDrainTick, EventFlushTick, EventConnectionLost, EventProbe} {
			if !covered[[2]uint8{uint8(s), uint8(e)}] {
				t.Errorf("table misses %v x %v", s, e)
			}
		}
	}
	for _, r := range rows {
		name := r.from.String() + "/" + r.event.String()
		if r.sink != "" {
			name += "/" + r.sink
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			reach(t, h, r.from)
			for _, rec := range r.ring {
				h.ring.Push([]byte(rec))
			}
			switch r.sink {
			case "down":
				h.transport.up = false
			case "fail":
				h.transport.failDeliverN = 1
			case "busy":
				h.transport.busy = true
			}
			before := h.snap()
			if r.event == EventDeliver {
				h.deliver("new")
			} else {
				h.cast(r.event)
			}
			h.mustState(r.want)
			if r.ignored {
				if after := h.snap(); !after.equal(before) {
					t.Fatalf("ignored event changed something:\nbefore %+v\nafter  %+v", before, after)
				}
			}
			if r.check != nil {
				r.check(t, h, before)
			}
			if got := h.manager.Stats().Dropped; got != 0 {
				t.Fatalf("dropped %d", got)
			}
		})
	}
}

// TestThrottledCatchesUp: DrainTicks pace the backlog down until it is
// within MaxPending, then Streaming.
func TestThrottledCatchesUp(t *testing.T) {
	h := newHarness(t)
	reach(t, h, Throttled) // 8 left
	h.clock.Advance(h.cfg.DrainInterval)
	h.mustState(Throttled) // 6 left
	h.clock.Advance(h.cfg.DrainInterval)
	h.mustState(Streaming) // 4 left: caught up
	h.clock.Advance(h.cfg.FlushInterval)
	h.clock.Advance(h.cfg.FlushInterval)
	if got := h.sinkStrings(); !slices.Equal(got, recs("old", 10)) {
		t.Fatalf("sink = %v", got)
	}
}

// TestTimeoutsAreTheEvents: the state timeouts, fired through the clock,
// drive the whole cycle without any cast.
func TestTimeoutsAreTheEvents(t *testing.T) {
	h := newHarness(t)
	h.transport.up = false
	h.manager.Start()
	h.settle()
	h.mustState(Disconnected)
	h.deliver("r0")
	h.transport.up = true
	// fixedRand 0.5: the first retry is at half the base backoff.
	h.clock.Advance(h.cfg.BaseBackoff/2 - time.Nanosecond)
	h.mustState(Disconnected)
	h.clock.Advance(time.Nanosecond)
	h.mustState(Streaming)
	if got := h.sinkStrings(); !slices.Equal(got, []string{"r0"}) {
		t.Fatalf("sink = %v", got)
	}
	if got := h.manager.Stats().Attempt; got != 0 {
		t.Fatalf("attempt not reset: %d", got)
	}
}

// TestBackoffGrowsUntilConnected checks the retry delays armed by repeated
// failures: the jittered draw of min(max, base*2^attempt).
func TestBackoffGrowsUntilConnected(t *testing.T) {
	h := newHarness(t, withRand(fixedRand{frac: 0.999999}))
	h.transport.up = false
	h.manager.Start()
	var delays []time.Duration
	h.settle() // attempt 0 fails
	for range 7 {
		due, ok := h.clock.NextDue()
		if !ok {
			t.Fatal("no retry armed")
		}
		delays = append(delays, due.Sub(h.clock.Now()))
		h.clock.Advance(due.Sub(h.clock.Now())) // Tick -> Connecting
		h.settle()                              // Attempt fails
		h.mustState(Disconnected)
	}
	for i, d := range delays {
		want := BackoffDelay(h.cfg, i)
		if d >= want || d < want-want/1000 {
			t.Fatalf("delay %d = %v, want just under %v", i, d, want)
		}
	}
	if delays[len(delays)-1] >= h.cfg.MaxBackoff {
		t.Fatal("cap exceeded")
	}
	if got := h.manager.Stats().Attempt; got != 8 {
		t.Fatalf("attempt = %d, want 8", got)
	}
}

// TestSpillBeforeEvict: at MaxPending the whole ring goes to disk before a
// push could evict; replay is disk first, then RAM, in order.
func TestSpillBeforeEvict(t *testing.T) {
	spill := &fakeSpill{}
	h := newHarness(t, withSpill(spill), withRingCap(5))
	reach(t, h, Disconnected)
	for _, r := range recs("r", 10) {
		h.deliver(r)
	}
	if got, want := h.spillStrings(), recs("r", 8); !slices.Equal(got, want) {
		t.Fatalf("spill = %v, want %v", got, want)
	}
	if got, want := h.ringStrings(), []string{"r8", "r9"}; !slices.Equal(got, want) {
		t.Fatalf("ring = %v, want %v", got, want)
	}
	h.cast(EventTick)
	h.settle()
	for range 10 {
		h.clock.Advance(h.cfg.DrainInterval)
	}
	h.mustState(Streaming)
	if got := h.sinkStrings(); !slices.Equal(got, recs("r", 10)) {
		t.Fatalf("sink = %v", got)
	}
	if s := h.manager.Stats(); s.Dropped != 0 {
		t.Fatalf("dropped %d", s.Dropped)
	}
}

// TestRAMOnlyEvictionsAreDropped: without a disk tier the ring evicts the
// oldest and the manager counts them.
func TestRAMOnlyEvictionsAreDropped(t *testing.T) {
	h := newHarness(t, withRingCap(5))
	reach(t, h, Disconnected)
	for _, r := range recs("r", 10) {
		h.deliver(r)
	}
	if got := h.manager.Stats().Dropped; got != 5 {
		t.Fatalf("dropped = %d, want 5", got)
	}
	if got, want := h.ringStrings(), recs("r", 10)[5:]; !slices.Equal(got, want) {
		t.Fatalf("ring = %v, want %v", got, want)
	}
}

// TestSpillFullEvictsAndCounts: when the disk refuses, the remainder goes
// back to the ring, whose evictions are counted; order is kept.
func TestSpillFullEvictsAndCounts(t *testing.T) {
	spill := &fakeSpill{limit: 6}
	h := newHarness(t, withSpill(spill), withRingCap(5))
	reach(t, h, Disconnected)
	for _, r := range recs("r", 12) {
		h.deliver(r)
	}
	s := h.manager.Stats()
	kept := len(h.spillStrings()) + len(h.ringStrings())
	if uint64(kept)+s.Dropped != 12 {
		t.Fatalf("kept %d + dropped %d != 12", kept, s.Dropped)
	}
	if s.Dropped == 0 {
		t.Fatal("expected drops with a full disk tier")
	}
	all := append(h.spillStrings(), h.ringStrings()...)
	if !isSubsequence(all, recs("r", 12)) {
		t.Fatalf("order broken: %v", all)
	}
}

// TestFailedColdReplayStaysOnDisk: what a failed replay did not send stays
// on disk, oldest first; what it sent is trimmed.
func TestFailedColdReplayStaysOnDisk(t *testing.T) {
	spill := &fakeSpill{}
	cfg := testConfig()
	cfg.DrainBatch = 100
	h := newHarness(t, withSpill(spill), withConfig(cfg))
	for _, r := range recs("d", 5) {
		_ = spill.Append([]byte(r))
	}
	h.ring.Push([]byte("ram"))
	h.manager.Start()
	// Let d0 through, fail on d1.
	orig := h.transport
	unackedOf(h.manager).transport = &failOnCall{fakeTransport: orig, failAt: 2}
	h.settle()
	h.mustState(Disconnected)
	if got := h.sinkStrings(); !slices.Equal(got, []string{"d0"}) {
		t.Fatalf("sink = %v", got)
	}
	if got := h.spillStrings(); !slices.Equal(got, recs("d", 5)[1:]) {
		t.Fatalf("spill = %v", got)
	}
	if got := h.ringStrings(); !slices.Equal(got, []string{"ram"}) {
		t.Fatalf("ring = %v", got)
	}
	// Reconnect: the remainder is replayed first, then the ring.
	unackedOf(h.manager).transport = orig
	due, _ := h.clock.NextDue()
	h.clock.Advance(due.Sub(h.clock.Now()))
	h.settle()
	h.mustState(Streaming)
	if got := h.sinkStrings(); !slices.Equal(got, append(recs("d", 5), "ram")) {
		t.Fatalf("sink = %v", got)
	}
}

// failOnCall fails the failAt-th Deliver call (1-based).
type failOnCall struct {
	*fakeTransport
	failAt int
	calls  int
}

func (f *failOnCall) Deliver(ctx context.Context, rec []byte) error {
	f.calls++
	if f.calls == f.failAt {
		return errInjected
	}
	return f.fakeTransport.Deliver(ctx, rec)
}

// TestFailedRAMDeliveryPutsBackFront: the failed record and the rest go
// back in front of the ring, before anything pushed since.
func TestFailedRAMDeliveryPutsBackFront(t *testing.T) {
	cfg := testConfig()
	cfg.DrainBatch = 100
	h := newHarness(t, withConfig(cfg))
	for _, r := range []string{"a", "b", "c"} {
		h.ring.Push([]byte(r))
	}
	h.manager.Start()
	orig := h.transport
	unackedOf(h.manager).transport = &failOnCall{fakeTransport: orig, failAt: 2}
	h.settle()
	h.mustState(Disconnected)
	h.deliver("d")
	if got := h.ringStrings(); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Fatalf("ring = %v", got)
	}
	if got := h.sinkStrings(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("sink = %v", got)
	}
}

// TestBatchTransportPartialFailure: a batch that stops half-way keeps the
// rest, in order.
func TestBatchTransportPartialFailure(t *testing.T) {
	spill := &fakeSpill{}
	cfg := testConfig()
	cfg.DrainBatch = 100
	h := newHarness(t, withSpill(spill), withBatch(), withConfig(cfg))
	for _, r := range recs("d", 4) {
		_ = spill.Append([]byte(r))
	}
	h.ring.Push([]byte("ram"))
	h.manager.Start()
	bt := unackedOf(h.manager).batch.(*fakeBatchTransport)
	unackedOf(h.manager).batch = &failingBatch{fakeBatchTransport: bt, okFirst: 3}
	h.settle()
	h.mustState(Disconnected)
	if got := h.spillStrings(); !slices.Equal(got, []string{"d3"}) {
		t.Fatalf("spill = %v", got)
	}
	unackedOf(h.manager).batch = bt
	due, _ := h.clock.NextDue()
	h.clock.Advance(due.Sub(h.clock.Now()))
	h.settle()
	h.mustState(Streaming)
	if got := h.sinkStrings(); !slices.Equal(got, append(recs("d", 4), "ram")) {
		t.Fatalf("sink = %v", got)
	}
	if bt.batches == 0 {
		t.Fatal("batch path not used")
	}
}

type failingBatch struct {
	*fakeBatchTransport
	okFirst int
}

func (f *failingBatch) DeliverBatch(ctx context.Context, recs [][]byte) (int, error) {
	n := min(f.okFirst, len(recs))
	got, err := f.fakeBatchTransport.DeliverBatch(ctx, recs[:n])
	if err != nil {
		return got, err
	}
	if n < len(recs) {
		return n, errInjected
	}
	return n, nil
}

// TestStaleTimeoutIsDropped: a timer cancelled by a state change can still
// deliver its message; the generation counter drops it.
func TestStaleTimeoutIsDropped(t *testing.T) {
	h := newHarness(t)
	reach(t, h, Streaming)
	flushID, armed := h.manager.machine.TimeoutArmed()
	if !armed {
		t.Fatal("flush not armed")
	}
	h.cast(EventConnectionLost)
	h.mustState(Disconnected)
	before := h.snap()
	if h.manager.Fire(flushID) {
		t.Fatal("stale FlushTick accepted")
	}
	if after := h.snap(); !after.equal(before) {
		t.Fatal("stale firing changed something")
	}
	// The current retry timer still works.
	retryID, _ := h.manager.machine.TimeoutArmed()
	if !h.manager.Fire(retryID) {
		t.Fatal("current timer refused")
	}
	h.mustState(Connecting)
}

// TestPossiblyLost counts what was delivered within the last flush interval
// before the connection dropped (docs/wire.md).
func TestPossiblyLost(t *testing.T) {
	h := newHarness(t)
	reach(t, h, Streaming)
	for _, r := range recs("a", 3) {
		h.deliver(r)
	}
	h.clock.Advance(40 * time.Millisecond) // a flush tick passes, nothing to do
	for _, r := range recs("b", 2) {
		h.deliver(r)
	}
	h.clock.Advance(20 * time.Millisecond) // a* are now 60 ms old, b* 20 ms
	h.cast(EventConnectionLost)
	if got := h.manager.Stats().PossiblyLost; got != 2 {
		t.Fatalf("possibly lost = %d, want 2", got)
	}
}

// TestReconnectsCounted: the first connection is not a reconnect.
func TestReconnectsCounted(t *testing.T) {
	h := newHarness(t)
	reach(t, h, Streaming)
	h.cast(EventConnectionLost)
	h.cast(EventTick)
	h.settle()
	h.mustState(Streaming)
	if got := h.manager.Stats().Reconnects; got != 1 {
		t.Fatalf("reconnects = %d, want 1", got)
	}
}

func TestSpillReadErrorKeepsData(t *testing.T) {
	spill := &fakeSpill{readErr: errors.New("disk on fire")}
	h := newHarness(t, withSpill(spill))
	h.ring.Push([]byte("a"))
	h.manager.Start()
	h.settle()
	h.mustState(Disconnected)
	if got := h.ringStrings(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("ring = %v", got)
	}
}

func isSubsequence(sub, of []string) bool {
	i := 0
	for _, s := range of {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

func TestConfigValidation(t *testing.T) {
	mutate := map[string]func(*Config){
		"BaseBackoff":     func(c *Config) { c.BaseBackoff = 0 },
		"MaxBackoff":      func(c *Config) { c.MaxBackoff = c.BaseBackoff - 1 },
		"MaxPending":      func(c *Config) { c.MaxPending = -1 },
		"FlushInterval":   func(c *Config) { c.FlushInterval = -time.Second },
		"DrainInterval":   func(c *Config) { c.DrainInterval = 0 },
		"DrainBatch":      func(c *Config) { c.DrainBatch = 0 },
		"ConnectTimeout":  func(c *Config) { c.ConnectTimeout = 0 },
		"DeliverTimeout":  func(c *Config) { c.DeliverTimeout = 0 },
		"DropLogInterval": func(c *Config) { c.DropLogInterval = 0 },
		"Jitter":          func(c *Config) { c.Jitter = 7 },
	}
	for field, m := range mutate {
		t.Run(field, func(t *testing.T) {
			cfg := DefaultConfig()
			m(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ConfigError on %s", err, field)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	// The ring must hold MaxPending records.
	_, err := NewManager(ManagerOptions{
		Config: testConfig(), Transport: &fakeTransport{}, Ring: newFakeRing(4),
		Timers: func(time.Duration, TimeoutID) func() bool { return func() bool { return true } },
	})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "MaxPending" {
		t.Fatalf("err = %v, want MaxPending error", err)
	}
	for name, opts := range map[string]ManagerOptions{
		"Transport": {Config: testConfig(), Ring: newFakeRing(16)},
		"Ring":      {Config: testConfig(), Transport: &fakeTransport{}},
		"Timers":    {Config: testConfig(), Transport: &fakeTransport{}, Ring: newFakeRing(16)},
	} {
		_, err := NewManager(opts)
		if !errors.As(err, &ce) || ce.Field != name {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
}
