package fsm

import (
	"bytes"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/tier"
)

func newMemLog(t *testing.T, capacity int) *tier.MemoryLog {
	t.Helper()
	l, err := tier.NewMemoryLog(capacity, bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAckedConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		field  string
		mutate func(*Config)
	}{
		{"Acked.BatchSize", func(c *Config) { c.Acked.BatchSize = 0 }},
		{"Acked.BatchDelay", func(c *Config) { c.Acked.BatchDelay = -time.Millisecond }},
		{"Acked.Window", func(c *Config) { c.Acked.Window = 0 }},
		{"Acked.AckTimeout", func(c *Config) { c.Acked.AckTimeout = 0 }},
		{"Delivery", func(c *Config) { c.Delivery = 7 }},
	} {
		cfg := DefaultConfig()
		cfg.Delivery = DeliveryAcked
		tc.mutate(&cfg)
		var ce *ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Acked = AckedConfig{} // not validated in the unacknowledged modes
	if err := cfg.Validate(); err != nil {
		t.Fatalf("unacked mode with a zero AckedConfig: %v", err)
	}
	cfg.Delivery = DeliveryAcked
	if _, err := NewManager(ManagerOptions{Config: DefaultConfig(), Timers: func(time.Duration, TimeoutID) func() bool { return nil }}); err == nil {
		t.Fatal("unacked manager without transport accepted")
	}
	acked := DefaultConfig()
	acked.Delivery = DeliveryAcked
	for _, opts := range []ManagerOptions{
		{Config: acked, Log: newMemLog(t, 1), Timers: func(time.Duration, TimeoutID) func() bool { return nil }},
		{Config: acked, AckTransport: newFakeNet(), Timers: func(time.Duration, TimeoutID) func() bool { return nil }},
	} {
		if _, err := NewManager(opts); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("acked manager without log or transport: %v", err)
		}
	}
	if got := DeliveryAcked.String() + DeliveryUnacked.String(); got != "ackedunacked" {
		t.Errorf("names: %q", got)
	}
}

// TestAckedBatchBySize: full batches go at once, up to the window.
func TestAckedBatchBySize(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 8)...)
	if got := h.net.firstSeqs(0); !slices.Equal(got, []uint64{0, 4}) {
		t.Fatalf("batches = %v, want [0 4]", got)
	}
	if s := h.manager.Stats(); s.InFlight != 8 || s.BatchesSent != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAckedBatchByDelay: a batch that is not full leaves after BatchDelay.
func TestAckedBatchByDelay(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver("a", "b", "c")
	h.clock.Advance(9 * time.Millisecond)
	if len(h.net.sent) != 0 {
		t.Fatalf("sent before the delay: %v", h.net.sent)
	}
	h.clock.Advance(time.Millisecond)
	if len(h.net.sent) != 1 || !slices.Equal(h.net.sent[0].payloads, []string{"a", "b", "c"}) {
		t.Fatalf("sent %+v, want one batch a b c", h.net.sent)
	}
}

// TestAckedWindowLimit: no more than Window batches in flight; an ack
// opens the window again.
func TestAckedWindowLimit(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 20)...)
	if len(h.net.sent) != 2 {
		t.Fatalf("%d batches in flight, window is 2", len(h.net.sent))
	}
	h.clock.Advance(50 * time.Millisecond) // the delay does not bypass the window
	if len(h.net.sent) != 2 {
		t.Fatalf("%d batches after the delay", len(h.net.sent))
	}
	h.net.brainTakes(1)
	h.net.acksArrive(h.manager, -1)
	if got := h.net.firstSeqs(0); !slices.Equal(got, []uint64{0, 4, 8}) {
		t.Fatalf("batches %v, want [0 4 8]", got)
	}
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 20)) {
		t.Fatalf("processed %v", got)
	}
	if h.log.Len() != 0 || h.manager.Stats().Acked != 20 || h.manager.Stats().InFlight != 0 {
		t.Fatalf("log %d, stats %+v", h.log.Len(), h.manager.Stats())
	}
}

