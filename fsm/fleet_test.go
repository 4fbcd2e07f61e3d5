package fsm

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// The fleet simulation: n managers on one fake clock lose the same Brain at
// the same instant; the Brain stays away for outage. We count connection
// attempts per 100 ms bucket and report the peak.

type fleetBrain struct {
	up      bool
	clock   *fakeClock
	t0      time.Time
	buckets map[int64]int
}

var errBrainDown = errors.New("brain down")

type fleetTransport struct{ brain *fleetBrain }

func (f fleetTransport) Connect(context.Context) error {
	b := f.brain
	if !b.t0.IsZero() {
		b.buckets[int64(b.clock.Now().Sub(b.t0)/(100*time.Millisecond))]++
	}
	if !b.up {
		return errBrainDown
	}
	return nil
}

func (f fleetTransport) Deliver(context.Context, []byte) error {
	if !f.brain.up {
		return errBrainDown
	}
	return nil
}

type fleetResult struct {
	peak, attempts int
	allStreaming   bool
}

func simulateFleet(tb testing.TB, n int, jitter JitterMode, outage, horizon time.Duration) fleetResult {
	tb.Helper()
	clock := newFakeClock()
	brain := &fleetBrain{up: true, clock: clock, buckets: map[int64]int{}}
	cfg := DefaultConfig()               // 1 s base, 60 s cap
	cfg.FlushInterval = 10 * time.Second // flushing is not what is measured
	cfg.Jitter = jitter
	managers := make([]*Manager, n)
	for i := range managers {
		var m *Manager
		var err error
		m, err = NewManager(ManagerOptions{
			Config:    cfg,
			Transport: fleetTransport{brain: brain},
			Ring:      newFakeRing(cfg.MaxPending + 1),
			Clock:     clock,
			Rand:      rand.New(rand.NewPCG(42, uint64(i))),
			Timers: func(after time.Duration, id TimeoutID) func() bool {
				return clock.AfterFunc(after, func() { m.Fire(id) }).Stop
			},
		})
		if err != nil {
			tb.Fatal(err)
		}
		managers[i] = m
		m.Start()
	}
	clock.Advance(0)
	brain.up = false
	brain.t0 = clock.Now()
	for _, m := range managers {
		m.ConnectionLost()
	}
	for elapsed := time.Duration(0); elapsed < horizon; elapsed += 100 * time.Millisecond {
		if elapsed == outage {
			brain.up = true
		}
		clock.Advance(100 * time.Millisecond)
	}
	res := fleetResult{allStreaming: true}
	for _, c := range brain.buckets {
		res.peak = max(res.peak, c)
		res.attempts += c
	}
	for _, m := range managers {
		if m.State() != Streaming {
			res.allStreaming = false
		}
		m.Close()
	}
	return res
}

// TestFleetReconnectStorm: 10,000 managers lose the Brain for 10 s. Full
// jitter must cut the peak of reconnect attempts per 100 ms well below the
// lockstep of a fleet without jitter, and everyone must be back.
func TestFleetReconnectStorm(t *testing.T) {
	const n = 10_000
	outage, horizon := 10*time.Second, 120*time.Second
	withJitter := simulateFleet(t, n, JitterFull, outage, horizon)
	without := simulateFleet(t, n, JitterNone, outage, horizon)
	t.Logf("%d managers, Brain away %v: peak reconnect attempts per 100 ms: full jitter %d (total %d), no jitter %d (total %d)",
		n, outage, withJitter.peak, withJitter.attempts, without.peak, without.attempts)
	if without.peak != n {
		t.Errorf("without jitter the whole fleet should retry in lockstep: peak %d", without.peak)
	}
	if withJitter.peak*4 > without.peak {
		t.Errorf("full jitter peak %d not well below lockstep %d", withJitter.peak, without.peak)
	}
	if !withJitter.allStreaming || !without.allStreaming {
		t.Errorf("fleet not reconnected within %v: jitter %v, none %v", horizon, withJitter.allStreaming, without.allStreaming)
	}
}

// BenchmarkFleetReconnectStorm reports both peaks as custom metrics.
func BenchmarkFleetReconnectStorm(b *testing.B) {
	var withJitter, without fleetResult
	for b.Loop() {
		withJitter = simulateFleet(b, 10_000, JitterFull, 10*time.Second, 120*time.Second)
		without = simulateFleet(b, 10_000, JitterNone, 10*time.Second, 120*time.Second)
	}
	b.ReportMetric(float64(withJitter.peak), "peak/100ms-jitter")
	b.ReportMetric(float64(without.peak), "peak/100ms-nojitter")
}
