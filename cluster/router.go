package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/spill"
)

// Router spreads records over the members of a cluster of Brains through one connection
// manager per shard. Its methods are safe for concurrent use.
type Router struct {
	opts   Options
	log    zerolog.Logger
	layout layout
	lanes  []*lane
	ctx    context.Context // the members' watches and the discovery
	cancel context.CancelFunc
	watch  sync.WaitGroup
	disc   gen.PID // the discovery process, with Discovery

	settleTimer *time.Timer
	// connectTO is Delivery.ConnectTimeout (nanoseconds), which Reconfigure changes while the
	// discovery and the health watches read it.
	connectTO atomic.Int64

	mu         sync.Mutex
	members    map[string]*member
	discovered bool // Discovery has reported the members once (always true with Targets)
	settled    bool // every member has been probed once, or the grace after the start passed
	retargets  uint64
	discInfo   DiscoveryStats
	closed     bool

	done     chan struct{} // closed when a shard's supervisor gave up, or by Close
	doneOnce sync.Once
	err      error // under mu
}

// connectTimeout is the current Delivery.ConnectTimeout.
func (r *Router) connectTimeout() time.Duration { return time.Duration(r.connectTO.Load()) }

// Start checks opts, lays out the spill directory, starts every shard's connection manager,
// the members' health watches and, with Discovery, the discovery process. Records may be
// delivered at once; a shard connects as soon as it has a live owner.
func Start(ctx context.Context, opts Options) (*Router, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	opts.Connector = newSerialConnector(opts.Connector)
	r := &Router{opts: opts, log: opts.Logger.With().Str("component", "cluster").Logger(),
		members: map[string]*member{}, discovered: opts.Discovery == nil, done: make(chan struct{})}
	r.connectTO.Store(int64(opts.Delivery.ConnectTimeout))
	r.ctx, r.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			r.abort()
		}
	}()
	if opts.SpillDir != "" {
		l, err := loadLayout(opts.SpillDir, opts.Shards)
		if err != nil {
			return nil, err
		}
		r.layout = l
	}
	for i, t := range opts.Targets {
		m, err := r.newMember(t, i)
		if err != nil {
			return nil, err
		}
		r.members[m.key] = m
	}
	for i := range opts.Shards {
		l, err := r.openLane(i, laneLabel(i, opts.Shards))
		if err != nil {
			return nil, err
		}
		r.lanes = append(r.lanes, l)
	}
	for _, l := range r.lanes {
		r.watch.Add(1)
		go r.watchLane(l)
	}
	r.mu.Lock()
	for _, m := range r.members {
		r.startWatch(m)
	}
	r.mu.Unlock()
	r.settleTimer = time.AfterFunc(opts.HealthInterval, r.settle)
	if opts.Discovery != nil {
		pid, err := opts.Node.Spawn(func() gen.ProcessBehavior { return &discovery{} }, gen.ProcessOptions{}, r)
		if err != nil {
			return nil, fmt.Errorf("cluster: start the discovery: %w", err)
		}
		r.disc = pid
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(&collector{r: r}); err != nil {
			return nil, fmt.Errorf("cluster: register metrics: %w", err)
		}
	}
	r.log.Info().Int("shards", opts.Shards).Str("routing", opts.Routing.String()).Str("key", opts.Key.String()).
		Int("targets", len(opts.Targets)).Bool("pg", opts.Discovery != nil).Str("ready", opts.Ready.String()).
		Msg("cluster router started")
	ok = true
	return r, nil
}

func (o *Options) withDefaults() error {
	if err := o.Config.withDefaults(); err != nil {
		return err
	}
	if o.Node == nil || o.Connector == nil {
		return fmt.Errorf("%w: Node and Connector are required", ErrInvalid)
	}
	if o.Delivery == (fsm.Config{}) {
		o.Delivery = fsm.DefaultConfig()
	}
	if o.ManagerName == "" {
		o.ManagerName = "pharos_conn"
	}
	if o.MailboxSize <= 0 || o.RingRecords <= 0 || o.RingBytes <= 0 {
		return fmt.Errorf("%w: MailboxSize, RingRecords and RingBytes must be positive", ErrInvalid)
	}
	if o.SpillMaxBytes == 0 {
		o.SpillMaxBytes = spill.DefaultMaxBytes
	}
	if o.SpillSegmentBytes == 0 {
		o.SpillSegmentBytes = spill.DefaultSegmentSize
	}
	return nil
}