// TestAckedCumulativeAck: one ack covers every batch below it; the log
// keeps exactly what is not acknowledged.
func TestAckedCumulativeAck(t *testing.T) {
	cfg := ackedTestConfig()
	cfg.Acked.Window = 4
	h := newAckHarness(t, cfg, newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 16)...)
	h.net.brainTakes(3)
	h.net.toSender = h.net.toSender[2:] // the first two acks are lost
	h.net.acksArrive(h.manager, -1)     // ack 12 covers batches 0, 4 and 8
	if got := h.log.Len(); got != 4 {
		t.Fatalf("log holds %d, want 4", got)
	}
	if s := h.manager.Stats(); s.Acked != 12 || s.InFlight != 4 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAckedIgnoredAcks: stale, foreign and too-large acks change nothing
// and are counted by reason.
func TestAckedIgnoredAcks(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), metrics)
	h.startSynced()
	h.deliver(recs("r", 8)...)
	h.net.brainTakes(1)
	h.net.acksArrive(h.manager, -1) // ack 4
	before := h.manager.Stats()
	id := h.log.SourceID()
	h.manager.Ack(id, 3)        // stale
	h.manager.Ack("someone", 8) // foreign
	h.manager.Ack(id, 9)        // beyond the 8 sent
	after := h.manager.Stats()
	if after.Acked != before.Acked || h.log.Len() != 4 || after.AcksIgnored != 3 || len(h.net.sent) != 2 {
		t.Fatalf("before %+v after %+v, log %d", before, after, h.log.Len())
	}
	for _, reason := range []string{ackIgnoredStale, ackIgnoredForeign, ackIgnoredBeyond} {
		if got := gathered(t, reg, "pharos_fsm_acks_ignored_total", map[string]string{"reason": reason}); got != 1 {
			t.Errorf("%s: %v", reason, got)
		}
	}
	h.mustState(Streaming)
}

// TestAckedTimeoutReconnectsAndResends: a Brain that stops acknowledging
// is a lost connection; after the backoff the manager reconnects,
// resynchronises and resends from the oldest unacknowledged record.
func TestAckedTimeoutReconnectsAndResends(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), metrics)
	h.startSynced()
	h.deliver(recs("r", 8)...)
	h.net.brainTakes(1)
	h.net.acksArrive(h.manager, -1) // 0..3 acknowledged, 4..7 in flight: the Brain is stuck
	h.clock.Advance(999 * time.Millisecond)
	h.mustState(Streaming)
	h.clock.Advance(time.Millisecond)
	h.mustState(Disconnected)
	if s := h.manager.Stats(); s.AckTimeouts != 1 {
		t.Fatalf("stats %+v", s)
	}
	if got := gathered(t, reg, "pharos_fsm_ack_timeouts_total", nil); got != 1 {
		t.Fatalf("metric = %v", got)
	}
	// The Brain wakes up and processes the stuck batch; its ack goes to the
	// old connection and is lost.
	h.net.drop(1, 0)
	h.clock.Advance(time.Second) // backoff, reconnect, probe
	h.net.exchange(h.manager)
	h.clock.Advance(h.cfg.Acked.BatchDelay)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 8)) {
		t.Fatalf("processed %v", got)
	}
	if h.log.Len() != 0 {
		t.Fatalf("log holds %d", h.log.Len())
	}
	// The probe told the manager 8: nothing was resent.
	if s := h.manager.Stats(); s.Resent != 0 || s.Acked != 8 || s.Attempt != 0 {
		t.Fatalf("stats %+v", s)
	}

	// Again, but the stuck batch is really lost: it is resent.
	h.deliver(recs("s", 4)...)
	h.clock.Advance(time.Second)
	h.mustState(Disconnected)
	h.net.drop(0, 0)
	h.clock.Advance(500 * time.Millisecond)
	h.net.exchange(h.manager)
	h.clock.Advance(h.cfg.Acked.BatchDelay)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, append(recs("r", 8), recs("s", 4)...)) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); s.Resent != 4 || s.AckTimeouts != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAckedGoBackN: the Brain loses a batch (its process restarted), then
