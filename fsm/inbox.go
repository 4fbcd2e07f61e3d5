package fsm

import (
	"errors"
	"fmt"
	"sync"
)

// Inbox is the bounded queue of records between the goroutines that
// deliver and a manager actor, in place of one Ergo message per record.
//
// Handle.Deliver appends a record under a mutex and sends the actor a
// single notification when the inbox turns non-empty; the actor takes every
// queued record at once and casts them to the machine in order. Per record
// that is an append instead of a mailbox message (a boxed value, a queue
// node, a wake-up): at hundreds of thousands of records a second the
// mailbox cost more than everything else on the path.
//
// The inbox belongs to whoever builds the ActorOptions, like the Ring and
// the Log, so it outlives supervisor restarts: records accepted while the
// actor was crashing are taken by the next incarnation when it starts.
type Inbox struct {
	limit int

	mu       sync.Mutex
	queue    [][]byte
	spare    [][]byte // the buffer the actor handed back, reused by the next queue
	notified bool     // a notification is on its way to the actor (or being taken)
	closed   bool     // Close was called: the manager stopped for good

	budget *ramBudget // nil: no RAM budget (NewInboxWithOptions)
}

// inboxMessage tells the manager actor that its inbox has records. Like
// the adapter's other messages it is a local Go value no remote node can
// send.
type inboxMessage struct{}

// NewInbox returns an inbox that holds at most limit records waiting for
// the actor; Deliver fails with ErrMailboxFull beyond it. limit must be
// positive.
func NewInbox(limit int) (*Inbox, error) {
	if limit <= 0 {
		return nil, &ConfigError{Field: "Inbox limit", Reason: fmt.Sprintf("must be positive, got %d", limit)}
	}
	return &Inbox{limit: limit}, nil
}

// Len is the number of records waiting for the actor.
func (in *Inbox) Len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.queue)
}

// Limit is the most records the inbox holds.
func (in *Inbox) Limit() int { return in.limit }

// put appends record, and when the inbox was idle calls notify (the send
// of the notification to the actor) first, under the lock: a notification
// that cannot be sent (the actor is not running, its mailbox is full)
// leaves the inbox as it was and returns notify's error, so a record is
// accepted only if the actor will be told about it.
func (in *Inbox) put(record []byte, notify func() error) error {
	_, err := in.putMany([][]byte{record}, notify, false)
	return err
}

// putMany is put for several records at once, under one lock: it appends as many as
// the limit leaves room for, oldest first, and returns how many, with an error wrapping
// ErrMailboxFull when that is not all of them. It keeps the records, not the slice.
// With restarting, a notification that finds no actor (ErrNotRunning) does not refuse
// the records: a supervisor is restarting the actor, whose Start takes the inbox. A closed
// inbox refuses everything with ErrNotRunning.
func (in *Inbox) putMany(records [][]byte, notify func() error, restarting bool) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return 0, fmt.Errorf("%w: its inbox is closed", ErrNotRunning)
	}
	room := in.limit - len(in.queue)
	if room <= 0 {
		return 0, fmt.Errorf("%w: inbox holds %d records", ErrMailboxFull, len(in.queue))
	}
	n := min(room, len(records))
	var full error
	if in.budget != nil {
		k := in.budget.acquire(records[:n])
		if k < n {
			held, bytes := in.budget.held()
			full = fmt.Errorf("%w: %d records, %d bytes held in RAM (bounds %d, %d)", ErrRAMFull, held, bytes, in.budget.maxRecords, in.budget.maxBytes)
			n = k
		}
		if n == 0 {
			return 0, full
		}
	}
	if !in.notified {
		switch err := notify(); {
		case err == nil:
			in.notified = true
		case restarting && errors.Is(err, ErrNotRunning):
			// Taken by the next incarnation's Start; notify again next time.
		default:
			in.budget.release(records[:n])
			return 0, err
		}
	}
	in.queue = append(in.queue, records[:n]...)
	if full != nil {
		return n, full
	}
	if n < len(records) {
		return n, fmt.Errorf("%w: inbox holds %d records", ErrMailboxFull, len(in.queue))
	}
	return n, nil
}

// take hands every waiting record to the actor, oldest first, and re-arms
// the notification. The caller gives the slice back with recycle once it
// is done with it.
func (in *Inbox) take() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	q := in.queue
	in.queue, in.spare = in.spare, nil
	in.notified = false
	return q
}

// recycle returns a slice take handed out, emptied, for reuse.
func (in *Inbox) recycle(q [][]byte) {
	clear(q)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.spare == nil && cap(q) <= 4*in.limit {
		in.spare = q[:0]
	}
}

// Drain takes every record still waiting, oldest first, for the owner of
// an inbox whose actor has stopped for good (and will not be restarted):
// records accepted but never taken would otherwise be lost without a trace.
// Later Deliver calls notify again (and fail with ErrNotRunning while no
// actor holds the name).
func (in *Inbox) Drain() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	q := in.queue
	in.queue = nil
	in.notified = false
	in.budget.release(q)
	return q
}

// Close takes every record still waiting, as Drain, and refuses every later put with
// ErrNotRunning: the manager stopped for good and nothing will take them.
func (in *Inbox) Close() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	q := in.queue
	in.queue = nil
	in.notified = false
	in.closed = true
	in.budget.release(q)
	return q
}

// rearm forgets a notification sent to an actor that terminated, so the
// next put notifies (whoever holds the name by then) again.
func (in *Inbox) rearm() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.notified = false
}
