package agent

import (
	"slices"
	"sync"
	"unsafe"
)

// Sizes of the record arena.
const (
	arenaChunkBytes = 64 << 10 // one allocation for about 400 typical records
	arenaMaxRecord  = 4 << 10  // a larger record gets an allocation of its own
	// With recycling: the chunks followed for released records besides the current one (4 MiB;
	// an older one is left to the garbage collector), and the free chunks kept for use again.
	arenaMaxHeld = 64
	arenaMaxFree = 32
)

// recordArena is the memory encoded records live in, carved from 64 KiB chunks: one allocation
// for hundreds of records instead of one each. The acked path's CPU profile showed the
// per-record allocation (with its zeroing and the collector's share) at about a tenth of the
// sender's CPU.
//
// A record handed out is never written again while it may be in use: its slice is capped at its
// length, so an append to it copies. A chunk is garbage once every record in it is. Records
// leave the connection manager oldest first (acknowledged, evicted from the ring) or are copied
// (into the spill log, into the acked mode's RAM log, which refuses the newest records when full
// and so keeps its own blocks rather than its callers' memory), so at most a chunk or two is held
// beyond the records themselves. Records over arenaMaxRecord get an allocation of their own.
//
// With recycle (the acknowledged mode), the connection manager hands back the records it took
// once its log has copied them (fsm.ManagerOptions.Stored, calling release), and a chunk all of
// whose records came back is carved again instead of a new one (fresh chunks cost their
// zeroing, cache misses and the collector). Together with fsm.MemoryLog filling its trimmed
// blocks again, a 1M-record acked send in RAM into a sink that acknowledges unread took 0.42 -
// 0.44 µs of sender CPU per record against 0.58 - 0.61 (alternating runs); kept to 4 free chunks,
// most chunks were still new ones. A record that never comes back (refused by the inbox, say)
// only keeps its chunk from being used again.
type recordArena struct {
	mu    sync.Mutex
	chunk []byte // len: the bytes handed out; cap: the chunk

	recycle bool         // set before the first encode, never changed
	refs    int          // records carved from chunk and not released
	held    []*heldChunk // earlier chunks with records not released, oldest first
	free    [][]byte     // chunks all of whose records were released (len 0)
	lastHit *heldChunk   // the held chunk release found last
}

// heldChunk is a full chunk some of whose records are not released yet.
type heldChunk struct {
	b    []byte
	refs int
}

// holds reports whether rec's bytes lie in chunk (the capacity of a whole chunk).
func holds(chunk, rec []byte) bool {
	if cap(chunk) == 0 || cap(rec) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(chunk[:cap(chunk)])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(rec)))
	return p-base < uintptr(cap(chunk)) // unsigned: false below base too
}

// release takes back records carved from the arena that nobody uses any more (and ignores any
// other slice). Each record must be released at most once, and only when nothing refers to its
// bytes: they are written over once all of their chunk's records are back.
func (a *recordArena) release(records [][]byte) {
	if !a.recycle {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range records {
		if holds(a.chunk, r) {
			a.refs--
			continue
		}
		h := a.lastHit
		if h == nil || !holds(h.b, r) {
			i := slices.IndexFunc(a.held, func(h *heldChunk) bool { return holds(h.b, r) })
			if i < 0 {
				continue // a record of its own, or of a chunk no longer followed
			}
			h = a.held[i]
		}
		a.lastHit = h
		if h.refs--; h.refs == 0 {
			a.held = slices.DeleteFunc(a.held, func(x *heldChunk) bool { return x == h })
			a.lastHit = nil
			a.keepFree(h.b)
		}
	}
}

// keepFree keeps chunk for use again, if there is room.
func (a *recordArena) keepFree(chunk []byte) {
	if len(a.free) < arenaMaxFree {
		a.free = append(a.free, chunk[:0])
	}
}

// nextChunk replaces the current chunk, which has no room left, by a free one or a new one.
func (a *recordArena) nextChunk() {
	if a.recycle && cap(a.chunk) > 0 {
		if a.refs == 0 {
			a.keepFree(a.chunk)
		} else {
			if len(a.held) == arenaMaxHeld {
				if a.lastHit == a.held[0] {
					a.lastHit = nil
				}
				a.held = slices.Delete(a.held, 0, 1) // no longer followed: garbage once its records are
			}
			a.held = append(a.held, &heldChunk{b: a.chunk, refs: a.refs})
		}
	}
	a.refs = 0
	if n := len(a.free); n > 0 {
		a.chunk = a.free[n-1]
		a.free[n-1] = nil
		a.free = a.free[:n-1]
		return
	}
	a.chunk = make([]byte, 0, arenaChunkBytes)
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
			a.nextChunk()
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
		a.refs++
	} // else the record is its own (size was wrong and the encoder allocated, or too large)
	return rec[:len(rec):len(rec)], nil
}
