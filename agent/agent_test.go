package agent_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// (a) The Brain is absent when the agent starts: records are buffered; once the Brain is up,
// every one of them arrives, once, in order.
func TestBrainAbsentAtStart(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	b.Kill9()
	opts := agentOptions(t, b)
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)

	const n = 5_000
	deliverAll(t, a, "absent", 0, n)
	time.Sleep(200 * time.Millisecond) // several failed attempts
	if s := a.State(); s != fsm.Disconnected && s != fsm.Connecting {
		t.Fatalf("state %v with the Brain down", s)
	}
	b.Restart()
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Sources["absent"].Received >= n })
	if !ok || !st.Sources["absent"].Exactly(n) {
		t.Fatalf("Brain stats %+v, want exactly %d in order", st.Sources["absent"], n)
	}
	waitState(t, a, 5*time.Second, fsm.Streaming)
	stats := a.Stats()
	t.Logf("agent stats: %+v", stats)
	if stats.Delivered != n || stats.Dropped != 0 {
		t.Fatalf("delivered %d, dropped %d; want %d, 0", stats.Delivered, stats.Dropped, n)
	}
}

// (b) The Brain node is killed with SIGKILL in the middle of a stream of 200,000 records, with
// the spill directory on, and restarted: every record arrives, in order, except at most those
// the manager counted as possibly lost.
func TestBrainKilledMidStream(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	opts := agentOptions(t, b)
	opts.SpillDir = t.TempDir()
	opts.Delivery.FlushInterval = 100 * time.Millisecond // the possibly-lost window
	opts.Delivery.MaxPending = 5_000
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)

	const n, chunk, src = 200_000, 1_000, "killed"
	const beforeKill = 100_000
	record := func(i int) etf.Metric { return chunkedMetric(src, chunk, i) }
	// A paced stream (about 40,000 records/s, which the Brain keeps up with) up to the middle;
	// then wait until the Brain has processed all of it.
	for i := 0; i < beforeKill; i += 2_000 {
		deliverRange(t, a, i, i+2_000, record)
		time.Sleep(50 * time.Millisecond)
	}
	lastBefore := fmt.Sprintf("%s-%d", src, beforeKill/chunk-1)
	if st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Sources[lastBefore].Next == chunk }); !ok {
		t.Fatalf("before the kill: %+v", st.Sources[lastBefore])
	}
	// The stream goes on; the Brain dies in the middle of a burst, and comes back while the
	// stream goes on.
	deliverRange(t, a, beforeKill, beforeKill+3_000, record)
	b.Kill9()
	killedAt := time.Now()
	for i := beforeKill + 3_000; i < n; i += 2_000 {
		deliverRange(t, a, i, min(i+2_000, n), record)
		if i == beforeKill+21_000 {
			b.Restart()
			t.Logf("Brain restarted %v after the kill", time.Since(killedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
	last := fmt.Sprintf("%s-%d", src, n/chunk-1)
	st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[last].Received == chunk })
	stats := a.Stats()
	if !ok {
		t.Fatalf("the last chunk did not arrive: %+v; agent %+v", st.Sources[last], stats)
	}
	// After the restart the Brain saw a suffix first..n-1 of the stream, each record once, in
	// order: the chunk holding first partly (its end), every later chunk whole.
	first := -1
	for c := 0; c < n/chunk; c++ {
		got, seen := st.Sources[fmt.Sprintf("%s-%d", src, c)]
		switch {
		case !seen && first < 0:
			continue
		case !seen:
			t.Fatalf("chunk %d missing after the restart", c)
		case first < 0:
			first = c*chunk + chunk - int(got.Received)
			tail := got.Received == int64(chunk) && got.Exactly(int64(chunk)) ||
				got.Missing == int64(chunk)-got.Received && got.MaxSeq == chunk-1 && got.Unique == got.Received && got.Duplicates == 0 && got.Reorders == 0
			if !tail {
				t.Fatalf("chunk %d is not a tail of the stream: %+v", c, got)
			}
		case !got.Exactly(int64(chunk)):
			t.Fatalf("chunk %d: %+v, want exactly %d in order", c, got, chunk)
		}
	}
	// Records 0..beforeKill-1 were processed before the kill; what is lost lies between.
	lost := first - beforeKill
	t.Logf("after the restart the Brain got records %d..%d; lost at most %d; the manager counted %d possibly lost; agent %+v", first, n-1, lost, stats.PossiblyLost, stats)
	if lost < 0 || uint64(lost) > stats.PossiblyLost {
		t.Fatalf("lost %d records, more than the %d counted as possibly lost", lost, stats.PossiblyLost)
	}
	// Every record confirmed in the Brain's mailbox once; those a drop left unconfirmed were
	// written again.
	if stats.Dropped != 0 || stats.Confirmed != n || stats.Delivered != n+stats.Manager.Resent {
		t.Fatalf("delivered %d (resent %d), confirmed %d, dropped %d with a spill directory",
			stats.Delivered, stats.Manager.Resent, stats.Confirmed, stats.Dropped)
	}
}

// The Brain process crashes (its supervisor restarts it) twice: the monitor's DOWN drops the
// connection each time and the manager reconnects, monitoring the new process.
func TestBrainProcessRestartedTwice(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	a, err := agent.Start(context.Background(), agentOptions(t, b))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)
	const src = "crash"
	deliverAll(t, a, src, 0, 100)
	waitState(t, a, 10*time.Second, fsm.Streaming)
	for round := 1; round <= 2; round++ {
		before := a.Stats().Reconnects
		if !b.WaitMonitored(10 * time.Second) {
			t.Fatalf("round %d: the agent's monitor never reached the Brain process", round)
		}
		b.Crash()
		deadline := time.Now().Add(10 * time.Second)
		for a.Stats().Reconnects == before {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no reconnect after the Brain process crashed: %+v", round, a.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
		waitState(t, a, 10*time.Second, fsm.Streaming)
	}
	// The third Brain process gets what is sent now.
	deliverAll(t, a, "after", 0, 1_000)
	if st, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources["after"].Received >= 1_000 }); !ok || !st.Sources["after"].Exactly(1_000) {
		t.Fatalf("after two crashes: %+v", st.Sources["after"])
	}
	stats := a.Stats()
	t.Logf("agent %+v", stats)
	if stats.Transitions["streaming->disconnected"] < 2 {
		t.Fatalf("transitions %v: want two drops", stats.Transitions)
	}
}

