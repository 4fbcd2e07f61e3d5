package fsm

import (
	"math"
	"time"
)

// The backlog gauges: how many records wait (pharos_fsm_backlog_records) and, from how fast
// that number fell lately, when it should be gone (pharos_fsm_drain_seconds_estimate).

// drainSampleEvery is the least time between two samples of the backlog's rate of change.
const drainSampleEvery = time.Second

// drainEstimator estimates the time to drain from the backlog's net fall (delivered minus
// arrived) per second, smoothed over a few samples.
type drainEstimator struct {
	at      time.Time // when the last sample was taken; zero: none yet
	backlog int       // the backlog then
	rate    float64   // smoothed net drain rate, records per second (negative: growing)
	primed  bool      // rate holds at least one sample
}

// observe takes the backlog at now and returns the estimated seconds until it is gone: 0 with
// nothing waiting, +Inf while it does not fall.
func (e *drainEstimator) observe(now time.Time, backlog int) float64 {
	switch {
	case e.at.IsZero():
		e.at, e.backlog = now, backlog
	case now.Sub(e.at) >= drainSampleEvery:
		rate := float64(e.backlog-backlog) / now.Sub(e.at).Seconds()
		if e.primed {
			rate = 0.5*e.rate + 0.5*rate
		}
		e.rate, e.primed = rate, true
		e.at, e.backlog = now, backlog
	}
	switch {
	case backlog == 0:
		return 0
	case !e.primed || e.rate <= 0:
		return math.Inf(1)
	default:
		return float64(backlog) / e.rate
	}
}

// backlog is every record waiting to be delivered (and, with confirmations, confirmed): what
// the tiers hold and what waits in the inbox.
func (m *Manager) backlog() int {
	n := m.data.mode.held()
	if m.inbox != nil {
		n += m.inbox.Len()
	}
	return n
}

// updateBacklog sets the backlog gauges.
func (m *Manager) updateBacklog() {
	if m.data.metrics == nil {
		return
	}
	b := m.backlog()
	m.data.metrics.setBacklog(b, m.drain.observe(m.data.clock.Now(), b))
}
