package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pharos-node/pharos-node/fsm"
)

// Shards is the number of shards.
func (r *Router) Shards() int { return len(r.lanes) }

// Key is what records are sharded on.
func (r *Router) Key() Key { return r.opts.Key }

// ShardOf returns the shard of a record whose key is key.
func (r *Router) ShardOf(key string) int { return ShardOf(key, len(r.lanes)) }

// Deliver hands records (in order) to shard's connection manager, as fsm.Handle.DeliverMany:
// it returns how many it took, from the front, and never blocks.
func (r *Router) Deliver(shard int, records [][]byte) (int, error) {
	return r.lanes[shard].svc.Handle().DeliverMany(records)
}

// Room is how many more records shard's inbox takes now.
func (r *Router) Room(shard int) int {
	in := r.lanes[shard].inbox
	return in.Limit() - in.Len()
}

// Held is how many records the shards' tiers hold, not counting their inboxes.
func (r *Router) Held() int {
	n := 0
	for _, l := range r.lanes {
		n += l.held()
	}
	return n
}

// InboxLen is how many records wait in the shards' inboxes.
func (r *Router) InboxLen() int {
	n := 0
	for _, l := range r.lanes {
		n += l.inbox.Len()
	}
	return n
}

// SourceID is the spill directory's identity, the first part of each shard's SourceId ("" without
// a spill directory).
func (r *Router) SourceID() string { return r.layout.SourceID }

// NextSeq is, in the acknowledged mode, how many records the shards' logs have ever stored.
func (r *Router) NextSeq() uint64 {
	var n uint64
	for _, l := range r.lanes {
		switch {
		case l.log != nil:
			n += l.log.NextSeq()
		case l.mem != nil:
			n += l.mem.NextSeq()
		}
	}
	return n
}

// Done is closed when a shard's supervisor gave up (Err says why), or after Close.
func (r *Router) Done() <-chan struct{} { return r.done }

// Err is non-nil once a shard's supervisor gave up.
func (r *Router) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Reconfigure changes every shard's tuning while it runs (fsm.Service.Reconfigure; MaxPending
// divided among the shards, as at Start).
func (r *Router) Reconfigure(cfg fsm.Config) error {
	cfg.MaxPending = perShard(cfg.MaxPending, len(r.lanes), 1)
	for _, l := range r.lanes {
		c := cfg
		if l.ring != nil {
			c.MaxPending = min(c.MaxPending, l.ring.MaxRecords()-1)
		}
		if err := l.svc.Reconfigure(c); err != nil {
			return fmt.Errorf("shard %s: %w", l.label, err)
		}
	}
	r.connectTO.Store(int64(cfg.ConnectTimeout))
	return nil
}

// WaitDrained returns once every shard holds no record (in the acknowledged mode: every record
// acknowledged), or with ctx's error.
func (r *Router) WaitDrained(ctx context.Context) error {
	errs := make([]error, len(r.lanes))
	var wg sync.WaitGroup
	for i, l := range r.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.svc.WaitDrained(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Handback is what Close did with the records the shards still held.
type Handback = fsm.Handback

// Close stops the discovery and the members' watches, then every shard's manager (which hands
// its tiers back: RAM and inbox to its spill directory, or its log), and closes the shards' spill
// directories. Without spill directories what was left is counted in Lost. Call WaitDrained
// first to deliver what is held.
func (r *Router) Close(ctx context.Context) (Handback, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Handback{}, fmt.Errorf("%w: closed already", ErrInvalid)
	}
	r.closed = true
	r.mu.Unlock()
	r.settleTimer.Stop()
	r.cancel()
	if r.disc.Node != "" {
		_ = r.opts.Node.Kill(r.disc)
	}
	var mu sync.Mutex
	var hb Handback
	var errs []error
	var wg sync.WaitGroup
	for _, l := range r.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := l.svc.Stop(ctx)
			for err != nil {
				r.log.Warn().Str("shard", l.label).Msg("waiting for the shard's manager to hand its tiers back")
				stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				h, err = l.svc.Stop(stopCtx)
				cancel()
			}
			if l.mem != nil {
				h.Lost += l.mem.Len() // a RAM log ends with the process
			}
			cerr := l.close()
			mu.Lock()
			hb.Spilled += h.Spilled
			hb.Lost += h.Lost
			if cerr != nil {
				errs = append(errs, fmt.Errorf("close the spill directory of shard %s: %w", l.label, cerr))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.watch.Wait()
	r.doneOnce.Do(func() { close(r.done) })
	return hb, errors.Join(errs...)
}
