package tier

import "github.com/pharos-node/pharos-node/buffer"

// Ring is the RAM tier of the unacknowledged modes: a *buffer.Ring behind the connection
// manager's seam (fsm.Ring). The evictions the ring hands back are only counted: the manager
// spills the ring before a push could evict while a disk tier exists.
type Ring struct {
	ring    *buffer.Ring
	evicted [][]byte
}

// NewRing wraps r.
func NewRing(r *buffer.Ring) *Ring { return &Ring{ring: r} }

// Push appends rec and returns how many records the ring evicted to make room.
func (r *Ring) Push(rec []byte) int {
	r.evicted = r.ring.Push(rec, r.evicted[:0])
	n := len(r.evicted)
	clear(r.evicted)
	return n
}

// PutBackFront puts recs back in front, oldest first, and returns how many it evicted.
func (r *Ring) PutBackFront(recs [][]byte) int { return len(r.ring.PutBack(recs)) }

// DrainUpTo removes and returns up to n records from the front.
func (r *Ring) DrainUpTo(n int) [][]byte { return r.ring.DrainN(nil, n) }

// Drain removes and returns every record, oldest first.
func (r *Ring) Drain() [][]byte { return r.ring.Drain(nil) }

// Len is the number of records held. Safe for concurrent use.
func (r *Ring) Len() int { return r.ring.Len() }

// Bytes is the size of the records held. Safe for concurrent use.
func (r *Ring) Bytes() int { return r.ring.Bytes() }

// Cap is the number of records the ring holds before it evicts.
func (r *Ring) Cap() int { return r.ring.MaxRecords() }

// CapBytes is the size of the records the ring holds before it evicts.
func (r *Ring) CapBytes() int { return r.ring.MaxBytes() }