func (r *Router) newMember(t brain.Target, order int) (*member, error) {
	b, err := brain.NewBrainWithQueueLimit(r.opts.Connector, t, r.opts.Mode, r.opts.BrainQueue, r.opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	key := memberKey(t)
	return &member{target: t, key: key, hash: mix64(fnv1a(key)), order: order, brain: b}, nil
}

// startWatch starts m's health watch (under mu).
func (r *Router) startWatch(m *member) {
	ctx, cancel := context.WithCancel(r.ctx)
	m.cancel, m.done = cancel, make(chan struct{})
	r.watch.Add(1)
	go func() {
		defer r.watch.Done()
		r.watchMember(ctx, m)
	}()
}

// watchLane ends the router when the shard's supervisor gives up.
func (r *Router) watchLane(l *lane) {
	defer r.watch.Done()
	select {
	case <-l.svc.Done():
		if err := l.svc.Err(); err != nil {
			r.fail(fmt.Errorf("shard %s: %w", l.label, err))
		}
	case <-r.ctx.Done():
	}
}

func (r *Router) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.doneOnce.Do(func() { close(r.done) })
}

// settle ends the grace after the start: shards get owners even if a member was not probed yet.
func (r *Router) settle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.settled && !r.closed {
		r.settled = true
		r.recompute()
	}
}

// setHealth records a probe of m (err nil: reachable) and moves shards if that changes who is
// live.
func (r *Router) setHealth(m *member, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.key] != m || r.closed {
		return // removed meanwhile
	}
	up := err == nil
	first := !m.probed
	m.probed, m.lastErr = true, err
	if up != m.up || first {
		m.up, m.since = up, time.Now()
		ev := r.log.Info()
		if !up {
			ev = r.log.Warn().Err(err)
		}
		ev.Str("brain", m.key).Bool("up", up).Msg("cluster member reachability")
	}
	if !r.settled && r.discovered {
		r.settled = true
		for _, x := range r.members {
			r.settled = r.settled && x.probed
		}
	}
	r.recompute()
}

// setMembers replaces the discovered members by targets.
func (r *Router) setMembers(targets []brain.Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	want := map[string]brain.Target{}
	for _, t := range targets {
		want[memberKey(t)] = t
	}
	for key, m := range r.members {
		if _, ok := want[key]; !ok {
			m.cancel()
			delete(r.members, key)
			r.log.Info().Str("brain", key).Msg("cluster member left the group")
		}
	}
	for key, t := range want {
		if _, ok := r.members[key]; ok {
			continue
		}
		m, err := r.newMember(t, len(r.opts.Targets))
		if err != nil {
			r.log.Warn().Err(err).Str("brain", key).Msg("discovered member ignored")
			continue
		}
		r.members[key] = m
		r.startWatch(m)
		r.log.Info().Str("brain", key).Msg("cluster member joined the group")
	}
	r.discovered = true
	r.recompute()
}

// live returns the members that are reachable, in the stable order (under mu).
func (r *Router) live() []*member {
	var live []*member
	for _, m := range r.members {
		if m.up {
			live = append(live, m)
		}
	}
	stableOrder(live)
	return live
}

// recompute gives every shard its owner among the live members and tells the manager of each
// shard whose owner changed that its connection is lost: its next Connect reaches the new
// owner, and what it holds goes there (under mu).
func (r *Router) recompute() {
	if !r.settled {
		return
	}
	live := r.live()
	for _, m := range r.members {
		m.shards = 0
	}
	for _, l := range r.lanes {
		var owner *member
		if i := ownerOf(r.opts.Routing, l.index, live); i >= 0 {
			owner = live[i]
			owner.shards++
		}
		prev := l.lastOwner()
		if owner == nil || owner == prev {
			l.setOwner(owner)
			continue
		}
		r.attribute(l)
		if l.setOwner(owner) && prev != nil {
			r.retargets++
			if err := l.svc.Handle().ConnectionLost(); err != nil && !errors.Is(err, fsm.ErrNotRunning) {
				r.log.Warn().Err(err).Str("shard", l.label).Msg("tell the shard's manager to move")
			}
			r.log.Info().Str("shard", l.label).Str("from", prev.key).Str("to", owner.key).Msg("shard moves to another member")
		}
	}
}

// attribute adds the growth of l's counters since the last time to the member it delivered
// to (under mu).
func (r *Router) attribute(l *lane) {
	s := l.svc.Snapshot().Stats
	if m := l.lastOwner(); m != nil {
		m.delivered += s.Delivered - min(l.seen.Delivered, s.Delivered)
		m.confirmed += s.Confirmed - min(l.seen.Confirmed, s.Confirmed)
		m.acked += s.Acked - min(l.seen.Acked, s.Acked)
	}
	l.seen = s
}

// abort undoes a Start that failed.
func (r *Router) abort() {
	r.cancel()
	if r.settleTimer != nil {
		r.settleTimer.Stop()
	}
	if r.disc != (gen.PID{}) {
		_ = r.opts.Node.Kill(r.disc)
	}
	for _, l := range r.lanes {
		if l.svc != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = l.svc.Stop(ctx)
			cancel()
		}
		_ = l.close()
	}
	r.watch.Wait()
}
