package agent

// Adapters from the real tiers (buffer.Ring, spill.Log) to the seams of package fsm.

import (
	"errors"

	"github.com/rs/zerolog"

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

// SeqSpill adapts a *spill.Log to fsm.SeqLog and fsm.UnsentMarker, the acknowledged mode's store:
// the log numbers its records densely from 0 across restarts, and keeps the unsent marker. The
// manager's renumbering spans stay in RAM (it is no fsm.NumberingStore). Only the manager's
// goroutine calls it, except NextSeq, Len, Bytes and SourceID.
type SeqSpill struct {
	Log *spill.Log
	Zl  zerolog.Logger
	buf []spill.Record
}

var (
	_ fsm.SeqLog       = (*SeqSpill)(nil)
	_ fsm.UnsentMarker = (*SeqSpill)(nil)
)

// SourceID implements fsm.SeqLog.
func (s *SeqSpill) SourceID() string { return s.Log.SourceID() }

// NextSeq is the number the next record stored gets. Safe for concurrent use.
func (s *SeqSpill) NextSeq() uint64 { return s.Log.NextSeq() }

// Append implements fsm.SeqLog.
func (s *SeqSpill) Append(rec []byte) (uint64, error) {
	seq, err := s.Log.Append(rec)
	if errors.Is(err, spill.ErrNotSynced) {
		// Stored though the error says otherwise: under spill.SyncAlways a failed fsync
		// leaves the record written. Read will hand it out and the manager send it.
		s.Zl.Warn().Err(err).Uint64("seq", seq).Msg("acked record stored but not known durable")
		return seq, nil
	}
	return seq, err
}

// Read implements fsm.SeqLog.
func (s *SeqSpill) Read(dst []fsm.SpillRecord, max int) ([]fsm.SpillRecord, error) {
	var err error
	s.buf, err = s.Log.Read(s.buf[:0], max)
	for _, r := range s.buf {
		dst = append(dst, fsm.SpillRecord{Seq: r.Seq, Data: r.Data})
	}
	clear(s.buf)
	return dst, err
}

// Rewind implements fsm.SeqLog.
func (s *SeqSpill) Rewind() { s.Log.Rewind() }

// Trim implements fsm.SeqLog.
func (s *SeqSpill) Trim(throughSeq uint64) error { return s.Log.Trim(throughSeq) }

// Len implements fsm.SeqLog. Safe for concurrent use.
func (s *SeqSpill) Len() int { return s.Log.Len() }

// Bytes implements fsm.SeqLog. Safe for concurrent use.
func (s *SeqSpill) Bytes() int64 { return s.Log.Bytes() }

// UnsentFrom implements fsm.UnsentMarker.
func (s *SeqSpill) UnsentFrom() (uint64, bool) { return s.Log.UnsentFrom() }

// ClearUnsent implements fsm.UnsentMarker.
func (s *SeqSpill) ClearUnsent() error { return s.Log.ClearUnsent() }
