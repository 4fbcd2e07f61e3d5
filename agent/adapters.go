package agent

// Adapters from the real tiers (buffer.Ring, spill.Log) to the seams of package fsm. The
// acknowledged mode's adapter, SeqTier, is in acked_seqtier.go.

import (
	"github.com/pharos-node/pharos-node/buffer"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/spill"
)

// RingTier adapts a *buffer.Ring to fsm.Ring. The evictions buffer.Ring hands back are only
// counted: the manager spills the ring before a push could evict while a disk tier exists.
type RingTier struct {
	Ring    *buffer.Ring
	evicted [][]byte
}

var _ fsm.Ring = (*RingTier)(nil)

// Push implements fsm.Ring.
func (r *RingTier) Push(rec []byte) int {
	r.evicted = r.Ring.Push(rec, r.evicted[:0])
	n := len(r.evicted)
	clear(r.evicted)
	return n
}

// PutBackFront implements fsm.Ring.
func (r *RingTier) PutBackFront(recs [][]byte) int { return len(r.Ring.PutBack(recs)) }

// DrainUpTo implements fsm.Ring.
func (r *RingTier) DrainUpTo(n int) [][]byte { return r.Ring.DrainN(nil, n) }

// Len implements fsm.Ring.
func (r *RingTier) Len() int { return r.Ring.Len() }

// Bytes implements fsm.Ring.
func (r *RingTier) Bytes() int { return r.Ring.Bytes() }

// Cap implements fsm.Ring.
func (r *RingTier) Cap() int { return r.Ring.MaxRecords() }

// SpillTier adapts a *spill.Log to fsm.Spill (the unacknowledged modes' disk tier): ReadOldest
// rewinds the log's cursor, so a replay that failed is read again from its first record.
type SpillTier struct {
	Log *spill.Log
	buf []spill.Record
}

var _ fsm.Spill = (*SpillTier)(nil)

// Append implements fsm.Spill.
func (s *SpillTier) Append(rec []byte) error {
	_, err := s.Log.Append(rec)
	return err
}

// ReadOldest implements fsm.Spill.
func (s *SpillTier) ReadOldest(max int) ([]fsm.SpillRecord, error) {
	s.Log.Rewind()
	var err error
	s.buf, err = s.Log.Read(s.buf[:0], max)
	out := make([]fsm.SpillRecord, len(s.buf))
	for i, r := range s.buf {
		out[i] = fsm.SpillRecord{Seq: r.Seq, Data: r.Data}
	}
	clear(s.buf)
	return out, err
}

// Trim implements fsm.Spill.
func (s *SpillTier) Trim(throughSeq uint64) error { return s.Log.Trim(throughSeq) }

// Len implements fsm.Spill.
func (s *SpillTier) Len() int { return s.Log.Len() }

// Bytes implements fsm.Spill.
func (s *SpillTier) Bytes() int64 { return s.Log.Bytes() }
