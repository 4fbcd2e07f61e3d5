package fsm

import (
	"context"
	"time"
)

// The small interfaces the manager depends on. Adapters to the real
// buffer/, spill/ and node/ packages implement them in a few lines.

// Transport delivers pre-encoded records to a sink (the Brain, or another
// transport reusing the machine). Both calls are made from the manager's
// goroutine only, one at a time, with a deadline in ctx.
type Transport interface {
	// Connect establishes or verifies the connection. A nil error means the
	// sink is reachable and Deliver may be called.
	Connect(ctx context.Context) error
	// Deliver sends one record. An error means the record was not sent (the
	// manager keeps it) and the connection is considered lost.
	Deliver(ctx context.Context, record []byte) error
}

// BatchTransport is optionally implemented by a Transport that can send
// several records at once (e.g. the acknowledged mode's pharos_batch).
type BatchTransport interface {
	Transport
	// DeliverBatch sends records in order and reports how many, from the
	// front, were sent. With a nil error delivered must be len(records); with
	// an error the manager keeps records[delivered:].
	DeliverBatch(ctx context.Context, records [][]byte) (delivered int, err error)
}

// Ring is the bounded RAM tier (the original's hot buffer). Only the manager
// touches it, from its own goroutine; a Ring handed to a supervised manager
// outlives restarts, and so does its content.
type Ring interface {
	// Push appends rec at the back; when full, it evicts from the front and
	// returns how many records it evicted.
	Push(rec []byte) (evicted int)
	// PutBackFront puts recs (oldest first) back in front of the current
	// content, after a failed delivery. If they do not fit, the oldest
	// records are evicted; it returns how many.
	PutBackFront(recs [][]byte) (evicted int)
	// DrainUpTo removes and returns up to n records from the front, oldest
	// first.
	DrainUpTo(n int) [][]byte
	// Len is the number of records held.
	Len() int
	// Bytes is the total size of the records held.
	Bytes() int
	// Cap is the number of records the ring holds before it evicts.
	Cap() int
}

// SpillRecord is one record read back from the disk tier.
type SpillRecord struct {
	// Seq is the record's position in the log; Trim(Seq) discards it and
	// everything older.
	Seq  uint64
	Data []byte
}

// Spill is the optional disk tier (the original's spillover), read oldest
// first through a cursor: reading does not consume, Trim does. What a failed
// replay did not send is simply not trimmed, so it stays first.
type Spill interface {
	// Append writes rec after everything already on disk. An error (disk
	// full, size limit reached) means rec was not stored.
	Append(rec []byte) error
	// ReadOldest returns up to max of the oldest untrimmed records, oldest
	// first; none when the log is empty.
	ReadOldest(max int) ([]SpillRecord, error)
	// Trim discards every record with a sequence number <= throughSeq.
	Trim(throughSeq uint64) error
	// Len is the number of untrimmed records.
	Len() int
	// Bytes is the size of the untrimmed records.
	Bytes() int64
}

// Timer is a cancellable timer from a Clock.
type Timer interface {
	// Stop prevents the timer from firing; false if it already fired or was
	// stopped.
	Stop() bool
}

// Clock is the time source: the system clock in production, a fake in tests.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine (or, for a fake clock, when the
	// test advances time) after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
