package agent

import (
	"errors"
	"fmt"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/ingest"
)

// DeliverMetric validates m (docs/wire.md's rules, Options.Limits), encodes it once
// (term_to_binary) and hands it to the connection manager. It never blocks: it fails with an
// *etf.ValidationError, ErrBusy, ErrStopped or ErrClosed.
func (a *Agent) DeliverMetric(m etf.Metric) error {
	if err := m.Validate(a.opts.Limits); err != nil {
		return err
	}
	rec, err := a.arena.encode(etf.MetricSize(&m), func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &m) })
	if err != nil {
		return err
	}
	return a.deliver(a.shardOfMetric(&m), rec)
}

// shardOfMetric is the cluster shard of m (0 without a cluster).
func (a *Agent) shardOfMetric(m *etf.Metric) int {
	if a.cluster == nil {
		return 0
	}
	return a.cluster.ShardOf(a.cluster.Key().OfMetric(m))
}

// DeliverMetrics is DeliverMetric for several metrics, in order, for a caller that has them
// together (a decoded request, a packet, a generator): the locking that DeliverMetric pays per
// record is paid once. It returns how many it accepted, from the front. With fewer than all,
// the error is the one DeliverMetric would have returned for the next metric (a
// *etf.ValidationError, ErrBusy, ErrStopped, ErrClosed), and the metrics after it were not
// looked at.
func (a *Agent) DeliverMetrics(ms []etf.Metric) (int, error) {
	n := len(ms)
	var invalid error
	var prev *etf.Metric
	for i := range ms {
		if err := ms[i].ValidateAfter(prev, a.opts.Limits); err != nil {
			n, invalid = i, err
			break
		}
		prev = &ms[i]
	}
	recs := make([][]byte, 0, min(n, deliverChunk))
	var shards []int // in cluster mode, of ms[done:done+deliverChunk]
	done := 0
	for done < n {
		// Encode no more than the inbox has room for (at least one, to get its refusal), and
		// at most deliverChunk: a refusal then wastes few encodings. In cluster mode, a run of
		// metrics of one shard at a time, in order: what was accepted stays a prefix of ms.
		k, shard := min(n-done, deliverChunk), 0
		if a.cluster != nil {
			if len(shards) == 0 {
				for i := range k {
					shards = append(shards, a.shardOfMetric(&ms[done+i]))
				}
			}
			shard = shards[0]
			run := 1
			for run < len(shards) && shards[run] == shard {
				run++
			}
			k = min(run, max(a.cluster.Room(shard), 1))
			shards = shards[k:]
		} else {
			k = min(k, max(a.inbox.Limit()-a.inbox.Len(), 1))
		}
		part := ms[done : done+k]
		var err error
		recs, err = a.arena.encodeEach(k, recs[:0],
			func(i int) int { return etf.MetricSize(&part[i]) },
			func(i int, dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &part[i]) })
		if err != nil { // not after Validate; kept for the encoder's own checks (recs holds those before)
			n, invalid = done+len(recs), err
		}
		accepted, err := a.deliverMany(shard, recs)
		done += accepted
		if err != nil {
			return done, err
		}
	}
	return done, invalid
}

// deliverChunk is how many records DeliverMetrics encodes before handing them over.
const deliverChunk = 256

// DeliverAlert is DeliverMetric for an alert.
func (a *Agent) DeliverAlert(al etf.Alert) error {
	if err := al.Validate(a.opts.Limits); err != nil {
		return err
	}
	rec, err := a.arena.encode(etf.AlertSize(&al), func(dst []byte) ([]byte, error) { return etf.AppendAlert(dst, &al) })
	if err != nil {
		return err
	}
	shard := 0
	if a.cluster != nil {
		shard = a.cluster.ShardOf(a.cluster.Key().OfAlert(&al))
	}
	return a.deliver(shard, rec)
}

// Deliver makes the agent an ingest.Sink.
func (a *Agent) Deliver(rec ingest.Record) error {
	switch {
	case rec.Metric != nil:
		return a.DeliverMetric(*rec.Metric)
	case rec.Alert != nil:
		return a.DeliverAlert(*rec.Alert)
	default:
		return fmt.Errorf("agent: empty ingest record")
	}
}

var _ ingest.Sink = (*Agent)(nil)

func (a *Agent) deliver(shard int, rec []byte) error {
	_, err := a.deliverMany(shard, [][]byte{rec})
	return err
}

// deliverMany hands recs to the manager's inbox (in cluster mode, the shard's), as many as it
// takes, and says how many.
func (a *Agent) deliverMany(shard int, recs [][]byte) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.refused.Add(1)
		return 0, ErrClosed
	}
	var n int
	var err error
	if a.cluster != nil {
		n, err = a.cluster.Deliver(shard, recs)
	} else {
		n, err = a.handle.DeliverMany(recs)
	}
	a.accepted.Add(uint64(n))
	if err != nil {
		a.refused.Add(1)
		switch {
		case errors.Is(err, fsm.ErrRAMFull):
			return n, fmt.Errorf("%w: %w", ErrFull, err)
		case errors.Is(err, fsm.ErrMailboxFull):
			return n, fmt.Errorf("%w: %w", ErrBusy, err)
		case errors.Is(err, fsm.ErrNotRunning):
			return n, fmt.Errorf("%w: %w", ErrStopped, err)
		}
		return n, fmt.Errorf("agent: %w", err)
	}
	return n, nil
}
