package fsm

import (
	"context"
	"time"
)

// Probes in Disconnected (docs/design.md, "Reconnecting"). After a long outage the full-jitter
// retry is drawn from up to MaxBackoff (a minute by default), so a Brain that came back could
// wait that long for its senders. With a transport that is a Prober and Config.ProbeInterval
// set, the manager asks about every ProbeInterval (jittered) whether the peer looks reachable
// again, which costs far less than a connection attempt (for the Brain: one EPMD lookup). Once
// it does, the remaining wait is drawn again from [0, min(remaining, ProbeSpread)): senders of a
// fleet that all see the Brain return connect spread over ProbeSpread, not at once.

// Prober is optionally implemented by a Transport or AckTransport that can tell, without
// connecting, whether its peer looks reachable (the Brain transport: the Brain's node is
// registered with its EPMD, or its static address accepts TCP connections).
type Prober interface {
	// Probe returns nil when the peer looks reachable.
	Probe(ctx context.Context) error
}

// armRetry sets the retry due after delay and returns the state timeout that waits for it:
// the Tick itself, or first a Probe when probes are on and due before it.
func (d *connData) armRetry(delay time.Duration) Action[ManagerEvent] {
	now := d.clock.Now()
	d.retryAt = now.Add(delay)
	return d.nextWait(now)
}

// nextWait is the state timeout until the next probe or the retry, whichever is first.
func (d *connData) nextWait(now time.Time) Action[ManagerEvent] {
	remaining := max(d.retryAt.Sub(now), 0)
	if p := d.probeDelay(); p > 0 && p < remaining && d.mode.prober() != nil {
		return SetStateTimeout(p, ManagerEvent{Type: EventProbe})
	}
	return SetStateTimeout(remaining, ManagerEvent{Type: EventTick})
}

// probeDelay is ProbeInterval drawn uniformly from [ProbeInterval/2, 3·ProbeInterval/2)
// (exactly ProbeInterval with JitterNone); 0 with probes off.
func (d *connData) probeDelay() time.Duration {
	i := d.cfg.ProbeInterval
	if i <= 0 {
		return 0
	}
	if d.cfg.Jitter == JitterNone {
		return i
	}
	return i/2 + time.Duration(d.rnd.Int64N(int64(i)))
}

// onProbe probes the peer (Disconnected only; elsewhere the event is stale). Unreachable: wait
// for the next probe or the retry. Reachable: the retry comes sooner, drawn from
// [0, min(remaining, ProbeSpread)).
func (d *connData) onProbe(state State) step {
	p := d.mode.prober()
	if state != Disconnected || p == nil || d.cfg.ProbeInterval <= 0 {
		return keep()
	}
	ctx, cancel := context.WithTimeout(d.life, min(d.cfg.ConnectTimeout, d.cfg.ProbeInterval/2))
	err := p.Probe(ctx)
	cancel()
	d.stats.Probes++
	d.metrics.probe(err == nil)
	now := d.clock.Now()
	if err != nil {
		return keep(d.nextWait(now))
	}
	wait := min(max(d.retryAt.Sub(now), 0), d.cfg.ProbeSpread)
	if d.cfg.Jitter == JitterNone {
		wait = 0
	} else if wait > 0 {
		wait = time.Duration(d.rnd.Int64N(int64(wait)))
	}
	d.retryAt = now.Add(wait)
	d.log.Info().Dur("retry_in", wait).Int("attempt", d.attempt).Msg("the peer looks reachable again: reconnecting sooner")
	return keep(SetStateTimeout(wait, ManagerEvent{Type: EventTick}))
}
