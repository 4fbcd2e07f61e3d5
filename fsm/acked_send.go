package fsm

import (
	"context"
	"fmt"
	"time"
)

// The acknowledged mode's sending side: batches out of the log, numbered as
// the Brain expects, and the one timer of Streaming.

// pump sends batches while the window has room: full batches at once, a
// partial one when its oldest record has waited BatchDelay.
func (d *ackedMode) pump() error {
	a := d.acked
	var now time.Time
	for len(a.inflight) < a.cfg.Window && a.unsent > 0 {
		if a.unsent < a.cfg.BatchSize {
			if now.IsZero() {
				now = d.clock.Now()
			}
			if now.Sub(a.pendingSince) < a.cfg.BatchDelay {
				return nil
			}
		}
		n, err := d.sendBatch()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// sendBatch takes up to BatchSize records from the log and sends them as
// one batch. It returns how many it sent.
func (d *ackedMode) sendBatch() (int, error) {
	a := d.acked
	payloads := a.payloads[:0]
	first := a.nextWire
	trimThrough, skipped := uint64(0), 0
	var lastSeq uint64
	for len(payloads) < a.cfg.BatchSize {
		if a.rpos == len(a.readahead) {
			var err error
			a.readahead, err = a.log.Read(a.readahead[:0], a.cfg.BatchSize)
			a.rpos = 0
			if err != nil {
				return 0, fmt.Errorf("read log: %w", err)
			}
			if len(a.readahead) == 0 {
				a.unsent = 0
				break
			}
		}
		r := a.readahead[a.rpos]
		if r.Seq != a.nextWire {
			if a.skipping && r.Seq < a.nextWire && !a.unsentAt(r.Seq) {
				// Below the Brain's NextSeq: processed already (a resend
				// after a lost ack, or a trim not yet on disk at a crash).
				a.rpos++
				a.unsent = max(a.unsent-1, 0)
				trimThrough, skipped = r.Seq, skipped+1
				continue
			}
			if len(payloads) > 0 {
				break // a batch holds consecutive numbers
			}
			// What was skipped goes first, so that r is the oldest record held.
			d.trimSkipped(trimThrough, &skipped)
			if err := d.renumber(r.Seq); err != nil {
				return 0, err
			}
			r = a.readahead[a.rpos]
		}
		a.skipping = false
		lastSeq = r.Seq
		payloads = append(payloads, r.Data)
		a.rpos++
		a.unsent = max(a.unsent-1, 0)
		a.nextWire++
	}
	d.trimSkipped(trimThrough, &skipped)
	a.payloads = payloads
	if len(payloads) == 0 {
		return 0, nil
	}
	if err := d.clearUnsent(lastSeq); err != nil {
		clear(payloads)
		return 0, err
	}
	ctx, cancel := context.WithTimeout(d.life, d.cfg.DeliverTimeout)
	err := a.transport.SendBatch(ctx, a.sourceID, first, payloads)
	cancel()
	clear(payloads) // the log keeps the records; drop the references
	n := len(payloads)
	if err != nil {
		return 0, fmt.Errorf("send batch of %d from %d: %w", n, first, err)
	}
	if len(a.inflight) == 0 {
		a.lastProgress = d.clock.Now()
	}
	a.inflight = append(a.inflight, inflightBatch{firstWire: first, n: n})
	a.sentSinceSync++
	var resent uint64
	if a.highWire > first {
		resent = min(a.highWire, first+uint64(n)) - first
	}
	a.highWire = max(a.highWire, first+uint64(n))
	d.stats.BatchesSent++
	d.stats.Resent += resent
	d.metrics.batchSent(n, resent)
	return n, nil
}

// trimSkipped trims the records sendBatch skipped as processed already
// (through the one numbered through) and counts them as acknowledged.
func (d *ackedMode) trimSkipped(through uint64, skipped *int) {
	if *skipped == 0 {
		return
	}
	if err := d.acked.log.Trim(through); err != nil {
		d.log.Error().Err(err).Msg("trim records the brain already processed")
	}
	d.stats.Acked += uint64(*skipped)
	d.metrics.addAcked(uint64(*skipped))
	*skipped = 0
}

// unsentAt tells whether the record numbered seq is at or above the log's
// unsent marker: never sent since the log's last restart, so one found
// below the Brain's NextSeq is not one the Brain has (a crash of the
// machine cut the log short, and its numbers went to new records).
func (a *ackedData) unsentAt(seq uint64) bool { return a.markerSet && seq >= a.markerFrom }

// clearUnsent removes the log's unsent marker before a batch whose highest
// number is last goes out, if the batch reaches the marker: from then on
// the Brain may have records numbered from it on.
func (d *ackedMode) clearUnsent(last uint64) error {
	a := d.acked
	if !a.markerSet || last < a.markerFrom {
		return nil
	}
	if err := a.log.ClearUnsent(); err != nil {
		return fmt.Errorf("clear the unsent marker: %w", err)
	}
	a.markerSet = false
	return nil
}

// renumber closes a hole in the log's numbering, or numbers records the
// Brain cannot have: the record numbered seq (the next to send) and every
// later one are numbered from nextWire on, so that the Brain sees
// consecutive numbers. The log makes it durable before any record goes out
// under the new numbers; if that fails, nothing changes and the error is
// returned.
func (d *ackedMode) renumber(seq uint64) error {
	a := d.acked
	if err := a.log.Renumber(seq, a.nextWire); err != nil {
		return fmt.Errorf("renumber from %d to %d: %w", seq, a.nextWire, err)
	}
	shift := a.nextWire - seq // modulo 2^64
	for i := a.rpos; i < len(a.readahead); i++ {
		a.readahead[i].Seq += shift
	}
	if a.markerSet && a.markerFrom >= seq {
		a.markerFrom += shift
	}
	d.stats.SeqGaps++
	d.metrics.seqGap()
	d.log.Warn().Uint64("seq", seq).Uint64("renumbered_to", a.nextWire).
		Msg("the log's numbers do not follow the brain's: renumbered so the brain sees consecutive numbers")
	return nil
}

// rearm returns a SetStateTimeout for the earliest deadline (the
// acknowledgement timeout while something is in flight, the batch delay
// while records wait and the window has room) if it is earlier than the one
// armed. A timer that fires early (its deadline moved) simply re-arms.
func (d *ackedMode) rearm() []Action[ManagerEvent] {
	a := d.acked
	var next time.Time
	if a.awaiting() {
		next = a.lastProgress.Add(a.cfg.AckTimeout)
	}
	if a.synced && a.unsent > 0 && len(a.inflight) < a.cfg.Window {
		if due := a.pendingSince.Add(a.cfg.BatchDelay); next.IsZero() || due.Before(next) {
			next = due
		}
	}
	if next.IsZero() || (!a.timerAt.IsZero() && !next.Before(a.timerAt)) {
		return nil
	}
	a.timerAt = next
	return []Action[ManagerEvent]{SetStateTimeout(max(next.Sub(d.clock.Now()), 0), ManagerEvent{Type: EventFlushTick})}
}
