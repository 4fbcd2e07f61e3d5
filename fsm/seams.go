package fsm

import (
	"context"
	"time"

	"github.com/pharos-node/pharos-node/tier"
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

// RequestTransport is optionally implemented by a BatchTransport whose
// every DeliverBatch is one or more requests the sink answers (OTLP/HTTP):
//   - a nil error is a receipt, so nothing it delivered is counted as
//     possibly lost when the connection drops;
//   - in Streaming the manager delivers once the backlog holds MinBatch
//     records (or DrainBatch, or MaxPending, if fewer), else at the next
//     FlushInterval, instead of at every record: requests carry batches.
type RequestTransport interface {
	BatchTransport
	// MinBatch is the backlog at which Streaming delivers at once.
	MinBatch() int
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
	// CapBytes is the size of the records it holds before it evicts.
	CapBytes() int
}

// Spill is the optional disk tier of the unacknowledged modes (tier.Spill
// over a spill directory), read oldest first through a cursor: reading does
// not consume, Trim does. What was read and not delivered (or not
// confirmed) is read again after Rewind.
type Spill interface {
	// Append writes rec after everything already on disk. An error (disk
	// full, size limit reached) means rec was not stored.
	Append(rec []byte) error
	// Read appends up to max records that follow the cursor to dst, oldest
	// first, and moves the cursor past them; none when it has caught up.
	// Data stays valid until the record is trimmed.
	Read(dst []tier.Record, max int) ([]tier.Record, error)
	// Rewind moves the cursor back to the oldest untrimmed record.
	Rewind()
	// Trim discards every record numbered throughSeq or less.
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

// AckTransport sends the acknowledged mode's pharos_batch messages (docs/wire.md,
// "Acknowledged mode"). It is called from the manager's goroutine only, one
// call at a time, with a deadline in ctx. The transport fills in ReplyTo
// (the actor's own pid, so the Brain's pharos_ack comes back to the
// manager); acknowledgements reach the manager as EventAck, never through
// this interface.
type AckTransport interface {
	// Connect establishes or verifies the connection, as Transport.Connect.
	Connect(ctx context.Context) error
	// SendBatch sends {pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads}:
	// payloads carry the consecutive sequence numbers firstSeq,
	// firstSeq+1, ... An empty payloads is the resynchronisation probe: the
	// Brain processes nothing and acknowledges its NextSeq. An error means
	// the connection is considered lost; the records stay in the SeqLog.
	SendBatch(ctx context.Context, sourceID string, firstSeq uint64, payloads [][]byte) error
}

// SeqLog is the acknowledged mode's record store: it numbers each record
// and keeps it until Trim, read through a cursor that Rewind moves back to
// the oldest untrimmed record (the go-back-N resend). A *spill.Log keeps
// the records, the SourceId and the numbering across restarts;
// tier.MemoryLog is the RAM-only one.
//
// Contract, on which zero loss and zero duplicates depend:
//   - SourceID is the same for as long as the numbering continues (for a
//     spill directory: across restarts).
//   - The numbers are the ones the Brain sees: dense (each the previous
//     plus one, from 0 for a new SourceID) except where records were lost
//     (damage) or the log was cut short by a crash of the machine; they
//     change only through Renumber.
//   - Renumber is durable before it returns (for a spill directory), and so
//     is ClearUnsent.
//   - Read never returns a trimmed record; Rewind makes the next Read start
//     at the oldest untrimmed record.
//
// Only the manager's goroutine calls it, one call at a time, except Len and
// Bytes, which must be safe for concurrent use.
type SeqLog interface {
	// SourceID is the sender identity sent in every batch.
	SourceID() string
	// Append stores a copy of rec and returns its sequence number. An error
	// (full, disk refused) means rec was not stored. The log keeps nothing
	// of rec itself: with ManagerOptions.Stored its memory is written
	// again once Append has returned.
	Append(rec []byte) (seq uint64, err error)
	// Read appends up to max records that follow the cursor to dst, oldest
	// first, and moves the cursor past them. No records and a nil error
	// when the cursor has caught up. Data stays valid until the record is
	// trimmed.
	Read(dst []tier.Record, max int) ([]tier.Record, error)
	// Rewind moves the cursor back to the oldest untrimmed record.
	Rewind()
	// Trim discards every record with a sequence number <= throughSeq.
	Trim(throughSeq uint64) error
	// Renumber numbers the record numbered fromSeq, every later one and
	// every one appended later consecutively from toSeq; the unsent marker
	// moves with them. Records Read handed out before keep their numbers.
	Renumber(fromSeq, toSeq uint64) error
	// UnsentFrom returns the unsent marker: after a restart that followed
	// a crash, no record numbered from it on has been sent, though the
	// Brain may have processed other records under such numbers (a crash
	// of the machine cut the log short). ok is false when none is set.
	UnsentFrom() (seq uint64, ok bool)
	// ClearUnsent removes the marker, durably, before it returns; the
	// manager calls it before the first batch reaching the marker goes out.
	ClearUnsent() error
	// Len is the number of untrimmed records.
	Len() int
	// Bytes is the size of the untrimmed records.
	Bytes() int64
}

// Ack is a decoded {pharos_ack, SourceId, NextSeq}: every sequence number
// below NextSeq is processed. The actor also accepts it as a mailbox
// message, for transports that decode the term themselves.
type Ack struct {
	SourceID string
	NextSeq  uint64
}
