package agent

import "sync"

// Sizes of the record arena.
const (
	arenaChunkBytes = 64 << 10 // one allocation for about 400 typical records
	arenaMaxRecord  = 4 << 10  // a larger record gets an allocation of its own
)

// recordArena is the memory encoded records live in, carved from 64 KiB chunks: one allocation
// for hundreds of records instead of one each. The acked path's CPU profile showed the
// per-record allocation (with its zeroing and the collector's share) at about a tenth of the
// sender's CPU.
//
// A record handed out is never written again: its slice is capped at its length, so an append
// to it copies. A chunk is garbage once every record in it is. Records leave the connection
// manager oldest first (acknowledged, evicted from the ring) or are copied (into the spill log,
// into the acked mode's RAM log, which refuses the newest records when full and so keeps its
// own blocks rather than its callers' memory), so at most a chunk or two is held beyond the
// records themselves. Records over arenaMaxRecord get an allocation of their own.
type recordArena struct {
	mu    sync.Mutex
	chunk []byte // len: the bytes handed out; cap: the chunk
}

// encode appends a record of at most size bytes (etf.MetricSize, etf.AlertSize; -1 for a
// record the encoder will refuse) with appendRecord, into the arena's free room.
func (a *recordArena) encode(size int, appendRecord func(dst []byte) ([]byte, error)) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.encodeLocked(size, appendRecord)
}

// encodeEach is encode for records 0..n-1 under one lock: it appends each record to out and
// stops at the first error, which it returns.
func (a *recordArena) encodeEach(n int, out [][]byte, size func(i int) int, appendRecord func(i int, dst []byte) ([]byte, error)) ([][]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range n {
		rec, err := a.encodeLocked(size(i), func(dst []byte) ([]byte, error) { return appendRecord(i, dst) })
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func (a *recordArena) encodeLocked(size int, appendRecord func(dst []byte) ([]byte, error)) ([]byte, error) {
	var dst []byte
	carved := size > 0 && size <= arenaMaxRecord
	if carved {
		if cap(a.chunk)-len(a.chunk) < size {
			a.chunk = make([]byte, 0, arenaChunkBytes)
		}
		dst = a.chunk[len(a.chunk):len(a.chunk):cap(a.chunk)]
	} else {
		dst = make([]byte, 0, max(size, 0)) // an allocation of its own
	}
	rec, err := appendRecord(dst)
	if err != nil || len(rec) == 0 {
		return nil, err
	}
	if carved && &rec[:1][0] == &dst[:1][0] {
		// Encoded in place: the bytes are now the record's.
		a.chunk = a.chunk[:len(a.chunk)+len(rec)]
	} // else the record is its own (size was wrong and the encoder allocated, or too large)
	return rec[:len(rec):len(rec)], nil
}