// refuses the next one and re-acknowledges its NextSeq; the manager goes
// back and resends from there, once.
func TestAckedGoBackN(t *testing.T) {
	cfg := ackedTestConfig()
	cfg.Acked.Window = 3
	h := newAckHarness(t, cfg, newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 12)...)
	h.net.toBrain = h.net.toBrain[1:] // batch 0 lost
	h.net.brainTakes(1)               // batch 4 refused: ack 0
	h.net.acksArrive(h.manager, -1)
	if got := h.net.firstSeqs(3); !slices.Equal(got, []uint64{0, 4, 8}) {
		t.Fatalf("resent batches %v, want [0 4 8]", got)
	}
	// Batch 8 of the first round is refused too: that ack must not cause a
	// second go-back.
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 12)) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); len(h.net.sent) != 6 || s.Resent != 12 {
		t.Fatalf("%d batches sent, stats %+v", len(h.net.sent), s)
	}
}

// TestAckedConnectionLostResends: a drop loses batches in flight; after the
// reconnect the probe says where the Brain is and the rest is resent.
func TestAckedConnectionLostResends(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 8)...)
	h.net.drop(1, 0) // batch 0 arrived, its ack and batch 4 lost
	h.manager.ConnectionLost()
	h.mustState(Disconnected)
	h.deliver("late")
	h.clock.Advance(time.Second)
	h.net.exchange(h.manager)
	h.clock.Advance(h.cfg.Acked.BatchDelay)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, append(recs("r", 8), "late")) {
		t.Fatalf("processed %v", got)
	}
	if h.net.firstSeqs(2)[0] != 4 {
		t.Fatalf("resend started at %v, want 4", h.net.firstSeqs(2))
	}
}

// TestAckedUnsentMarker: the Brain processed records 0..9 that the log
// lost (an OS crash took a spill directory's tail); the log numbers new
// records from 0 again and marks them unsent. Whether the manager that
// stored them synchronises or a restarted one does, they are renumbered on
// top of the Brain's NextSeq and delivered: without the marker a restarted
// manager took them for records the Brain had, and trimmed them unsent
// (found in review). The marker is cleared before the first batch goes out,
// and a failure to clear it sends nothing.
func TestAckedUnsentMarker(t *testing.T) {
	for _, tc := range []struct {
		name               string
		restart, failClear bool
	}{{"same manager", false, false}, {"restarted manager", true, false}, {"clear fails", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			disk := newFakeDiskLog("src-z")
			disk.markerSet = true
			disk.failClear = tc.failClear
			net := newFakeNet()
			net.brain.next["src-z"] = 10
			net.up = false
			h := newAckHarness(t, ackedTestConfig(), disk, net, newFakeClock(), nil)
			h.manager.Start()
			h.deliver(recs("n", 5)...) // numbered 0..4, never sent
			h.clock.Advance(0)
			if tc.restart {
				h.restart()
			}
			net.up = true
			converge := func() {
				for range 50 {
					h.clock.Advance(h.cfg.MaxBackoff)
					h.net.exchange(h.manager)
				}
			}
			converge()
			if tc.failClear {
				if len(net.sent) != 0 || disk.Len() != 5 || !disk.markerSet {
					t.Fatalf("with the marker not cleared: %d batches sent, %d records held, marker %v", len(net.sent), disk.Len(), disk.markerSet)
				}
				disk.failClear = false
				converge()
			}
			if got := net.processed("src-z"); !slices.Equal(got, recs("n", 5)) {
				t.Fatalf("processed %v, want n0..n4", got)
			}
			if disk.markerSet || disk.Len() != 0 {
				t.Fatalf("marker set %v, %d records held", disk.markerSet, disk.Len())
			}
		})
	}
}

// TestAckedLateAnswerCountedOnce: an acknowledgement above everything sent
// since the last synchronisation (the late-answer path), reached here after
// a reconnect whose first acknowledgement is below the one before the drop
// (a Brain's NextSeq that went back), then the probe's answer. The records
// it covers are counted once, as they are read and trimmed: the late-answer
// path counted them too, from the lower NextSeq on (found in review; no
// other test reached that path).
func TestAckedLateAnswerCountedOnce(t *testing.T) {
	cfg := ackedTestConfig()
	cfg.Acked.BatchSize, cfg.Acked.Window = 2, 1
	h := newAckHarness(t, cfg, newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 6)...)
	for range 2 { // batches 0 and 2 processed and acknowledged, one at a time
		h.net.brainTakes(1)
		h.net.acksArrive(h.manager, -1)
	}
	h.net.brainTakes(1) // batch 4 processed: the Brain's NextSeq is 6
	h.net.drop(0, 0)    // its ack lost with the connection
	h.manager.ConnectionLost()
	h.clock.Advance(time.Second) // reconnect: the probe waits in toBrain
	h.mustState(Streaming)
	h.manager.Ack(h.log.SourceID(), 2) // an older ack, synchronises: resend from 2
	h.net.exchange(h.manager)          // the probe's answer (6) is late
	h.clock.Advance(time.Second)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 6)) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); s.Acked != 6 || h.log.Len() != 0 {
		t.Fatalf("acked %d of 6 records, %d left in the log; stats %+v", s.Acked, h.log.Len(), s)
	}
}