// (c) A slow Brain (a delay per message) fills its mailbox; the transport's queue check turns
// that into backpressure: the manager backs off, drains its backlog paced (Throttled) and
// returns to Streaming once the Brain has caught up, and nothing is lost.
func TestSlowBrainThrottles(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	opts := agentOptions(t, b)
	opts.BrainQueue = agent.QueueLimit{Max: 300, Every: 5 * time.Millisecond}
	opts.Delivery.MaxPending = 500
	opts.Delivery.DrainBatch = 100
	opts.Delivery.DrainInterval = 20 * time.Millisecond
	opts.Delivery.MaxBackoff = 100 * time.Millisecond
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)
	const n, src = 6_000, "slow"
	deliverAll(t, a, src, 0, 100)
	waitState(t, a, 10*time.Second, fsm.Streaming)
	b.SetDelay(2) // 500 records/s at most
	deliverAll(t, a, src, 100, n)
	waitState(t, a, 10*time.Second, fsm.Throttled)
	t.Logf("throttled: %+v", a.Stats())
	time.Sleep(500 * time.Millisecond)
	b.SetDelay(0)
	st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= n })
	if !ok || !st.Sources[src].Exactly(n) {
		t.Fatalf("Brain got %+v, want exactly %d in order", st.Sources[src], n)
	}
	waitState(t, a, 10*time.Second, fsm.Streaming)
	stats := a.Stats()
	t.Logf("agent %+v", stats)
	if stats.Transitions["throttled->streaming"] == 0 {
		t.Fatalf("never went from Throttled back to Streaming: %v", stats.Transitions)
	}
}

// Every delivery mode reaches the Brain in the shape docs/wire.md gives it, metrics and alerts.
func TestDeliveryModes(t *testing.T) {
	for _, mode := range []agent.Mode{agent.ModePayload, agent.ModeTerm, agent.ModeSubject, agent.ModeAcked} {
		t.Run(mode.String(), func(t *testing.T) {
			// A Brain each (the harness's Reset answers EOF on this Brain version).
			b := erltest.StartBrain(t, erltest.BrainOptions{})
			opts := agentOptions(t, b)
			opts.Mode = mode
			if mode == agent.ModeAcked {
				opts.SpillDir = t.TempDir()
			}
			a, err := agent.Start(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			const n = 2_000
			src := "mode-" + mode.String()
			deliverAll(t, a, src, 0, n)
			alert := etf.Alert{Name: "disk.full", Severity: etf.Critical, Message: "/var at 98%",
				Tags: []etf.Tag{{Key: "host", Value: "a"}}, TimestampMs: 1_700_000_000_000, Source: src}
			if err := a.DeliverAlert(alert); err != nil {
				t.Fatal(err)
			}
			st, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.Received >= n+1 })
			if !ok || !st.Sources[src].Exactly(n) || st.Alerts != 1 || st.Modes[mode.String()] != n+1 || st.Invalid != 0 {
				t.Fatalf("Brain stats %+v", st)
			}
			closeAgent(t, a, 10*time.Second)
			if mode == agent.ModeAcked && st.Acked[a.SourceID()] != n+1 {
				t.Fatalf("acked NextSeq %v, want %d for %s", st.Acked, n+1, a.SourceID())
			}
		})
	}
}

