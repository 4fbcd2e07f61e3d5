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
// arrived) per second, smoothed over a few samples. A backlog that does not fall but is less
// than a second of what leaves it (records in passing while streaming) is taken to be gone at
// that pace.
type drainEstimator struct {
	at      time.Time // when the last sample was taken; zero: none yet
	backlog int       // the backlog then
	out     uint64    // records that had left the backlog then (delivered, acknowledged)
	rate    float64   // smoothed net drain rate, records per second (negative: growing)
	outRate float64   // smoothed rate at which records leave, records per second
	primed  bool      // the rates hold at least one sample
}

// observe takes the backlog at now and the records that ever left it, and returns the
// estimated seconds until it is gone: 0 with nothing waiting, +Inf while it does not fall.
func (e *drainEstimator) observe(now time.Time, backlog int, out uint64) float64 {
	switch {
	case e.at.IsZero():
		e.at, e.backlog, e.out = now, backlog, out
	case now.Sub(e.at) >= drainSampleEvery:
		dt := now.Sub(e.at).Seconds()
		rate := float64(e.backlog-backlog) / dt
		outRate := float64(out-e.out) / dt
		if e.primed {
			rate, outRate = 0.5*e.rate+0.5*rate, 0.5*e.outRate+0.5*outRate
		}
		e.rate, e.outRate, e.primed = rate, outRate, true
		e.at, e.backlog, e.out = now, backlog, out
	}
	switch {
	case backlog == 0:
		return 0
	case !e.primed:
		return math.Inf(1)
	case float64(backlog) <= e.outRate/10:
		return float64(backlog) / e.outRate
	case e.rate > 0:
		return float64(backlog) / e.rate
	default:
		return math.Inf(1)
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
	s := &m.data.stats
	m.data.metrics.setBacklog(b, m.drain.observe(m.data.clock.Now(), b, s.Delivered+s.Acked))
}
