package fsm

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
var ErrLogFull = errors.New("fsm: memory log full")

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
	recs     [][]byte // recs[head:] are the untrimmed records
	head     int
	headSeq  uint64 // sequence number of recs[head]
	cursor   int    // index in recs of the next record Read returns
	bytes    int64
}

// NewMemoryLog makes an empty log that holds at most capacity records.
// idSource supplies the 16 random bytes of the SourceID (hex-encoded); nil
// means crypto/rand.
func NewMemoryLog(capacity int, idSource io.Reader) (*MemoryLog, error) {
	if capacity <= 0 {
		return nil, &ConfigError{Field: "MemoryLog.capacity", Reason: fmt.Sprintf("must be positive, got %d", capacity)}
	}
	if idSource == nil {
		idSource = rand.Reader
	}
	var id [16]byte
	if _, err := io.ReadFull(idSource, id[:]); err != nil {
		return nil, fmt.Errorf("fsm: memory log source id: %w", err)
	}
	return &MemoryLog{sourceID: hex.EncodeToString(id[:]), capacity: capacity}, nil
}

// SourceID returns the random identity drawn at creation.
func (l *MemoryLog) SourceID() string { return l.sourceID }

// Append stores rec (the log keeps the slice) and returns its sequence
// number, or ErrLogFull.
func (l *MemoryLog) Append(rec []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.recs) - l.head
	if n >= l.capacity {
		return 0, fmt.Errorf("%w: %d records", ErrLogFull, n)
	}
	l.recs = append(l.recs, rec)
	l.bytes += int64(len(rec))
	return l.headSeq + uint64(n), nil
}

// Read implements SeqLog.
func (l *MemoryLog) Read(dst []SpillRecord, n int) ([]SpillRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := min(len(l.recs), l.cursor+max(n, 0))
	for i := l.cursor; i < end; i++ {
		dst = append(dst, SpillRecord{Seq: l.headSeq + uint64(i-l.head), Data: l.recs[i]})
	}
	l.cursor = max(end, l.cursor)
	return dst, nil
}

// Rewind implements SeqLog.
func (l *MemoryLog) Rewind() {
	l.mu.Lock()
	l.cursor = l.head
	l.mu.Unlock()
}

// Trim implements SeqLog; it never fails.
func (l *MemoryLog) Trim(throughSeq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if throughSeq < l.headSeq {
		return nil
	}
	k := min(throughSeq-l.headSeq+1, uint64(len(l.recs)-l.head))
	for i := l.head; i < l.head+int(k); i++ {
		l.bytes -= int64(len(l.recs[i]))
		l.recs[i] = nil
	}
	l.head += int(k)
	l.headSeq += k
	l.cursor = max(l.cursor, l.head)
	// Compact once the trimmed front is at least half the slice: amortised
	// O(1) per record.
	if l.head > 0 && l.head >= len(l.recs)/2 {
		kept := copy(l.recs, l.recs[l.head:])
		clear(l.recs[kept:])
		l.recs = l.recs[:kept]
		l.cursor -= l.head
		l.head = 0
	}
	return nil
}

// Len implements SeqLog.
func (l *MemoryLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs) - l.head
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
	return l.headSeq + uint64(len(l.recs)-l.head)
}
