package tier

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrLogFull is returned by MemoryLog.Append when the log holds its
// capacity: the record is refused (the acknowledged mode never evicts an
// unacknowledged record, which would leave a hole the Brain cannot skip).
var ErrLogFull = errors.New("tier: memory log full")

// MemoryLog is a SeqLog in RAM, for the acknowledged mode without a spill
// directory. Its SourceID is random, drawn once by NewMemoryLog, and its
// sequence numbers start at 0 and are dense. Give the same MemoryLog to
// every restart of the manager actor (ActorOptions.Log) and a crash of the
// actor loses nothing; a restart of the process loses every record not yet
// acknowledged, and the Brain sees a new SourceID.
//
// It is safe for concurrent use (the manager is its one writer; others may
// read Len and Bytes).
type MemoryLog struct {
	mu       sync.Mutex
	sourceID string
	capacity int
	// The untrimmed records, in fixed-size chunks: one big slice of
	// pointers would be copied whole each time it grows, and growing a
	// slice of millions of pointers while the GC runs costs far more than
	// the records themselves (measured: 2M appends, 1.2 s against 0.05 s).
	chunks  [][][]byte // record k (0 = oldest untrimmed) is chunks[(off+k)/memChunk][(off+k)%memChunk]
	off     int        // slot of the oldest untrimmed record in chunks[0]
	n       int        // untrimmed records
	headOrd uint64     // how many records were trimmed since the log was made
	delta   uint64     // a record's number is its ord plus delta, modulo 2^64 (Renumber)
	cursor  int        // the next record Read returns, counted from the oldest untrimmed
	bytes   int64
	// The records' bytes: Append copies each into the current block, which
	// is replaced when full, so a caller's memory is never held. Records go
	// in and are trimmed in order, and nobody uses a record's bytes once it
	// is trimmed (SeqLog.Read), so a block all of whose records are trimmed
	// is filled again (at most memFreeBlocks are kept for that) instead of
	// a new one, which costs its zeroing, cache misses and the collector
	// (see the agent's record arena for the measurement).
	block     []byte
	blocks    []memBlock // the blocks holding untrimmed records, oldest first; the last is block
	free      [][]byte   // blocks to fill again, empty
	freeChunk [][]byte   // a chunk of slots to use again, all nil
}

// memBlock is a block of record bytes and the ord (the count of records
// appended before it) of the last record in it.
type memBlock struct {
	b       []byte
	lastOrd uint64
}

// memFreeBlocks bounds the blocks a MemoryLog keeps to fill again (1 MiB).
const memFreeBlocks = 16

// memChunk is the number of records per chunk of a MemoryLog.
const memChunk = 4096

// memBlockBytes is the size of a MemoryLog's blocks of record bytes (a
// larger record gets a block of its own).
const memBlockBytes = 64 << 10

// at is the k-th untrimmed record's slot.
func (l *MemoryLog) at(k int) *[]byte {
	i := l.off + k
	return &l.chunks[i/memChunk][i%memChunk]
}

// NewMemoryLog makes an empty log that holds at most capacity records.
// idSource supplies the 16 random bytes of the SourceID (hex-encoded); nil
// means crypto/rand.
func NewMemoryLog(capacity int, idSource io.Reader) (*MemoryLog, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("%w: MemoryLog capacity must be positive, got %d", ErrInvalid, capacity)
	}
	if idSource == nil {
		idSource = rand.Reader
	}
	var id [16]byte
	if _, err := io.ReadFull(idSource, id[:]); err != nil {
		return nil, fmt.Errorf("tier: memory log source id: %w", err)
	}
	return &MemoryLog{sourceID: hex.EncodeToString(id[:]), capacity: capacity}, nil
}

// SourceID returns the random identity drawn at creation.
func (l *MemoryLog) SourceID() string { return l.sourceID }

