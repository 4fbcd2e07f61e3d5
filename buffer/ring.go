package buffer

import (
	"errors"
	"fmt"
	"sync"
)

// ErrBounds is returned by New for a record or byte bound that is not positive.
var ErrBounds = errors.New("buffer: bounds must be positive")

// initialSlots is the slot array's size before it first grows (or the record bound, if smaller).
const initialSlots = 1024

// Ring is a bounded FIFO of records. The zero value is not usable; call New.
type Ring struct {
	mu sync.Mutex

	// slots is a circular array whose length is a power of two; the records are
	// slots[(head+i)&mask] for i in [0, n).
	slots []([]byte)
	mask  int
	head  int
	n     int
	bytes int

	maxRecords int
	maxBytes   int

	stats Stats

	ready chan struct{}
}

// Stats are a Ring's counters since New.
type Stats struct {
	Records int // records held now
	Bytes   int // bytes held now

	Pushed       uint64 // records accepted by Push
	Evicted      uint64 // records returned by Push or PutBack as evicted
	EvictedBytes uint64 // their bytes
	Drained      uint64 // records handed out by Drain and DrainN
	PutBack      uint64 // records put back at the front and kept
}

// New returns an empty ring holding at most maxRecords records whose lengths add up to at most
// maxBytes.
func New(maxRecords, maxBytes int) (*Ring, error) {
	if maxRecords <= 0 || maxBytes <= 0 {
		return nil, fmt.Errorf("%w: maxRecords=%d maxBytes=%d", ErrBounds, maxRecords, maxBytes)
	}
	size := pow2(min(maxRecords, initialSlots))
	return &Ring{
		slots:      make([][]byte, size),
		mask:       size - 1,
		maxRecords: maxRecords,
		maxBytes:   maxBytes,
		ready:      make(chan struct{}, 1),
	}, nil
}

// pow2 returns the smallest power of two >= n (n >= 1).
func pow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Push appends rec at the back. If the ring cannot hold it as well, the oldest records are
// evicted until it fits; they are appended to evicted, oldest first, and the extended slice is
// returned (evicted may be nil; pass evicted[:0] to reuse one). A record longer than the byte
// bound is not stored: it is returned as the only evicted record.
func (r *Ring) Push(rec []byte, evicted [][]byte) [][]byte {
	size := len(rec)
	if size > r.maxBytes {
		r.mu.Lock()
		r.stats.Evicted++
		r.stats.EvictedBytes += uint64(size)
		r.mu.Unlock()
		return append(evicted, rec)
	}
	r.mu.Lock()
	for r.n >= r.maxRecords || r.bytes+size > r.maxBytes {
		old := r.slots[r.head]
		r.slots[r.head] = nil
		r.head = (r.head + 1) & r.mask
		r.n--
		r.bytes -= len(old)
		r.stats.Evicted++
		r.stats.EvictedBytes += uint64(len(old))
		evicted = append(evicted, old)
	}
	if r.n == len(r.slots) {
		r.grow()
	}
	r.slots[(r.head+r.n)&r.mask] = rec
	r.n++
	r.bytes += size
	r.stats.Pushed++
	wasEmpty := r.n == 1
	r.mu.Unlock()
	if wasEmpty {
		r.signal()
	}
	return evicted
}

// grow doubles the slot array (never past the smallest power of two >= maxRecords). Called with
// r.mu held and r.n == len(r.slots) < maxRecords.
func (r *Ring) grow() {
	slots := make([][]byte, len(r.slots)*2)
	k := copy(slots, r.slots[r.head:])
	copy(slots[k:], r.slots[:r.head])
	r.slots = slots
	r.mask = len(slots) - 1
	r.head = 0
}

// signal makes Ready fire, once, for a consumer that may be waiting.
func (r *Ring) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// Ready returns a channel that receives a value after a Push or PutBack into an empty ring. It is
// a hint for a consumer that found the ring empty: a value may be stale (the ring was drained
// since), so a consumer drains until it finds the ring empty and only then waits on Ready again.
func (r *Ring) Ready() <-chan struct{} { return r.ready }

// Drain removes every record and appends them to dst, oldest first.
func (r *Ring) Drain(dst [][]byte) [][]byte {
	return r.DrainN(dst, -1)
}

// DrainN removes up to n records (all of them if n < 0) from the front and appends them to dst,
// oldest first.
func (r *Ring) DrainN(dst [][]byte, n int) [][]byte {
	r.mu.Lock()
	if n < 0 || n > r.n {
		n = r.n
	}
	for range n {
		rec := r.slots[r.head]
		r.slots[r.head] = nil
		r.head = (r.head + 1) & r.mask
		r.bytes -= len(rec)
		dst = append(dst, rec)
	}
	r.n -= n
	r.stats.Drained += uint64(n)
	r.mu.Unlock()
	return dst
}

// PutBack puts recs, oldest first, back at the front of the ring, before everything it holds:
// the remainder of a batch that could not be delivered. What no longer fits is the oldest: a
// prefix of recs, which PutBack returns (it aliases recs) so that the caller can spill or count
// it. Records already in the ring are never evicted by PutBack.
func (r *Ring) PutBack(recs [][]byte) (evicted [][]byte) {
	r.mu.Lock()
	wasEmpty := r.n == 0
	i := len(recs)
	for i > 0 {
		rec := recs[i-1]
		if r.n >= r.maxRecords || r.bytes+len(rec) > r.maxBytes {
			break
		}
		if r.n == len(r.slots) {
			r.grow()
		}
		r.head = (r.head - 1) & r.mask
		r.slots[r.head] = rec
		r.n++
		r.bytes += len(rec)
		i--
	}
	r.stats.PutBack += uint64(len(recs) - i)
	for _, rec := range recs[:i] {
		r.stats.Evicted++
		r.stats.EvictedBytes += uint64(len(rec))
	}
	kept := i < len(recs)
	r.mu.Unlock()
	if wasEmpty && kept {
		r.signal()
	}
	return recs[:i]
}

// Len returns the number of records held.
func (r *Ring) Len() int {
	r.mu.Lock()
	n := r.n
	r.mu.Unlock()
	return n
}

// Bytes returns the sum of the lengths of the records held.
func (r *Ring) Bytes() int {
	r.mu.Lock()
	b := r.bytes
	r.mu.Unlock()
	return b
}

// MaxRecords returns the record bound given to New.
func (r *Ring) MaxRecords() int { return r.maxRecords }

// MaxBytes returns the byte bound given to New.
func (r *Ring) MaxBytes() int { return r.maxBytes }

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	s := r.stats
	s.Records = r.n
	s.Bytes = r.bytes
	r.mu.Unlock()
	return s
}
