package fsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pharos-node/pharos-node/tier"
)

// Delivery confirmations of the unacknowledged modes (docs/design.md,
// "Delivery confirmations"). Records delivered since the last round trip
// form an open round in tier.Unconfirmed; a round trip (Confirmer.Confirm)
// seals it. Erlang orders the signals between two processes, so the peer's
// answer to the round trip, reaching the manager as EventConfirmed, says
// that every record delivered before it is in the peer process's mailbox:
// the rounds up to it are released (the ring's records dropped, the disk
// tier trimmed). At a drop, what is unconfirmed is resent after the
// reconnect (ResendUnconfirmed) or counted as possibly lost.

// Confirmer is optionally implemented by a Transport whose peer can confirm
// delivery: a round trip through the peer that completes only after every
// record delivered before it reached the peer's mailbox.
type Confirmer interface {
	// Confirm starts round trip id (ids grow, from 1). Its completion
	// reaches the manager as a mailbox message that Confirmation reads. An
	// error means the connection is considered lost.
	Confirm(ctx context.Context, id uint64) error
	// Confirmation tells whether message completes a round trip, and which.
	Confirmation(message any) (id uint64, ok bool)
	// Lost tells whether the connection the last records and round trips
	// went out on has ended: their answers will never come. While it is
	// up, a failure that is no loss of the connection (the peer busy)
	// leaves them to be answered.
	Lost() bool
}

// ErrConfirmTimeout is the cause logged when a round trip does not complete
// within Confirm.Timeout: the peer is alive but does not take signals.
var ErrConfirmTimeout = errors.New("fsm: delivery confirmation timeout")

// confirmer is the unacknowledged modes' confirmation state.
type confirmer struct {
	c         Confirmer
	cfg       ConfirmConfig
	pending   *tier.Unconfirmed
	nextID    uint64
	openSince time.Time   // when the open round got its first record; zero: none
	sent      []time.Time // when each sealed round's trip left, oldest first
}

// room is how many more records may be delivered before confirmations.
func (c *confirmer) room() int { return c.cfg.MaxUnconfirmed - c.pending.Len() }