// TestAckedRestartOnSameLog: a restart over the same disk, after the Brain
// processed records whose ack and trim were lost, resends nothing the
// Brain already has.
func TestAckedRestartOnSameLog(t *testing.T) {
	disk := newFakeDiskLog("src-a")
	h := newAckHarness(t, ackedTestConfig(), disk, newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 8)...)
	h.net.brainTakes(1)
	h.net.acksArrive(h.manager, -1) // trims 0..3, not persisted
	h.net.brainTakes(-1)            // 4..7 processed, ack lost with the process
	h.restart()
	h.deliver("s0")
	h.clock.Advance(0)
	h.net.exchange(h.manager)
	h.clock.Advance(h.cfg.Acked.BatchDelay)
	h.net.exchange(h.manager)
	if got := h.net.processed("src-a"); !slices.Equal(got, append(recs("r", 8), "s0")) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); s.Acked != 9 || disk.Len() != 0 {
		t.Fatalf("stats %+v, disk %d", s, disk.Len())
	}
}

// TestAckedHoleRenumbered: a hole in the log's numbering (a spill lease
// after a crash) is closed: the Brain still sees consecutive numbers.
func TestAckedHoleRenumbered(t *testing.T) {
	disk := newFakeDiskLog("src-b")
	disk.jumpOnCrash = 1000
	h := newAckHarness(t, ackedTestConfig(), disk, newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 4)...)
	h.net.exchange(h.manager)
	disk.persistTrim()
	h.restart()
	h.deliver(recs("s", 4)...)
	h.clock.Advance(0)
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	if got := h.net.processed("src-b"); !slices.Equal(got, append(recs("r", 4), recs("s", 4)...)) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); s.SeqGaps != 1 {
		t.Fatalf("stats %+v", s)
	}
	if got := h.net.firstSeqs(1); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("batches after the restart %v, want [4]", got)
	}
}

// TestAckedEventsOutsideStreaming: acks before the connection are ignored,
// records are kept, and nothing is sent until the probe is answered.
func TestAckedEventsOutsideStreaming(t *testing.T) {
	net := newFakeNet()
	net.up = false
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), net, newFakeClock(), nil)
	h.manager.Start()
	h.clock.Advance(0)
	h.mustState(Disconnected)
	h.deliver(recs("r", 5)...)
	h.manager.Ack(h.log.SourceID(), 3)
	for _, e := range []EventType{EventAttempt, EventDrainTick, EventFlushTick, EventConnectionLost} {
		h.manager.Cast(ManagerEvent{Type: e})
		h.mustState(Disconnected)
	}
	if s := h.manager.Stats(); s.AcksIgnored != 1 || s.Acked != 0 || h.log.Len() != 5 {
		t.Fatalf("stats %+v", s)
	}
	net.up = true
	h.clock.Advance(time.Second)
	h.mustState(Streaming)
	if len(net.sent) != 0 || net.probes != 1 {
		t.Fatalf("sent %d batches before the probe was answered", len(net.sent))
	}
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	h.clock.Advance(h.cfg.Acked.BatchDelay)
	h.net.exchange(h.manager)
	if got := net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 5)) {
		t.Fatalf("processed %v", got)
	}
}

// TestAckedSendFailure: a failed send disconnects; the records stay.
func TestAckedSendFailure(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.net.failSendN = 1
	h.deliver(recs("r", 4)...)
	h.mustState(Disconnected)
	h.clock.Advance(time.Second)
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 4)) {
		t.Fatalf("processed %v", got)
	}
}

