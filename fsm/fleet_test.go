package fsm

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
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
	probes  int
}

var errBrainDown = errors.New("brain down")

type fleetTransport struct{ brain *fleetBrain }

// fleetProber is a fleetTransport that can be probed (an EPMD lookup in the real one).
type fleetProber struct{ fleetTransport }

func (f fleetProber) Probe(context.Context) error {
	f.brain.probes++
	if !f.brain.up {
		return errBrainDown
	}
	return nil
}

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
	// back[i]: how long after the Brain's return manager i was Streaming again (sorted).
	back      []time.Duration
	probes    int // probes made while the Brain was away
	peakAfter int // the peak of attempts per 100 ms once the Brain is back
}

func simulateFleet(tb testing.TB, n int, jitter JitterMode, outage, horizon time.Duration) fleetResult {
	tb.Helper()
	return simulateFleetProbing(tb, n, jitter, outage, horizon, false)
}

// simulateFleetProbing is simulateFleet with managers whose transport is a Prober (probes on,
// as DefaultConfig has them) or not.
func simulateFleetProbing(tb testing.TB, n int, jitter JitterMode, outage, horizon time.Duration, probing bool) fleetResult {
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
		var transport Transport = fleetTransport{brain: brain}
		if probing {
			transport = fleetProber{fleetTransport{brain: brain}}
		}
		m, err = NewManager(ManagerOptions{
			Config:    cfg,
			Transport: transport,
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
	res := fleetResult{allStreaming: true}
	backAt := make([]time.Duration, n)
	for elapsed := time.Duration(0); elapsed < horizon; elapsed += 100 * time.Millisecond {
		if elapsed == outage {
			brain.up = true
			res.probes = brain.probes
		}
		clock.Advance(100 * time.Millisecond)
		if elapsed >= outage {
			for i, m := range managers {
				if backAt[i] == 0 && m.State() == Streaming {
					backAt[i] = elapsed + 100*time.Millisecond - outage
				}
			}
		}
	}
	for _, b := range backAt {
		if b > 0 {
			res.back = append(res.back, b)
		}
	}
	slices.Sort(res.back)
	for b, c := range brain.buckets {
		res.peak = max(res.peak, c)
		res.attempts += c
		if b >= int64(outage/(100*time.Millisecond)) {
			res.peakAfter = max(res.peakAfter, c)
		}
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

// TestFleetReconnectWithProbes: 10,000 managers lose the Brain for 90 s (long enough for
// backoffs of up to a minute) with probes on, as by default. Once the Brain is back, 9 in 10
// managers must be Streaming within 10 s (without probes a full-jitter wait up to the minute's
// cap keeps some away for most of a minute), and the connection attempts must stay spread: the
// peak per 100 ms well below the lockstep of a fleet without jitter.
func TestFleetReconnectWithProbes(t *testing.T) {
	const n = 10_000
	outage, horizon := 90*time.Second, 180*time.Second
	probing := simulateFleetProbing(t, n, JitterFull, outage, horizon, true)
	plain := simulateFleetProbing(t, n, JitterFull, outage, horizon, false)
	lockstep := simulateFleetProbing(t, n, JitterNone, outage, horizon, false)
	q := func(r fleetResult, f float64) time.Duration {
		return r.back[min(len(r.back)-1, int(f*float64(len(r.back))))]
	}
	t.Logf("%d managers, Brain away %v. With probes: back in p50 %v, p90 %v, max %v; peak attempts per 100 ms %d (after the return %d; total %d); %.0f probes a second during the outage",
		n, outage, q(probing, 0.5), q(probing, 0.9), q(probing, 1), probing.peak, probing.peakAfter, probing.attempts, float64(probing.probes)/outage.Seconds())
	t.Logf("Without probes: back in p50 %v, p90 %v, max %v; peak %d (after the return %d; total %d). No jitter: peak %d (after the return %d)",
		q(plain, 0.5), q(plain, 0.9), q(plain, 1), plain.peak, plain.peakAfter, plain.attempts, lockstep.peak, lockstep.peakAfter)
	if !probing.allStreaming || len(probing.back) != n {
		t.Fatalf("with probes %d of %d managers back within %v", len(probing.back), n, horizon-outage)
	}
	if p90 := q(probing, 0.9); p90 > 10*time.Second {
		t.Errorf("with probes 9 in 10 managers back within %v, want 10 s", p90)
	}
	if probing.peak*4 > lockstep.peak || probing.peakAfter*4 > lockstep.peakAfter {
		t.Errorf("with probes the peak %d (%d after the return) is not well below lockstep %d (%d)",
			probing.peak, probing.peakAfter, lockstep.peak, lockstep.peakAfter)
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