// Invalid records are refused at the door with the etf error naming the field; nothing is sent.
func TestInvalidRecordsRefused(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	a, err := agent.Start(context.Background(), agentOptions(t, b))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 5*time.Second)
	bad := []etf.Metric{
		{Name: "", Kind: etf.Gauge, Value: 1, Source: "x"},
		{Name: "nan", Kind: etf.Gauge, Value: math.NaN(), Source: "x"},
		{Name: "dup", Kind: etf.Gauge, Value: 1, Tags: []etf.Tag{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}, Source: "x"},
	}
	for _, m := range bad {
		var verr *etf.ValidationError
		if err := a.DeliverMetric(m); !errors.As(err, &verr) {
			t.Fatalf("DeliverMetric(%+v) = %v, want a *etf.ValidationError", m, err)
		}
	}
	if s := a.Stats(); s.Accepted != 0 {
		t.Fatalf("accepted %d invalid records", s.Accepted)
	}
}

// After Close, nothing is accepted; a second Close says so.
func TestCloseRefusesRecords(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	a, err := agent.Start(context.Background(), agentOptions(t, b))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, a, 10*time.Second, fsm.Streaming)
	if !a.Ready() {
		t.Fatal("not ready while streaming")
	}
	closeAgent(t, a, 5*time.Second)
	if err := a.DeliverMetric(seqMetric("x", 0)); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("deliver after close: %v", err)
	}
	if err := a.Close(context.Background()); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	// State and Stats come from the snapshot the manager publishes: closed, not the last state.
	if st, s := a.State(), a.Stats(); st != fsm.Closed || s.State != fsm.Closed || a.Ready() {
		t.Fatalf("after Close: State %v, Stats.State %v, Ready %v", st, s.State, a.Ready())
	}
}

// DeliverMetrics accepts a batch up to its first invalid metric, names that one's fault, and
// delivers what it accepted as DeliverMetric would, in order; after Close it refuses.
func TestDeliverMetricsBatch(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	opts := agentOptions(t, b)
	opts.Mode = agent.ModeAcked
	opts.SpillDir = t.TempDir()
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	const src = "batch"
	var ms []etf.Metric
	for i := range 300 {
		ms = append(ms, seqMetric(src, i))
	}
	bad := ms[120]
	bad.Name = ""
	withBad := append(slices.Clone(ms[:120]), bad)
	n, err := a.DeliverMetrics(withBad)
	var verr *etf.ValidationError
	if n != 120 || !errors.As(err, &verr) || !errors.Is(err, etf.ErrEmptyName) {
		t.Fatalf("DeliverMetrics with metric 120 invalid = %d, %v; want 120 and its ValidationError", n, err)
	}
	if n, err := a.DeliverMetrics(ms[120:]); n != 180 || err != nil {
		t.Fatalf("DeliverMetrics(rest) = %d, %v", n, err)
	}
	if n, err := a.DeliverMetrics(nil); n != 0 || err != nil {
		t.Fatalf("DeliverMetrics(nil) = %d, %v", n, err)
	}
	st, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.Received >= 300 })
	if !ok || !st.Sources[src].Exactly(300) || st.Invalid != 0 {
		t.Fatalf("Brain stats %+v", st)
	}
	if s := a.Stats(); s.Accepted != 300 {
		t.Fatalf("accepted %d, want 300", s.Accepted)
	}
	closeAgent(t, a, 10*time.Second)
	if n, err := a.DeliverMetrics(ms[:1]); n != 0 || !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("DeliverMetrics after close = %d, %v", n, err)
	}
}

// With a mailbox far smaller than the batches, DeliverMetrics accepts what fits, says how many,
// and the caller's retries of the rest deliver every record once, in order.
func TestDeliverMetricsSmallMailbox(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	opts := agentOptions(t, b)
	opts.Mode = agent.ModeAcked
	opts.SpillDir = t.TempDir()
	opts.MailboxSize = 10
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	const src, total = "small-mailbox", 5_000
	var ms []etf.Metric
	for i := range total {
		ms = append(ms, seqMetric(src, i))
	}
	busy := 0
	for pending := ms; len(pending) > 0; {
		n, err := a.DeliverMetrics(pending[:min(len(pending), 300)])
		pending = pending[n:]
		switch {
		case errors.Is(err, agent.ErrBusy):
			busy++
			time.Sleep(100 * time.Microsecond)
		case err != nil:
			t.Fatal(err)
		}
	}
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Received >= total })
	if !ok || !st.Sources[src].Exactly(total) {
		t.Fatalf("Brain stats %+v", st)
	}
	if s := a.Stats(); s.Accepted != total {
		t.Fatalf("accepted %d, want %d", s.Accepted, total)
	}
	t.Logf("%d busy answers", busy)
	closeAgent(t, a, 10*time.Second)
}