// TestAckedLogFull: a full log refuses records; they are counted as dropped
// and never leave a hole.
func TestAckedLogFull(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 3), newFakeNet(), newFakeClock(), nil)
	h.manager.Start() // not connected yet: records wait in the log
	h.deliver(recs("r", 5)...)
	if s := h.manager.Stats(); s.Dropped != 2 {
		t.Fatalf("stats %+v", s)
	}
	h.clock.Advance(0)
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 3)) {
		t.Fatalf("processed %v", got)
	}
}

// TestAckedTakeInbox: records taken from the inbox together are stored in
// order, and each full batch leaves as soon as the window has room, while
// the rest of the take is still being stored; a record the log refuses is
// counted and the rest of the take stored; after a failed send too.
func TestAckedTakeInbox(t *testing.T) {
	mem := newMemLog(t, 100)
	log := &watchedLog{SeqLog: mem}
	h := newAckHarness(t, ackedTestConfig(), log, newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	log.onAppend = func(rec []byte) {
		if string(rec) == "r5" && len(h.net.sent) != 1 {
			t.Errorf("r5 stored with %d batches sent, want the first one gone", len(h.net.sent))
		}
	}
	h.deliverTaken(recs("r", 9)...)
	if got := h.net.firstSeqs(0); !slices.Equal(got, []uint64{0, 4}) {
		t.Fatalf("batches = %v, want [0 4]", got)
	}
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	h.clock.Advance(10 * time.Millisecond) // the ninth goes after the batch delay
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 9)) {
		t.Fatalf("processed %v", got)
	}

	refusing := &watchedLog{SeqLog: newMemLog(t, 100), refuse: "bad"}
	h = newAckHarness(t, ackedTestConfig(), refusing, newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliverTaken("a", "b", "bad", "c", "d")
	if s := h.manager.Stats(); s.Dropped != 1 || refusing.Len() != 4 {
		t.Fatalf("stats %+v, log %d", s, refusing.Len())
	}
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("processed %v", got)
	}

	h = newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.net.failSendN = 1
	h.deliverTaken(recs("r", 10)...) // the first batch's send fails at r3
	h.mustState(Disconnected)
	if h.log.Len() != 10 {
		t.Fatalf("log holds %d records, want all 10", h.log.Len())
	}
	h.clock.Advance(time.Second)
	for range 3 {
		h.net.exchange(h.manager)
	}
	h.clock.Advance(10 * time.Millisecond)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, recs("r", 10)) {
		t.Fatalf("processed %v", got)
	}
}

// TestAckedStoredReleasesTaken: in the acknowledged mode TakeInbox hands
// every record it took to ManagerOptions.Stored, once, in order, refused ones
// included, after the log stored them; what the caller then writes over their
// memory reaches neither the log nor the Brain.
func TestAckedStoredReleasesTaken(t *testing.T) {
	log := &watchedLog{SeqLog: newMemLog(t, 100), refuse: "bad"}
	h := newAckHarness(t, ackedTestConfig(), log, newFakeNet(), newFakeClock(), nil)
	var released []string
	h.stored = func(records [][]byte) {
		for _, r := range records {
			released = append(released, string(r))
			for i := range r {
				r[i] = 'X' // the caller's next records
			}
		}
	}
	h.manager = h.build()
	h.startSynced()
	h.deliverTaken("a", "b", "bad", "c", "d", "e")
	h.deliverTaken("f")
	if want := []string{"a", "b", "bad", "c", "d", "e", "f"}; !slices.Equal(released, want) {
		t.Fatalf("released %q, want %q", released, want)
	}
	for range 3 {
		h.net.exchange(h.manager)
	}
	h.clock.Advance(10 * time.Millisecond) // the last partial batch
	h.net.exchange(h.manager)
	if got, want := h.net.processed(h.log.SourceID()), []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Fatalf("processed %q, want %q", got, want)
	}
}

