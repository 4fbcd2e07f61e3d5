package fsm

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// The unacknowledged modes' way out: the flush (the disk tier first, then the ring) and the
// delivery of what it takes through the Transport or BatchTransport.

// flush replays up to DrainBatch records: the disk tier first (oldest
// first), then the ring, which is only touched once the disk is empty so
// order is kept. On a failure nothing is lost: the disk keeps what was not
// trimmed, the ring gets the remainder back in front.
func (d *unackedMode) flush() error { return d.flushUpTo(d.cfg.DrainBatch) }

// flushUpTo is flush with another budget than DrainBatch.
func (d *unackedMode) flushUpTo(budget int) error {
	if c := d.confirm; c != nil {
		budget = min(budget, c.room())
	}
	if budget <= 0 {
		return nil // the peer has not confirmed enough yet
	}
	if d.spill != nil {
		sent, err := d.replayCold(budget)
		if err != nil {
			return err
		}
		budget -= sent
		if d.spill.Len() > 0 || budget <= 0 {
			return nil
		}
	}
	recs := d.ring.DrainUpTo(budget)
	if len(recs) == 0 {
		return nil
	}
	sent, err := d.deliver(recs)
	if d.confirm != nil {
		d.confirm.pending.AddRAM(recs[:sent])
	} else {
		d.budget.release(recs[:sent])
	}
	if err != nil {
		d.dropped(d.ring.PutBackFront(recs[sent:]))
		return err
	}
	return nil
}

// replayChunk bounds one read from the disk tier.
const replayChunk = 256

// replayCold delivers up to budget records from the disk tier, read
// through its cursor. Without confirmations what was delivered is trimmed
// at once; with them it stays until confirmed.
func (d *unackedMode) replayCold(budget int) (int, error) {
	total := 0
	for total < budget {
		var err error
		d.cold, err = d.spill.Read(d.cold[:0], min(budget-total, replayChunk))
		if err != nil {
			return total, fmt.Errorf("read disk tier: %w", err)
		}
		if d.skipping {
			k := 0
			for k < len(d.cold) && d.cold[k].Seq <= d.skipThrough {
				k++
			}
			if k < len(d.cold) {
				d.skipping = false
			}
			d.cold = d.cold[:copy(d.cold, d.cold[k:])]
			if len(d.cold) == 0 && k > 0 {
				continue
			}
		}
		if len(d.cold) == 0 {
			return total, nil
		}
		recs := d.coldData[:0]
		for i := range d.cold {
			recs = append(recs, d.cold[i].Data)
		}
		d.coldData = recs
		sent, err := d.deliver(recs)
		clear(recs)
		switch {
		case sent > 0 && d.confirm != nil:
			d.confirm.pending.AddSpill(sent, d.cold[sent-1].Seq)
		case sent > 0:
			if terr := d.spill.Trim(d.cold[sent-1].Seq); terr != nil {
				clear(d.cold)
				return total + sent, fmt.Errorf("trim disk tier: %w", terr)
			}
		}
		clear(d.cold)
		total += sent
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// errShortBatch reports a BatchTransport that returned fewer records than
// given without an error.
var errShortBatch = errors.New("batch transport delivered fewer records than given without an error")

// deliver hands recs to the transport, in order, and returns how many were
// sent before the first failure.
func (d *unackedMode) deliver(recs [][]byte) (int, error) {
	sent, err := d.deliverRaw(recs)
	if sent > 0 {
		d.stats.Delivered += uint64(sent)
		d.metrics.addDelivered(sent)
		switch {
		case d.confirm == nil && d.minBatch > 0: // a receipt: nothing possibly lost
		case d.confirm == nil:
			d.window.add(d.clock.Now(), sent, d.cfg.FlushInterval)
		case d.confirm.openSince.IsZero():
			d.confirm.openSince = d.clock.Now()
		}
	}
	return sent, err
}

func (d *unackedMode) deliverRaw(recs [][]byte) (int, error) {
	if d.batch != nil {
		ctx, cancel := context.WithTimeout(d.life, d.cfg.DeliverTimeout)
		n, err := d.batch.DeliverBatch(ctx, recs)
		cancel()
		n = min(max(n, 0), len(recs))
		if err == nil && n < len(recs) {
			err = errShortBatch
		}
		if err != nil {
			return n, fmt.Errorf("deliver batch: %w", err)
		}
		return n, nil
	}
	for i, r := range recs {
		ctx, cancel := context.WithTimeout(d.life, d.cfg.DeliverTimeout)
		err := d.transport.Deliver(ctx, r)
		cancel()
		if err != nil {
			return i, fmt.Errorf("deliver: %w", err)
		}
	}
	return len(recs), nil
}

// satMul is a*b for positive a and b, saturated at the largest int.
func satMul(a, b int) int {
	if a > math.MaxInt/b {
		return math.MaxInt
	}
	return a * b
}
