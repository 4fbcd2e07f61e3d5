package cluster

import (
	"context"
	"errors"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/brain"
)

// member is one Brain of the cluster: its transport factory and what the router knows of it.
// The router's mutex guards every field but the immutable ones (target, key, hash, brain).
type member struct {
	target brain.Target
	key    string // node/name
	hash   uint64
	order  int // position in Config.Targets; discovered members share one
	brain  *brain.Brain

	probed  bool // the first probe has reported
	up      bool
	since   time.Time
	lastErr error
	shards  int // shards it owns

	// Counters attributed to it: the growth of its shards' counters while it owned them.
	delivered, confirmed, acked uint64

	cancel context.CancelFunc // ends its health watch
	done   chan struct{}      // closed when the watch has ended
}

// errConnectionEnded: the member's node connection ended.
var errConnectionEnded = errors.New("cluster: connection to the member's node ended")

// watchMember probes m every HealthInterval until ctx ends: the connection to its node (made if need
// be) and its registered name (node.Conn.Probe). A lost connection reports it down at once.
func (r *Router) watchMember(ctx context.Context, m *member) {
	defer close(m.done)
	interval := r.opts.HealthInterval
	timeout := r.connectTimeout()
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		conn, err := r.opts.Connector.Connect(pctx, gen.Atom(m.target.Node))
		if err == nil {
			_, err = conn.Probe(pctx, gen.Atom(m.target.Name))
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.setHealth(m, err)
		var lost <-chan struct{}
		if err == nil {
			lost = conn.Done()
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-lost:
			t.Stop()
			cause := conn.Err()
			if cause == nil {
				cause = errConnectionEnded
			}
			r.setHealth(m, cause)
			// Probe again after a pause: at once would spin while the node restarts.
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(interval, 200*time.Millisecond)):
			}
		case <-t.C:
		}
	}
}
