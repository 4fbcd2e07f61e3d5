package fsm

import (
	"errors"
	"fmt"
	"sync"
)

// The RAM budget of the overflow policy "refuse" (unacknowledged modes without a disk tier):
// instead of letting the ring evict its oldest records when it is full, the inbox refuses new
// ones at the door. The budget counts every record held in RAM from the moment the inbox
// accepts it until it leaves RAM for good (delivered without confirmations, confirmed, counted
// as possibly lost, evicted): the inbox, the ring and the records delivered and not yet
// confirmed. Bounded by the ring's own bounds, it keeps the ring from ever having to evict.

// ErrRAMFull: the inbox refused a record because the records held in RAM reached the bounds
// given to NewInboxWithOptions (the overflow policy refuse).
var ErrRAMFull = errors.New("fsm: RAM tier full; record refused")

// InboxOptions configure NewInboxWithOptions.
type InboxOptions struct {
	// Limit is the most records waiting for the actor (NewInbox's limit).
	Limit int
	// RAMRecords and RAMBytes, when positive, make the inbox refuse records with ErrRAMFull
	// once the records the inbox and the manager hold in RAM (inbox, ring, delivered and not
	// yet confirmed) would exceed them. Give the ring's bounds, for a manager of the
	// unacknowledged modes without a disk tier: the ring then never evicts.
	RAMRecords, RAMBytes int
}

// NewInboxWithOptions is NewInbox with a RAM budget.
func NewInboxWithOptions(o InboxOptions) (*Inbox, error) {
	in, err := NewInbox(o.Limit)
	if err != nil {
		return nil, err
	}
	if o.RAMRecords < 0 || o.RAMBytes < 0 || (o.RAMRecords > 0) != (o.RAMBytes > 0) {
		return nil, &ConfigError{Field: "Inbox RAMRecords/RAMBytes", Reason: fmt.Sprintf("must be both positive or both 0, got %d and %d", o.RAMRecords, o.RAMBytes)}
	}
	if o.RAMRecords > 0 {
		in.budget = &ramBudget{maxRecords: o.RAMRecords, maxBytes: o.RAMBytes}
	}
	return in, nil
}

// ramBudget counts the records held in RAM against their bounds. Safe for concurrent use.
type ramBudget struct {
	mu                   sync.Mutex
	records, bytes       int
	maxRecords, maxBytes int
}

// acquire reserves room for the longest prefix of recs that fits and returns its length.
func (b *ramBudget) acquire(recs [][]byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range recs {
		if b.records+1 > b.maxRecords || b.bytes+len(r) > b.maxBytes {
			break
		}
		b.records++
		b.bytes += len(r)
		n++
	}
	return n
}

// release gives back the room of recs, which leave RAM for good. A nil budget does nothing.
func (b *ramBudget) release(recs [][]byte) {
	if b == nil || len(recs) == 0 {
		return
	}
	bytes := 0
	for _, r := range recs {
		bytes += len(r)
	}
	b.mu.Lock()
	b.records = max(b.records-len(recs), 0)
	b.bytes = max(b.bytes-bytes, 0)
	b.mu.Unlock()
}

// held is the records and bytes reserved now.
func (b *ramBudget) held() (records, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records, b.bytes
}
