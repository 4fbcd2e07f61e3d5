package agent

import (
	"fmt"

	"github.com/pharos-node/pharos-node/fsm"
)

// State is the connection manager's state, from the snapshot it publishes: Disconnected until
// the first connection, fsm.NotRunning between a crash and its restart (and once its supervisor
// gave up), fsm.Closed once Close has finished.
func (a *Agent) State() fsm.State {
	if a.done.Load() {
		return fsm.Closed
	}
	if a.cluster != nil {
		return a.clusterState()
	}
	snap := a.svc.Snapshot()
	if !snap.Running {
		if snap.Stats == (fsm.Stats{}) && a.svc.Err() == nil {
			return fsm.Disconnected // not started yet
		}
		return fsm.NotRunning
	}
	return snap.State
}

// Ready reports whether the connection manager is running (whatever its connection's state):
// a readiness check answers from it.
// In cluster mode it is the router's Ready: enough members reachable (ClusterConfig.Ready).
func (a *Agent) Ready() bool {
	if a.cluster != nil {
		return !a.done.Load() && a.cluster.Ready()
	}
	return !a.done.Load() && a.svc.Snapshot().Running
}

// Stats are the agent's counters.
type Stats struct {
	State        fsm.State
	Accepted     uint64 // records DeliverMetric/DeliverAlert accepted
	Refused      uint64 // delivery calls refused (busy, stopped, closed)
	Delivered    uint64 // records handed to the transport (unacknowledged modes)
	Confirmed    uint64 // of those, records a round trip confirmed in the Brain's mailbox
	Unconfirmed  int    // records delivered and not yet confirmed (held until they are)
	Acked        uint64 // records the Brain acknowledged (ModeAcked)
	Dropped      uint64 // records evicted from RAM with nowhere to go, or refused by the log
	PossiblyLost uint64 // written in the last flush interval before a drop (docs/wire.md)
	Reconnects   uint64
	Restarts     uint64            // times the supervisor restarted the connection manager
	Transitions  map[string]uint64 // "from->to": count
	RingRecords  int
	SpillRecords int // untrimmed records on disk
	Manager      fsm.Stats
	// Cluster, in cluster mode: each member's state and records, each shard's owner and state,
	// the discovery (Manager then adds up the shards' counters).
	Cluster *ClusterStats
}

// Stats returns the counters, from the snapshot the connection manager publishes.
func (a *Agent) Stats() Stats {
	if a.cluster != nil {
		s := Stats{State: a.State(), Accepted: a.accepted.Load(), Refused: a.refused.Load(), Transitions: map[string]uint64{}}
		a.clusterStats(&s)
		s.Transitions = transitions(s.Manager)
		return s
	}
	snap := a.svc.Snapshot()
	m := snap.Stats
	s := Stats{
		State: a.State(), Accepted: a.accepted.Load(), Refused: a.refused.Load(),
		Delivered: m.Delivered, Confirmed: m.Confirmed, Unconfirmed: int(m.Unconfirmed), Acked: m.Acked, Dropped: m.Dropped, PossiblyLost: m.PossiblyLost,
		Reconnects: m.Reconnects, Restarts: snap.Restarts, Transitions: transitions(m), Manager: m,
	}
	if a.ring != nil {
		s.RingRecords = a.ring.Len()
	}
	if a.spill != nil {
		s.SpillRecords = a.spill.Len()
	}
	return s
}

// transitions names the state changes counted in m: "from->to": count.
func transitions(m fsm.Stats) map[string]uint64 {
	out := map[string]uint64{}
	states := fsm.States()
	for i, from := range states {
		for j, to := range states {
			if n := m.Transitions[i][j]; n > 0 {
				out[from.String()+"->"+to.String()] = n
			}
		}
	}
	return out
}

// held is how many accepted records the tiers hold (RAM ring, disk, RAM log), not those still
// in the manager's inbox.
func (a *Agent) held() int {
	if a.cluster != nil {
		return a.cluster.Held()
	}
	n := 0
	if a.ring != nil {
		n += a.ring.Len()
	}
	if a.pending != nil {
		n += a.pending.RAMLen()
	}
	if a.spill != nil {
		n += a.spill.Len()
	}
	if a.memLog != nil {
		n += a.memLog.Len()
	}
	return n
}

// Reconfigure changes the connection manager's tuning while it runs: backoff, flush and drain
// pacing, timeouts, the acknowledged mode's batches and window, the confirmations (see
// fsm.Service.Reconfigure for what it refuses). Its Delivery field is set from the agent's mode.
func (a *Agent) Reconfigure(cfg fsm.Config) error {
	cfg.Delivery = fsm.DeliveryUnacked
	if a.opts.Mode == ModeAcked {
		cfg.Delivery = fsm.DeliveryAcked
	}
	if a.cluster != nil {
		if err := a.cluster.Reconfigure(cfg); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		a.opts.Delivery = cfg
		return nil
	}
	if err := a.svc.Reconfigure(cfg); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	a.opts.Delivery = cfg
	return nil
}
