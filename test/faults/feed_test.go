package faults

import (
	"context"
	"time"

	"github.com/pharos-node/pharos-node/internal/netfault"
)

// feed offers a sender records 0, 1, 2, ... at rate records per second until its context
// ends; records refused for now are offered again first at the next turn.
type feed struct {
	done     chan struct{}
	sent     int // records accepted: 0..sent-1 unless retry is not empty
	retry    []int
	refusals int
	err      error
}

// feedTurn is how often a feed offers what is due.
const feedTurn = 20 * time.Millisecond

func newFeed() *feed { return &feed{done: make(chan struct{})} }

func (f *feed) run(ctx context.Context, s sender) {
	defer close(f.done)
	start := time.Now()
	next := 0
	tick := time.NewTicker(feedTurn)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			f.finish(s)
			return
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * rate)
		seqs := append([]int(nil), f.retry...)
		for ; next < due; next++ {
			seqs = append(seqs, next)
		}
		if len(seqs) == 0 {
			continue
		}
		refused, err := s.offer(seqs)
		if err != nil {
			f.err = err
			return
		}
		f.sent += len(seqs) - len(refused)
		if len(refused) > 0 {
			f.refusals++
		}
		f.retry = refused
	}
}

// finish offers what is still refused until it is accepted (a record offered is never given
// up: what is missing at the Brain was accepted).
func (f *feed) finish(s sender) {
	for deadline := time.Now().Add(30 * time.Second); len(f.retry) > 0 && time.Now().Before(deadline); {
		refused, err := s.offer(f.retry)
		if err != nil {
			f.err = err
			return
		}
		f.sent += len(f.retry) - len(refused)
		f.retry = refused
		time.Sleep(feedTurn)
	}
}

// wait returns once the feed has stopped.
func (f *feed) wait() { <-f.done }

// watch records a sender's state changes, polled every watchEvery.
type watch struct {
	changes []stateChange
}

type stateChange struct {
	at    time.Time
	state string
}

const watchEvery = 5 * time.Millisecond

func newWatch() *watch { return &watch{} }

func (w *watch) run(ctx context.Context, s sender) {
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		st := s.state()
		if n := len(w.changes); n == 0 || w.changes[n-1].state != st {
			w.changes = append(w.changes, stateChange{at: time.Now(), state: st})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// measure returns, for the fault's windows: the detection time (the first window's start to
// the first change out of streaming after it; -1 if none), the recovery time (the last
// window's end to streaming again; 0 if already streaming again by then; -1 if the fault went
// unnoticed) and how many times the sender left streaming from the first window on.
func (w *watch) measure(windows []netfault.Window) (detection, recovery time.Duration, disconnects int) {
	detection, recovery = -1, -1
	if len(windows) == 0 {
		return
	}
	first, last := windows[0].Start, windows[len(windows)-1].End
	wasUp := true
	for _, c := range w.changes {
		if c.at.Before(first) {
			wasUp = up(c.state)
			continue
		}
		if wasUp && !up(c.state) {
			disconnects++
			if detection < 0 {
				detection = c.at.Sub(first)
			}
		}
		wasUp = up(c.state)
	}
	if detection < 0 {
		return
	}
	upAtEnd := true
	for _, c := range w.changes {
		if !c.at.After(last) {
			upAtEnd = up(c.state)
			continue
		}
		if upAtEnd {
			break
		}
		if up(c.state) {
			return detection, c.at.Sub(last), disconnects
		}
	}
	if upAtEnd {
		recovery = 0
	}
	return
}
