package cluster

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"ergo.services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/buffer"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/spill"
	"github.com/pharos-node/pharos-node/tier"
)

// lane is one shard: its own supervised connection manager, inbox and tiers (in the
// acknowledged mode its own log and SourceId), and the member it currently delivers to.
type lane struct {
	index int
	label string // the shard's number as in names and labels: "07"
	name  gen.Atom

	mu      sync.Mutex
	owner   *member       // the live member it goes to; nil while none is live
	last    *member       // the owner of the current epoch: the one it was last sent to
	epoch   uint64        // grows when the shard moves to another member
	changed chan struct{} // closed at the next change of owner

	svc     *fsm.Service
	inbox   *fsm.Inbox
	ring    *buffer.Ring
	pending *tier.Unconfirmed
	log     *spill.Log
	mem     *tier.MemoryLog

	seen fsm.Stats // the counters last attributed to a member (under the router's mutex)

	// Under mu: the highest NextSeq any owner acknowledged, and whether the current epoch's
	// first acknowledgement was checked against it (see checkShared).
	maxAck    uint64
	checkedEp uint64
	notShared uint64 // times an owner's NextSeq was found behind another's
}

// checkShared looks at an acknowledgement (NextSeq next) of the current epoch, under mu: a
// store the Brains share never goes back, so a new owner whose first NextSeq is below what
// another owner acknowledged does not share it (or lost it), and a shard that moves between
// such Brains can have records processed twice, or lost when it comes back to a Brain whose
// NextSeq is ahead (docs/clusters.md). It reports whether this one was such a case.
func (l *lane) checkShared(next uint64) bool {
	behind := l.checkedEp != l.epoch && next < l.maxAck
	if behind {
		l.notShared++
	}
	l.checkedEp = l.epoch
	l.maxAck = max(l.maxAck, next)
	return behind
}

// current returns the owner, its epoch, and a channel closed at the next change.
func (l *lane) current() (*member, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owner, l.epoch, l.changed
}

