package tier

import "sync"

// Unconfirmed holds what the payload, term and subject modes delivered and the peer has not yet
// confirmed (fsm's delivery confirmations), oldest first, in rounds: the records that came from
// the ring (kept, to be resent or counted), and how far the disk tier's records go (they stay in
// the spill log, untrimmed, until confirmed). Like the ring, it outlives the manager's restarts:
// what a crashed incarnation left unconfirmed is found by the next one.
//
// The connection manager is its only writer; Len and Bytes are safe for concurrent use.
type Unconfirmed struct {
	mu      sync.Mutex
	rounds  []Round // oldest first; the last one may be open (not yet sent)
	records int
	ram     int // records of RAM
	bytes   int
}

// Round is the records one confirmation round trip covers.
type Round struct {
	// ID is the round trip's identifier; 0 while the round is open (no round trip sent yet).
	ID uint64
	// Records is how many records the round holds: len(RAM) plus those of the disk tier.
	Records int
	// RAM are the records that came from the ring, oldest first.
	RAM [][]byte
	// Spill is true when the round holds records of the disk tier, numbered through SpillThrough.
	Spill        bool
	SpillThrough uint64
}

// AddRAM appends records that came from the ring to the open round.
func (u *Unconfirmed) AddRAM(recs [][]byte) {
	if len(recs) == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.open()
	r.RAM = append(r.RAM, recs...)
	r.Records += len(recs)
	u.records += len(recs)
	u.ram += len(recs)
	for _, rec := range recs {
		u.bytes += len(rec)
	}
}

// AddSpill appends n records of the disk tier, the last numbered through, to the open round.
// Their bytes stay in the spill log and are not counted here.
func (u *Unconfirmed) AddSpill(n int, through uint64) {
	if n <= 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.open()
	r.Spill, r.SpillThrough = true, through
	r.Records += n
	u.records += n
}

// open returns the open round, starting one if the last was sealed. Under mu.
func (u *Unconfirmed) open() *Round {
	if n := len(u.rounds); n == 0 || u.rounds[n-1].ID != 0 {
		u.rounds = append(u.rounds, Round{})
	}
	return &u.rounds[len(u.rounds)-1]
}

// OpenRecords is how many records the open round holds (0 without one).
func (u *Unconfirmed) OpenRecords() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n := len(u.rounds); n > 0 && u.rounds[n-1].ID == 0 {
		return u.rounds[n-1].Records
	}
	return 0
}

// Seal gives the open round its round trip's id (> 0); false if there is no open round.
func (u *Unconfirmed) Seal(id uint64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := len(u.rounds)
	if n == 0 || u.rounds[n-1].ID != 0 || id == 0 {
		return false
	}
	u.rounds[n-1].ID = id
	return true
}

// Confirm removes and returns the sealed rounds with an ID up to id, oldest first: round trips
// complete in the order they were sent, so one confirms every round before it too.
func (u *Unconfirmed) Confirm(id uint64) []Round {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := 0
	for k < len(u.rounds) && u.rounds[k].ID != 0 && u.rounds[k].ID <= id {
		k++
	}
	return u.removeLocked(k)
}

// TakeAll removes and returns every round, sealed or open, oldest first (at a drop).
func (u *Unconfirmed) TakeAll() []Round {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.removeLocked(len(u.rounds))
}

func (u *Unconfirmed) removeLocked(k int) []Round {
	if k == 0 {
		return nil
	}
	out := append([]Round(nil), u.rounds[:k]...)
	for _, r := range out {
		u.records -= r.Records
		u.ram -= len(r.RAM)
		for _, rec := range r.RAM {
			u.bytes -= len(rec)
		}
	}
	kept := copy(u.rounds, u.rounds[k:])
	clear(u.rounds[kept:])
	u.rounds = u.rounds[:kept]
	return out
}

// Oldest returns the ID of the oldest sealed round, and false if none is sealed.
func (u *Unconfirmed) Oldest() (uint64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.rounds) > 0 && u.rounds[0].ID != 0 {
		return u.rounds[0].ID, true
	}
	return 0, false
}

// SpillThrough returns the number of the last record of the disk tier that waits for a
// confirmation, and false if none does.
func (u *Unconfirmed) SpillThrough() (uint64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.rounds) - 1; i >= 0; i-- {
		if u.rounds[i].Spill {
			return u.rounds[i].SpillThrough, true
		}
	}
	return 0, false
}

// Len is how many records wait for a confirmation. Safe for concurrent use.
func (u *Unconfirmed) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.records
}

// RAMLen is how many of them came from the ring (the others are on disk). Safe for concurrent
// use.
func (u *Unconfirmed) RAMLen() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ram
}

// TakeRAM removes the records of RAM from every round, oldest first, and returns them; the
// rounds keep counting them (Records), so that their round trips still confirm something.
func (u *Unconfirmed) TakeRAM() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out [][]byte
	for i := range u.rounds {
		out = append(out, u.rounds[i].RAM...)
		for _, rec := range u.rounds[i].RAM {
			u.bytes -= len(rec)
		}
		u.rounds[i].RAM = nil
	}
	u.ram = 0
	return out
}

// Bytes is the size of the records from the ring that wait (the disk tier's are not counted).
// Safe for concurrent use.
func (u *Unconfirmed) Bytes() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bytes
}
