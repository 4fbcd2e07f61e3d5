package fsm

import (
	"testing"
	"time"
)

// probeConfig: a long wait after the first failure (the first retry is drawn from [0, 60 s):
// fixedRand 0.5 makes it 30 s), a probe about every second, a 5 s spread.
func probeConfig() Config {
	cfg := testConfig()
	cfg.BaseBackoff, cfg.MaxBackoff = time.Minute, time.Minute
	cfg.ProbeInterval, cfg.ProbeSpread = time.Second, 5*time.Second
	return cfg
}

// TestProbeBringsTheRetryForward: while Disconnected with a retry 30 s away, the manager
// probes about every second (fixedRand 0.5: exactly every second), connects nothing while
// the peer is away, and once a probe finds it back draws the retry again from
// [0, min(remaining, ProbeSpread)): here 2.5 s after that probe, not 30 s after the drop.
func TestProbeBringsTheRetryForward(t *testing.T) {
	h := newHarness(t, withConfig(probeConfig()), withProber())
	h.manager.Start()
	h.settle()
	h.mustState(Streaming)
	h.transport.up = false
	h.manager.ConnectionLost()
	h.mustState(Disconnected)
	connects := h.transport.connectCalls
	h.clock.Advance(10*time.Second + 500*time.Millisecond)
	if h.transport.probeCalls != 10 || h.transport.connectCalls != connects {
		t.Fatalf("after 10.5 s away: %d probes (want 10), %d connects (want %d)", h.transport.probeCalls, h.transport.connectCalls, connects)
	}
	h.transport.up = true
	h.clock.Advance(500 * time.Millisecond) // the probe at 11 s finds it back
	h.mustState(Disconnected)
	h.clock.Advance(2500*time.Millisecond - time.Nanosecond)
	h.mustState(Disconnected)
	h.clock.Advance(time.Nanosecond)
	h.mustState(Streaming)
	if got := h.manager.Stats(); got.Probes != 11 || h.transport.connectCalls != connects+1 || got.Attempt != 0 {
		t.Fatalf("stats %+v, %d connects", got, h.transport.connectCalls)
	}
}

// TestProbeNotBeforeTheRetry: a retry sooner than a probe would be is not probed for, and the
// retry is never delayed by probes (the last probe interval ends at the retry).
func TestProbeNotBeforeTheRetry(t *testing.T) {
	cfg := probeConfig()
	cfg.BaseBackoff, cfg.MaxBackoff = 1600*time.Millisecond, 1600*time.Millisecond // retry at 0.8 s
	h := newHarness(t, withConfig(cfg), withProber())
	h.manager.Start()
	h.settle()
	h.transport.up = false
	h.manager.ConnectionLost()
	h.clock.Advance(800*time.Millisecond - time.Nanosecond)
	if h.transport.probeCalls != 0 {
		t.Fatalf("%d probes before a retry due in 0.8 s", h.transport.probeCalls)
	}
	connects := h.transport.connectCalls
	h.clock.Advance(time.Nanosecond)
	if h.transport.connectCalls != connects+1 {
		t.Fatal("the retry did not come at 0.8 s")
	}
	// The next wait is 0.8 s again (attempt 1, capped): 30 s one with probes is covered above;
	// here a wait of 2.5 s with probes at 1 s and 2 s must still retry at exactly 2.5 s.
	cfg.BaseBackoff, cfg.MaxBackoff = 5*time.Second, 5*time.Second
	h2 := newHarness(t, withConfig(cfg), withProber())
	h2.manager.Start()
	h2.settle()
	h2.transport.up = false
	h2.manager.ConnectionLost()
	connects = h2.transport.connectCalls
	h2.clock.Advance(2500*time.Millisecond - time.Nanosecond)
	if h2.transport.probeCalls != 2 || h2.transport.connectCalls != connects {
		t.Fatalf("%d probes, %d connects", h2.transport.probeCalls, h2.transport.connectCalls-connects)
	}
	h2.clock.Advance(time.Nanosecond)
	if h2.transport.connectCalls != connects+1 {
		t.Fatal("probes delayed the retry")
	}
}

// TestProbesOff: ProbeInterval 0, or a transport that is no Prober, never probes.
func TestProbesOff(t *testing.T) {
	cfg := probeConfig()
	cfg.ProbeInterval = 0
	h := newHarness(t, withConfig(cfg), withProber())
	h.manager.Start()
	h.settle()
	h.transport.up = false
	h.manager.ConnectionLost()
	h.clock.Advance(20 * time.Second)
	if h.transport.probeCalls != 0 {
		t.Fatalf("%d probes with ProbeInterval 0", h.transport.probeCalls)
	}
	neg := DefaultConfig()
	neg.ProbeInterval = -1
	if err := neg.Validate(); err == nil {
		t.Fatal("a negative ProbeInterval validated")
	}
	bad := DefaultConfig()
	bad.ProbeSpread = 0
	if err := bad.Validate(); err == nil {
		t.Fatal("probes without a spread validated")
	}
}