// TestUnackedNeverReleases: the unacknowledged modes' ring keeps the records
// themselves, so ManagerOptions.Stored is never called there.
func TestUnackedNeverReleases(t *testing.T) {
	in := newInbox(t, 10)
	called := false
	m, err := NewManager(ManagerOptions{Config: actorConfig(), Transport: newFakeSink(), Ring: newFakeRing(1000), Inbox: in,
		Stored: func([][]byte) { called = true }, Timers: noTimers})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	for _, r := range recs("r", 3) {
		if err := in.put([]byte(r), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	m.TakeInbox()
	if called {
		t.Fatal("Stored called in the unacknowledged mode")
	}
}

// watchedLog is a SeqLog that refuses the record refuse and calls onAppend
// before storing each record.
type watchedLog struct {
	SeqLog
	refuse   string
	onAppend func(rec []byte)
}

var errRefusedForTest = errors.New("watched log: refused")

func (l *watchedLog) Append(rec []byte) (uint64, error) {
	if l.refuse != "" && string(rec) == l.refuse {
		return 0, errRefusedForTest
	}
	if l.onAppend != nil {
		l.onAppend(rec)
	}
	return l.SeqLog.Append(rec)
}

// TestInterceptAcks: the manager actor reads the Brain's pharos_ack as the
// node layer decodes it (an etf.Tuple) or as an Ack value; a malformed one
// (wrong arity, a NextSeq that is negative, a bignum or no integer) is
// counted as ignored with the reason "malformed"; another tuple is not an
// acknowledgement and is not counted.
func TestInterceptAcks(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), metrics)
	h.startSynced()
	src := h.log.SourceID()
	h.deliver(recs("r", 4)...)
	h.net.brainTakes(-1)
	h.net.toSender = nil // the Brain's ack is replaced by the test's
	nop := zerolog.Nop()
	for _, bad := range []etf.Tuple{
		{etf.Atom("pharos_ack"), []byte(src)},
		{etf.Atom("pharos_ack"), []byte(src), int64(-1)},
		{etf.Atom("pharos_ack"), []byte(src), new(big.Int).Lsh(big.NewInt(1), 70)},
		{etf.Atom("pharos_ack"), []byte(src), 4.0},
		{etf.Atom("pharos_ack"), etf.Atom("src"), int64(4)},
	} {
		if !h.manager.intercept(bad, nop) {
			t.Fatalf("%v not taken", bad)
		}
	}
	if !h.manager.intercept(etf.Tuple{etf.Atom("other"), int64(1)}, nop) {
		t.Fatal("a foreign tuple not taken")
	}
	if s := h.manager.Stats(); s.AcksIgnored != 5 || s.Acked != 0 {
		t.Fatalf("after malformed acks: %+v", s)
	}
	if got := testutil.ToFloat64(metrics.acksIgnored.WithLabelValues(ackIgnoredMalformed)); got != 5 {
		t.Fatalf("acks_ignored_total{reason=malformed} = %v", got)
	}
	h.manager.intercept(etf.Tuple{gen.Atom("pharos_ack"), []byte(src), int64(4)}, nop)
	if s := h.manager.Stats(); s.Acked != 4 || h.log.Len() != 0 {
		t.Fatalf("after a good ack: %+v, log %d", s, h.log.Len())
	}
	if ev, ok := translateManagerMessage(Ack{SourceID: "y", NextSeq: 4}); !ok || ev.Type != EventAck || ev.NextSeq != 4 {
		t.Errorf("translate Ack: %+v %v", ev, ok)
	}
}

func TestAckedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), metrics)
	h.startSynced()
	h.deliver(recs("r", 10)...) // batches 0 and 4 in flight, 8 and 9 wait
	h.net.toBrain = h.net.toBrain[:0]
	h.manager.ConnectionLost()
	h.clock.Advance(time.Second)
	h.net.brainTakes(-1) // the probe
	h.net.acksArrive(h.manager, -1)
	h.net.brainTakes(1) // resync at 0: 0..7 resent, 0..3 acknowledged, 8..9 sent
	h.net.acksArrive(h.manager, -1)
	for name, want := range map[string]float64{
		"pharos_fsm_batches_sent_total":   5,
		"pharos_fsm_batch_records_total":  18,
		"pharos_fsm_resent_records_total": 8,
		"pharos_fsm_acked_records_total":  4,
		"pharos_fsm_inflight_records":     6, // 4..7 and 8..9
		"pharos_fsm_unacked_records":      6,
		"pharos_fsm_unacked_bytes":        12,
		"pharos_fsm_ack_timeouts_total":   0,
		"pharos_fsm_seq_gaps_total":       0,
	} {
		if got := gathered(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestUnackedModesIgnoreAck: EventAck changes nothing in any state of the
// unacknowledged modes (STYLE rule 11).
func TestUnackedModesIgnoreAck(t *testing.T) {
	for _, s := range States() {
		t.Run(s.String(), func(t *testing.T) {
			h := newHarness(t, withClock(newFakeClock()), withTransport(&fakeTransport{up: true}))
			reach(t, h, s)
			before := h.snap()
			h.manager.Ack("any", 42)
			if after := h.snap(); !after.equal(before) {
				t.Fatalf("ack changed %+v into %+v", before, after)
			}
		})
	}
}

func TestActorOptionsAcked(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Delivery = DeliveryAcked
	ackTransport := func(gen.Process) (AckTransport, error) { return newFakeNet(), nil }
	inbox, err := NewInbox(10)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		opts  ActorOptions
	}{
		{"NewAckTransport", ActorOptions{Config: cfg, Log: newMemLog(t, 1), Inbox: inbox}},
		{"Log", ActorOptions{Config: cfg, NewAckTransport: ackTransport, Inbox: inbox}},
		{"Inbox", ActorOptions{Config: cfg, NewAckTransport: ackTransport, Log: newMemLog(t, 1)}},
	} {
		var ce *ConfigError
		if err := tc.opts.Validate(); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	// No Ring and no Transport needed in this mode.
	if err := (ActorOptions{Config: cfg, NewAckTransport: ackTransport, Log: newMemLog(t, 1), Inbox: inbox}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestAckedRenumberDurable: a log numbered from 1 is renumbered from the
// Brain's 0 through the log (which makes it durable); a failed renumbering
// sends nothing, and a restart numbers as the log does, resending nothing.
func TestAckedRenumberDurable(t *testing.T) {
	disk := newFakeDiskLog("src-n")
	disk.nextSeq = 1
	disk.failRenumber = true
	h := newAckHarness(t, ackedTestConfig(), disk, newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 4)...)
	h.mustState(Disconnected)
	if len(h.net.sent) != 0 || len(disk.renumbered) != 0 {
		t.Fatalf("sent %d batches without a durable renumbering", len(h.net.sent))
	}
	disk.failRenumber = false
	h.clock.Advance(time.Second)
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	if got := h.net.firstSeqs(0); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("batches %v, want [0]", got)
	}
	if !slices.Equal(disk.renumbered, [][2]uint64{{1, 0}}) {
		t.Fatalf("renumbered %v", disk.renumbered)
	}
	// The Brain processed r0..r3; the trim is lost in a crash: the restart
	// finds them under the numbers the Brain has and resends nothing.
	h.restart()
	h.deliver("s0")
	h.clock.Advance(0)
	h.net.exchange(h.manager)
	h.clock.Advance(h.cfg.Acked.BatchDelay)
	h.net.exchange(h.manager)
	if got := h.net.processed("src-n"); !slices.Equal(got, append(recs("r", 4), "s0")) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); s.SeqGaps != 0 || s.Resent != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestAckedBrainLostState: a Brain that forgot our SourceId refuses every
// batch; after the ack timeout the probe's answer (below what it
// acknowledged before) is adopted, and the records held are renumbered
// from it instead of being refused for ever.
func TestAckedBrainLostState(t *testing.T) {
	h := newAckHarness(t, ackedTestConfig(), newMemLog(t, 100), newFakeNet(), newFakeClock(), nil)
	h.startSynced()
	h.deliver(recs("r", 8)...)
	h.net.exchange(h.manager)
	delete(h.net.brain.next, h.log.SourceID()) // the Brain restarts without its state
	h.deliver(recs("s", 4)...)
	h.net.exchange(h.manager) // refused: ack 0, stale
	if s := h.manager.Stats(); s.AcksIgnored != 1 || s.InFlight != 4 {
		t.Fatalf("stats %+v", s)
	}
	h.clock.Advance(time.Second) // ack timeout
	h.mustState(Disconnected)
	h.clock.Advance(time.Second) // reconnect, probe
	h.net.exchange(h.manager)
	h.net.exchange(h.manager)
	if got := h.net.processed(h.log.SourceID()); !slices.Equal(got, append(recs("r", 8), recs("s", 4)...)) {
		t.Fatalf("processed %v", got)
	}
	if s := h.manager.Stats(); s.SeqGaps != 1 || h.log.Len() != 0 {
		t.Fatalf("stats %+v, log %d", s, h.log.Len())
	}
}
