package fsm

import (
	"sync"
	"sync/atomic"
)

// Snapshot is what a manager publishes, after every message it handles, for readers on other
// goroutines (the agent's State and Stats, a readiness check): never read back from metrics.
type Snapshot struct {
	// Running: a manager process is up. False before the first one starts, between a crash and
	// the supervisor's restart, and once it stopped for good.
	Running bool
	// State is the machine's state as last published (Disconnected before the first).
	State State
	// Stats are the manager's counters. An incarnation restarted by its supervisor starts its
	// counters again; Service adds those of the incarnations before it.
	Stats Stats
	// Held is the number of records the tiers hold (ring and disk, or the acknowledged mode's
	// log), not counting the inbox.
	Held int
	// Restarts is how many times the supervisor restarted the manager.
	Restarts uint64
}

// Status is where the incarnations of one manager publish their Snapshot. It is safe for
// concurrent use; the zero value is not: use NewStatus.
type Status struct {
	snap        atomic.Pointer[Snapshot]
	incarnation atomic.Uint64 // of the incarnation allowed to publish
	ended       atomic.Uint64 // the last incarnation whose end was recorded
	restarts    atomic.Uint64
	base        Stats // the counters of incarnations that ended; under mu

	mu       sync.Mutex
	waiters  []chan struct{} // closed when the manager holds no record
	handback Handback        // what stopping incarnations handed back
}

// NewStatus returns a Status with nothing running.
func NewStatus() *Status {
	s := &Status{}
	s.snap.Store(&Snapshot{State: Disconnected})
	return s
}

// Load returns the last published snapshot.
func (s *Status) Load() Snapshot {
	snap := *s.snap.Load()
	snap.Restarts = s.restarts.Load()
	return snap
}

// begin makes a new incarnation the publisher and returns its number.
func (s *Status) begin() uint64 { return s.incarnation.Add(1) }

// publish stores the snapshot of incarnation inc, unless a later one has begun. Counters add
// those of the incarnations that ended.
func (s *Status) publish(inc uint64, snap Snapshot) {
	if s.incarnation.Load() != inc {
		return
	}
	s.mu.Lock()
	snap.Stats = addStats(s.base, snap.Stats)
	s.mu.Unlock()
	s.snap.Store(&snap)
}

// end records that incarnation inc stopped: its counters become the base of the next one's.
func (s *Status) end(inc uint64, last Stats) {
	if s.incarnation.Load() != inc || s.ended.Swap(inc) == inc {
		return
	}
	s.mu.Lock()
	s.base = addStats(s.base, last)
	snap := *s.snap.Load()
	snap.Running = false
	snap.Stats = s.base
	s.mu.Unlock()
	s.snap.Store(&snap)
}

// addStats adds b's counters to a's (gauges and Attempt come from b).
func addStats(a, b Stats) Stats {
	out := b
	out.Delivered += a.Delivered
	out.Dropped += a.Dropped
	out.PossiblyLost += a.PossiblyLost
	out.Reconnects += a.Reconnects
	out.Busy += a.Busy
	out.Probes += a.Probes
	out.Acked += a.Acked
	out.BatchesSent += a.BatchesSent
	out.Resent += a.Resent
	out.AckTimeouts += a.AckTimeouts
	out.AcksIgnored += a.AcksIgnored
	out.SeqGaps += a.SeqGaps
	out.Confirmed += a.Confirmed
	out.ConfirmRounds += a.ConfirmRounds
	out.ConfirmTimeouts += a.ConfirmTimeouts
	for i := range out.Transitions {
		for j := range out.Transitions[i] {
			out.Transitions[i][j] += a.Transitions[i][j]
		}
	}
	return out
}

// waitDrained registers a channel closed the next time the manager finds it holds no record.
func (s *Status) waitDrained() chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters = append(s.waiters, ch)
	s.mu.Unlock()
	return ch
}

// forget removes a waiter that gave up.
func (s *Status) forget(ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.waiters {
		if w == ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// drained wakes every waiter; the manager calls it when it holds nothing.
func (s *Status) drained() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.waiters {
		close(w)
	}
	s.waiters = nil
}

// waiting reports whether anyone waits for the manager to drain.
func (s *Status) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters) > 0
}

// handedBack adds what a stopping incarnation handed back.
func (s *Status) handedBack(hb Handback) {
	s.mu.Lock()
	s.handback.Spilled += hb.Spilled
	s.handback.Lost += hb.Lost
	s.mu.Unlock()
}

// HandedBack is what the manager's stopping incarnations handed back so far.
func (s *Status) HandedBack() Handback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handback
}
