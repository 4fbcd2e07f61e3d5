package cluster

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/fsm"
)

// Stats are the router's state and counters, read from the shards' published snapshots.
type Stats struct {
	Ready     bool          // as Config.Ready counts
	Members   []MemberStats // in the stable order
	Shards    []ShardStats
	Total     fsm.Stats // the shards' counters added up (gauges too)
	Restarts  uint64    // restarts of the shards' managers
	Retargets uint64    // times a shard moved to another member
	// NotShared counts new owners whose first NextSeq was behind what an earlier owner of the
	// shard acknowledged: the Brains do not share their acknowledged-mode store.
	NotShared uint64
	Discovery DiscoveryStats
}

// MemberStats is one member as the router sees it.
type MemberStats struct {
	Brain     string // node/name, the metrics' brain label
	Target    brain.Target
	Up        bool // its node is connected and its name registered
	LastError string
	Shards    int // shards it owns
	// Records of its shards while it owned them: delivered and confirmed (payload, term,
	// subject), acknowledged (acked).
	Delivered, Confirmed, Acked uint64
}

// ShardStats is one shard.
type ShardStats struct {
	Label   string
	Brain   string    // its owner ("" while none is live)
	Running bool      // its manager is up
	State   fsm.State // its manager's state
	Held    int       // records its tiers hold (not its inbox)
	Ring    int       // of those, in its RAM ring (payload, term, subject)
	Disk    int       // of those, in its spill directory
	Inbox   int
}

// DiscoveryStats is the pg discovery's state (zero without Discovery).
type DiscoveryStats struct {
	Seed       string // the seed in use, or to try next
	Connected  bool
	Monitoring bool // following pg:monitor/2 (false: polling)
	Pids       int  // group members known
	Updates    uint64
	LastError  string
}

func (r *Router) setDiscoveryStats(s DiscoveryStats, update bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Updates = r.discInfo.Updates
	if update {
		s.Updates++
	} else if s.LastError == "" {
		s.LastError = r.discInfo.LastError
	}
	r.discInfo = s
}

// Stats returns the router's state and counters.
func (r *Router) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Ready: r.readyLocked(), Retargets: r.retargets, Discovery: r.discInfo}
	for _, l := range r.lanes {
		r.attribute(l)
		snap := l.svc.Snapshot()
		s.Total = add(s.Total, snap.Stats)
		l.mu.Lock()
		s.NotShared += l.notShared
		l.mu.Unlock()
		s.Restarts += snap.Restarts
		st := ShardStats{Label: l.label, Running: snap.Running, State: snap.State, Held: l.held(), Inbox: l.inbox.Len()}
		if l.ring != nil {
			st.Ring = l.ring.Len()
		}
		if l.log != nil {
			st.Disk = l.log.Len()
		}
		if m, _, _ := l.current(); m != nil {
			st.Brain = m.key
		}
		s.Shards = append(s.Shards, st)
	}
	for _, m := range r.sortedMembers() {
		ms := MemberStats{Brain: m.key, Target: m.target, Up: m.up, Shards: m.shards,
			Delivered: m.delivered, Confirmed: m.confirmed, Acked: m.acked}
		if m.lastErr != nil {
			ms.LastError = m.lastErr.Error()
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

func (r *Router) sortedMembers() []*member {
	ms := make([]*member, 0, len(r.members))
	for _, m := range r.members {
		ms = append(ms, m)
	}
	stableOrder(ms)
	return ms
}

// Ready reports whether enough members are reachable (Config.Ready) and no shard's supervisor
// gave up.
func (r *Router) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readyLocked()
}

func (r *Router) readyLocked() bool {
	if r.closed || r.err != nil {
		return false
	}
	n, up := len(r.members), 0
	for _, m := range r.members {
		if m.up {
			up++
		}
	}
	switch r.opts.Ready {
	case ReadyAll:
		return n > 0 && up == n
	case ReadyQuorum:
		return up > n/2
	default:
		return up > 0
	}
}

// add adds b's counters and gauges to a's.
func add(a, b fsm.Stats) fsm.Stats {
	a.Delivered += b.Delivered
	a.Dropped += b.Dropped
	a.PossiblyLost += b.PossiblyLost
	a.Reconnects += b.Reconnects
	a.Attempt = max(a.Attempt, b.Attempt)
	for i := range a.Transitions {
		for j := range a.Transitions[i] {
			a.Transitions[i][j] += b.Transitions[i][j]
		}
	}
	a.Confirmed += b.Confirmed
	a.ConfirmRounds += b.ConfirmRounds
	a.ConfirmTimeouts += b.ConfirmTimeouts
	a.Unconfirmed += b.Unconfirmed
	a.Acked += b.Acked
	a.InFlight += b.InFlight
	a.BatchesSent += b.BatchesSent
	a.Resent += b.Resent
	a.AckTimeouts += b.AckTimeouts
	a.AcksIgnored += b.AcksIgnored
	a.SeqGaps += b.SeqGaps
	return a
}

// collector exports the members (label brain) at scrape time; each shard's manager exports its
// own pharos_fsm_* metrics (const label shard).
type collector struct{ r *Router }

var (
	descUp        = prometheus.NewDesc("pharos_cluster_member_up", "1 while the member's node is connected and its name registered.", []string{"brain"}, nil)
	descShards    = prometheus.NewDesc("pharos_cluster_member_shards", "Shards the member owns.", []string{"brain"}, nil)
	descDelivered = prometheus.NewDesc("pharos_cluster_member_delivered_total", "Payload, term and subject modes: records delivered to the member.", []string{"brain"}, nil)
	descConfirmed = prometheus.NewDesc("pharos_cluster_member_confirmed_total", "Payload, term and subject modes: records the member's node confirmed in its mailbox.", []string{"brain"}, nil)
	descAcked     = prometheus.NewDesc("pharos_cluster_member_acked_total", "Acknowledged mode: records the member acknowledged.", []string{"brain"}, nil)
	descReady     = prometheus.NewDesc("pharos_cluster_ready", "1 while enough members are reachable (brain.ready).", nil, nil)
	descRetargets = prometheus.NewDesc("pharos_cluster_shard_moves_total", "Times a shard moved to another member.", nil, nil)
	descMembers   = prometheus.NewDesc("pharos_cluster_members", "Members known (configured or discovered).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descShards, descDelivered, descConfirmed, descAcked, descReady, descRetargets, descMembers} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, m := range s.Members {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b(m.Up), m.Brain)
		ch <- prometheus.MustNewConstMetric(descShards, prometheus.GaugeValue, float64(m.Shards), m.Brain)
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(m.Delivered), m.Brain)
		ch <- prometheus.MustNewConstMetric(descConfirmed, prometheus.CounterValue, float64(m.Confirmed), m.Brain)
		ch <- prometheus.MustNewConstMetric(descAcked, prometheus.CounterValue, float64(m.Acked), m.Brain)
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b(s.Ready))
	ch <- prometheus.MustNewConstMetric(descRetargets, prometheus.CounterValue, float64(s.Retargets))
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(len(s.Members)))
}