// Append stores a copy of rec and returns its sequence number, or
// ErrLogFull. The caller keeps rec: the log holds no memory of its callers,
// which matters for callers that carve records out of larger buffers (a
// refused record would otherwise not be the only one whose buffer the log
// keeps alive).
func (l *MemoryLog) Append(rec []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.capacity {
		return 0, fmt.Errorf("%w: %d records", ErrLogFull, l.n)
	}
	if (l.off+l.n)/memChunk == len(l.chunks) {
		chunk := l.freeChunk
		if chunk == nil {
			chunk = make([][]byte, memChunk)
		}
		l.freeChunk = nil
		l.chunks = append(l.chunks, chunk)
	}
	if len(l.blocks) == 0 || cap(l.block)-len(l.block) < len(rec) {
		if n := len(l.free); n > 0 && len(rec) <= memBlockBytes {
			l.block = l.free[n-1]
			l.free[n-1] = nil
			l.free = l.free[:n-1]
		} else {
			l.block = make([]byte, 0, max(memBlockBytes, len(rec)))
		}
		l.blocks = append(l.blocks, memBlock{b: l.block})
	}
	start := len(l.block)
	l.block = append(l.block, rec...)
	*l.at(l.n) = l.block[start:len(l.block):len(l.block)]
	l.n++
	l.bytes += int64(len(rec))
	ord := l.headOrd + uint64(l.n-1)
	l.blocks[len(l.blocks)-1].lastOrd = ord
	return ord + l.delta, nil
}

// Read implements SeqLog.
func (l *MemoryLog) Read(dst []Record, n int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := min(l.n, l.cursor+max(n, 0))
	for k := l.cursor; k < end; k++ {
		dst = append(dst, Record{Seq: l.headOrd + l.delta + uint64(k), Data: *l.at(k)})
	}
	l.cursor = max(end, l.cursor)
	return dst, nil
}

// Rewind implements SeqLog.
func (l *MemoryLog) Rewind() {
	l.mu.Lock()
	l.cursor = 0
	l.mu.Unlock()
}

// Trim implements SeqLog; it never fails.
func (l *MemoryLog) Trim(throughSeq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	head := l.headOrd + l.delta
	if throughSeq < head {
		return nil
	}
	k := int(min(throughSeq-head+1, uint64(l.n)))
	for i := range k {
		slot := l.at(i)
		l.bytes -= int64(len(*slot))
		*slot = nil
	}
	l.off += k
	l.n -= k
	l.headOrd += uint64(k)
	l.cursor = max(l.cursor-k, 0)
	// Whole chunks trimmed go; the short slice of chunks is copied down
	// rather than resliced, so its front does not leak.
	if drop := l.off / memChunk; drop > 0 {
		l.freeChunk = l.chunks[0] // its slots were all set to nil above
		kept := copy(l.chunks, l.chunks[drop:])
		clear(l.chunks[kept:])
		l.chunks = l.chunks[:kept]
		l.off -= drop * memChunk
	}
	// Blocks whose records are all trimmed, but the current one, are filled
	// again; a block larger than usual (one large record) is let go.
	done := 0
	for done < len(l.blocks)-1 && l.blocks[done].lastOrd < l.headOrd {
		if b := l.blocks[done].b; cap(b) == memBlockBytes && len(l.free) < memFreeBlocks {
			l.free = append(l.free, b[:0])
		}
		done++
	}
	if done > 0 {
		kept := copy(l.blocks, l.blocks[done:])
		clear(l.blocks[kept:])
		l.blocks = l.blocks[:kept]
	}
	return nil
}

// Len implements SeqLog.
func (l *MemoryLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Bytes implements SeqLog.
func (l *MemoryLog) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// NextSeq is the number the next Append will give.
func (l *MemoryLog) NextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.headOrd + l.delta + uint64(l.n)
}

// Renumber implements the acknowledged mode's renumbering (see package
// spill's Log.Renumber): the records from the one numbered fromSeq on, and
// those appended later, are numbered from toSeq. A RAM log has no holes, so
// fromSeq must be its oldest record's number (NextSeq when it is empty):
// anything else fails with ErrRenumber and changes nothing. Records a Read
// handed out before keep the numbers they had; Rewind to read them again.
func (l *MemoryLog) Renumber(fromSeq, toSeq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if head := l.headOrd + l.delta; fromSeq != head {
		return fmt.Errorf("%w: %d is not the oldest record held (%d)", ErrRenumber, fromSeq, head)
	}
	l.delta = toSeq - l.headOrd
	return nil
}

// UnsentFrom implements the acknowledged mode's unsent marker: a RAM log
// starts empty with each process, so it never has one.
func (l *MemoryLog) UnsentFrom() (uint64, bool) { return 0, false }

// ClearUnsent does nothing: a RAM log has no unsent marker.
func (l *MemoryLog) ClearUnsent() error { return nil }