// due is the earliest confirmation deadline: the open round's, or the
// oldest round trip's timeout.
func (c *confirmer) due() (time.Time, bool) {
	var next time.Time
	if !c.openSince.IsZero() {
		next = c.openSince.Add(c.cfg.Interval)
	}
	if len(c.sent) > 0 {
		if t := c.sent[0].Add(c.cfg.Timeout); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}

// flushAndConfirm flushes, then starts the open round's round trip if it
// holds Confirm.Records records, or at once with now.
func (d *unackedMode) flushAndConfirm(now bool) error {
	return d.flushBudget(d.cfg.DrainBatch, now)
}

// flushBudget is flushAndConfirm with another budget than DrainBatch.
func (d *unackedMode) flushBudget(budget int, now bool) error {
	if err := d.flushUpTo(budget); err != nil {
		return err
	}
	return d.confirmDue(d.clock.Now(), now)
}

// confirmDue starts the open round's round trip when it is due (it holds
// Confirm.Records records, or its first has waited Confirm.Interval), or
// whenever it holds anything with force.
func (d *unackedMode) confirmDue(now time.Time, force bool) error {
	c := d.confirm
	if c == nil || c.openSince.IsZero() {
		return nil
	}
	open := c.pending.OpenRecords()
	if open == 0 {
		c.openSince = time.Time{}
		return nil
	}
	if !force && open < c.cfg.Records && now.Sub(c.openSince) < c.cfg.Interval {
		return nil
	}
	c.nextID++
	id := c.nextID
	ctx, cancel := context.WithTimeout(d.life, d.cfg.DeliverTimeout)
	err := c.c.Confirm(ctx, id)
	cancel()
	if err != nil {
		return fmt.Errorf("confirm delivery: %w", err)
	}
	c.pending.Seal(id)
	c.sent = append(c.sent, now)
	c.openSince = time.Time{}
	d.stats.ConfirmRounds++
	d.metrics.confirmRound()
	return nil
}

// wait keeps the round trips in flight across a failure that left their
// connection up: their timeouts start again from now.
func (c *confirmer) wait(now time.Time) {
	for i := range c.sent {
		c.sent[i] = now
	}
}

// confirmTimedOut is ErrConfirmTimeout when the oldest round trip has
// waited Confirm.Timeout.
func (d *unackedMode) confirmTimedOut() error {
	c := d.confirm
	if c == nil || len(c.sent) == 0 {
		return nil
	}
	if waited := d.clock.Now().Sub(c.sent[0]); waited >= c.cfg.Timeout {
		d.stats.ConfirmTimeouts++
		d.metrics.confirmTimeout()
		return fmt.Errorf("%w: no answer for %v, %d records unconfirmed", ErrConfirmTimeout, waited, c.pending.Len())
	}
	return nil
}

// onConfirmed releases the rounds up to id: the peer has their records.
// In Streaming, room freed is used at once; in Throttled, the next drain
// step leaves at once too: the backlog drains at the pace the peer's
// answers come, not only one step per DrainInterval. An answer to a round
// trip of a connection that was lost finds nothing (its rounds were settled
// at the drop, and ids only grow).
func (d *unackedMode) onConfirmed(state State, id uint64) step {
	c := d.confirm
	if c == nil {
		return keep()
	}
	rounds := c.pending.Confirm(id)
	if len(rounds) == 0 {
		return keep()
	}
	c.sent = c.sent[min(len(rounds), len(c.sent)):]
	n := 0
	var through uint64
	onDisk := false
	for _, r := range rounds {
		n += r.Records
		if r.Spill {
			through, onDisk = r.SpillThrough, true
		}
		d.budget.release(r.RAM)
		clear(r.RAM)
	}
	if onDisk {
		if err := d.spill.Trim(through); err != nil {
			d.log.Error().Err(err).Msg("trim confirmed records from the disk tier; they will be sent again")
		}
	}
	d.stats.Confirmed += uint64(n)
	d.metrics.addConfirmed(n)
	switch state {
	case Streaming, Throttled:
		if err := d.flushAndConfirm(state == Throttled); err != nil {
			return d.failed(state, err)
		}
		return d.maybeThrottle(state)
	default:
		return keep()
	}
}

// settle deals with everything unconfirmed when the connection is gone:
// resent after the reconnect (the ring's records go back in front of the
// ring; the disk tier's stay on disk, read again from its oldest), or, without
// ResendUnconfirmed, counted as possibly lost (and trimmed from disk). It
// returns how many records that was.
func (d *unackedMode) settle() int {
	c := d.confirm
	rounds := c.pending.TakeAll()
	c.sent, c.openSince = c.sent[:0], time.Time{}
	d.skipping = false
	n := 0
	var ram [][]byte
	var through uint64
	onDisk := false
	for _, r := range rounds {
		n += r.Records
		ram = append(ram, r.RAM...)
		if r.Spill {
			through, onDisk = r.SpillThrough, true
		}
	}
	if n == 0 {
		if d.spill != nil {
			d.spill.Rewind()
		}
		return 0
	}
	if c.cfg.ResendUnconfirmed {
		// Older than anything in the ring: the ring was only drained with
		// the disk tier empty, and records go from the ring to disk only
		// after these (requeueUnconfirmed).
		d.dropped(d.ring.PutBackFront(ram))
		d.stats.Resent += uint64(n)
		d.metrics.addResent(n)
	} else {
		if onDisk {
			if err := d.spill.Trim(through); err != nil {
				d.log.Error().Err(err).Msg("trim records counted as possibly lost; they will be sent again")
			}
		}
		d.budget.release(ram)
		d.stats.PossiblyLost += uint64(n)
		d.metrics.addPossiblyLost(n)
	}
	if d.spill != nil {
		d.spill.Rewind()
	}
	return n
}

// requeueUnconfirmed takes the ring's records still unconfirmed, to be
// written to disk ahead of the ring (so that disk order stays delivery
// order), in resend mode: they will be delivered again, whatever their
// round trip says (counted as resent; a duplicate if it says they arrived).
// Their rounds keep counting them. Waiting for the answer instead could let
// the ring evict, by its byte bound, before the disk takes it: a duplicate
// is better than a loss.
func (d *unackedMode) requeueUnconfirmed() [][]byte {
	c := d.confirm
	if c == nil || !c.cfg.ResendUnconfirmed {
		return nil
	}
	ram := c.pending.TakeRAM()
	if len(ram) > 0 {
		d.stats.Resent += uint64(len(ram))
		d.metrics.addResent(len(ram))
		d.log.Warn().Int("records", len(ram)).Msg("ring full while records wait for confirmation: they go to disk and will be sent again")
	}
	return ram
}