// lastOwner is the member of the current epoch.
func (l *lane) lastOwner() *member {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// setOwner makes m the owner (nil: none is live) and reports whether the shard moves to another
// member: a new epoch. A shard left without an owner keeps its epoch (its connection, if it still
// works, goes on), and so does one whose owner comes back.
func (l *lane) setOwner(m *member) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owner == m {
		return false
	}
	l.owner = m
	moved := m != nil && m != l.last
	if moved {
		l.last = m
		l.epoch++
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return moved
}

// isEpoch reports whether epoch is still the lane's, and if so runs f under the lane's mutex, so
// that no change of owner happens while it runs (the acknowledgement proxy's forwarding).
func (l *lane) isEpoch(epoch uint64, f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch {
		return false
	}
	f()
	return true
}

// held is how many records the lane's tiers hold, not counting its inbox.
func (l *lane) held() int {
	n := 0
	if l.ring != nil {
		n += l.ring.Len()
	}
	if l.pending != nil {
		n += l.pending.RAMLen()
	}
	if l.log != nil {
		n += l.log.Len()
	}
	if l.mem != nil {
		n += l.mem.Len()
	}
	return n
}

// perShard divides total among n shards, at least floor each.
func perShard(total, n, floor int) int { return max(total/n, floor) }

// openLane builds shard i's tiers and starts its connection manager (which connects once the
// shard has an owner).
func (r *Router) openLane(i int, label string) (*lane, error) {
	o := r.opts
	l := &lane{index: i, label: label, name: gen.Atom(o.ManagerName + "_" + label), changed: make(chan struct{})}
	metrics, err := fsm.NewMetrics(o.Registerer, prometheus.Labels{"shard": label})
	if err != nil {
		return nil, fmt.Errorf("cluster: shard %s: %w", label, err)
	}
	log := o.Logger.With().Str("shard", label).Logger()
	cfg := o.Delivery
	cfg.MaxPending = perShard(cfg.MaxPending, o.Shards, 1)
	aopts := fsm.ActorOptions{Config: cfg, Logger: log, Metrics: metrics}
	iopts := fsm.InboxOptions{Limit: perShard(o.MailboxSize, o.Shards, 1000)}
	if o.RefuseWhenFull && o.Mode != brain.ModeAcked && o.SpillDir == "" {
		// The ring's bounds (laneTiers): what RAM may hold before the door closes.
		iopts.RAMRecords, iopts.RAMBytes = perShard(o.RingRecords, o.Shards, 1000), perShard(o.RingBytes, o.Shards, 1<<20)
	}
	if l.inbox, err = fsm.NewInboxWithOptions(iopts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	aopts.Inbox = l.inbox
	if err := r.laneTiers(l, &aopts); err != nil {
		return nil, err
	}
	if err := aopts.Validate(); err != nil {
		l.close()
		return nil, fmt.Errorf("%w: shard %s: %w", ErrInvalid, label, err)
	}
	svc, err := fsm.StartService(o.Node, fsm.ServiceOptions{
		Name:             l.name,
		Actor:            aopts,
		Process:          gen.ProcessOptions{MailboxSize: int64(perShard(o.MailboxSize, o.Shards, 1000))},
		RestartIntensity: o.RestartIntensity,
		RestartPeriod:    o.RestartPeriod,
		Metrics:          metrics,
		Logger:           log,
	})
	if err != nil {
		l.close()
		return nil, fmt.Errorf("cluster: start the connection manager of shard %s: %w", label, err)
	}
	l.svc = svc
	return l, nil
}

// laneTiers sets the shard's tiers and transport factory in aopts for the mode.
func (r *Router) laneTiers(l *lane, aopts *fsm.ActorOptions) error {
	o := r.opts
	if o.SpillDir != "" {
		lg, err := r.openLaneLog(l)
		if err != nil {
			return err
		}
		l.log = lg
	}
	if o.Mode == brain.ModeAcked {
		aopts.Config.Delivery = fsm.DeliveryAcked
		aopts.NewAckTransport = func(p gen.Process) (fsm.AckTransport, error) { return r.newTransport(l, p), nil }
		aopts.Stored = o.Stored
		if l.log != nil {
			aopts.Log = l.log
			return nil
		}
		mem, err := tier.NewMemoryLog(perShard(o.RingRecords, o.Shards, 1000), rand.Reader)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		l.mem = mem
		aopts.Log = mem
		return nil
	}
	aopts.Config.Delivery = fsm.DeliveryUnacked
	records := perShard(o.RingRecords, o.Shards, 1000)
	aopts.Config.MaxPending = min(aopts.Config.MaxPending, records-1)
	ring, err := buffer.New(records, perShard(o.RingBytes, o.Shards, 1<<20))
	if err != nil {
		l.close()
		return fmt.Errorf("%w: ring: %w", ErrInvalid, err)
	}
	l.ring = ring
	aopts.Ring = tier.NewRing(ring)
	l.pending = &tier.Unconfirmed{}
	aopts.Unconfirmed = l.pending
	aopts.NewTransport = func(p gen.Process) (fsm.Transport, error) { return r.newTransport(l, p), nil }
	if l.log != nil {
		aopts.Spill = tier.NewSpill(l.log)
	}
	return nil
}

// openLaneLog opens the shard's spill directory, SpillDir/shard-NN. A new one gets the SourceId
// <layout id>.<shard>.<4 random bytes>: the layout's identity and the shard, and never one a
// directory had before (a Brain keeps a SourceId's NextSeq for ever).
func (r *Router) openLaneLog(l *lane) (*spill.Log, error) {
	o := r.opts
	logger := o.Logger.With().Str("shard", l.label).Logger()
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	laneMax := o.SpillMaxBytes / int64(o.Shards)
	seg := min(o.SpillSegmentBytes, laneMax/4)
	sopts := append([]spill.Option{spill.WithLogger(&logger)}, o.SpillOptions...)
	// The tail kept in memory is shared out too (4 MiB for one log).
	tail := max(spill.DefaultTailBytes/int64(o.Shards), 256<<10)
	sopts = append(sopts, spill.WithMaxBytes(laneMax), spill.WithSegmentSize(max(seg, 64<<10)), spill.WithTailBytes(tail),
		spill.WithSourceID(fmt.Sprintf("%s.%s.%x", r.layout.SourceID, l.label, suffix)))
	if o.Mode == brain.ModeAcked {
		// As agent's ackedSpillOptions: refuse when full (never drop unacknowledged records),
		// and reuse the memory of trimmed records.
		sopts = append(sopts, spill.WithOverflow(spill.Refuse), spill.WithReadsReleasedByTrim())
	}
	if o.Registerer != nil {
		sopts = append(sopts, spill.WithRegisterer(o.Registerer))
	}
	lg, err := spill.Open(filepath.Join(o.SpillDir, laneDir(l.label)), sopts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: open the spill directory of shard %s: %w", l.label, err)
	}
	if n := lg.Len(); n > 0 {
		logger.Info().Int("records", n).Msg("records waiting on disk from an earlier run")
	}
	return lg, nil
}

// laneDir is the directory of the shard labelled label.
func laneDir(label string) string { return "shard-" + label }

// laneLabel is shard i's label among n: zero-padded to the width of n-1, at least 2 digits.
func laneLabel(i, n int) string {
	w := max(len(strconv.Itoa(n-1)), 2)
	return fmt.Sprintf("%0*d", w, i)
}

// close releases what openLane opened before it failed, or what a stopped lane holds.
func (l *lane) close() error {
	if l.log != nil {
		return l.log.Close()
	}
	return nil
}
