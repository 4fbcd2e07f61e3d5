package fsm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// The acknowledged mode (Config.Delivery == DeliveryAcked): records are
// numbered by the SeqLog as they arrive, sent as pharos_batch messages with
// up to Acked.Window batches in flight, and trimmed from the log only when
// a cumulative pharos_ack covers them. doc.go, "The acknowledged mode",
// describes the numbering and the state table; this file implements them.

// ErrAckTimeout is the cause logged when the Brain stops acknowledging
// (Acked.AckTimeout without progress while something is in flight).
var ErrAckTimeout = errors.New("fsm: acknowledgement timeout")

// Reasons an acknowledgement is ignored (the label of
// pharos_fsm_acks_ignored_total).
const (
	ackIgnoredStale   = "stale"   // NextSeq below the one already accepted
	ackIgnoredForeign = "foreign" // another SourceId
	ackIgnoredBeyond  = "beyond"  // NextSeq past what was sent: a protocol error
	ackIgnoredState   = "state"   // not Streaming: the next probe learns it again
)

// inflightBatch is one batch sent and not yet fully acknowledged. Its
// records carry the wire numbers firstWire .. firstWire+n-1 and are the log
// records wire+delta (a batch never spans a renumbering).
type inflightBatch struct {
	firstWire uint64
	n         int
	delta     uint64
}

// ackedData is the acknowledged mode's part of the manager's data.
type ackedData struct {
	cfg       AckedConfig
	transport AckTransport
	log       SeqLog
	sourceID  string

	// Numbering. A record's wire sequence number (the one the Brain sees)
	// is its log sequence number minus the Delta of the last span at or
	// below it, modulo 2^64 (0 before the first span): spans are added
	// where the log's numbers have holes, and kept by the NumberingStore.
	spans     []Renumbering
	store     NumberingStore // nil: spans live in RAM only
	spanLo    uint64         // cache of deltaFor: [spanLo, spanHi) has spanDelta
	spanHi    uint64
	spanDelta uint64

	synced    bool   // the first acknowledgement since the last connect arrived
	haveAcked bool   // ackedWire holds a value the Brain sent
	ackedWire uint64 // the Brain's NextSeq, as last accepted
	nextWire  uint64 // wire number of the next record taken from the log
	highWire  uint64 // one past the highest wire number ever given (or the Brain's NextSeq)
	skipping  bool   // just after a (re)synchronisation: records below nextWire are processed
	ownSet    bool   // firstOwnSeq is set
	// firstOwnSeq is the first number this manager's Appends got: records
	// below it predate the manager (a restart) and were numbered wire = log
	// sequence number.
	firstOwnSeq uint64
	tookAny     bool   // maxTakenSeq is set
	maxTakenSeq uint64 // highest log number this manager put in a batch
	// markerFrom, while markerSet: the number of the log's UnsentMarker; records
	// numbered from it on were never sent before this manager.
	marker     UnsentMarker
	markerSet  bool
	markerFrom uint64

	inflight  []inflightBatch
	readahead []SpillRecord
	rpos      int
	payloads  [][]byte
	unsent    int // records in the log after the cursor (an estimate; Read is the truth)

	pendingSince time.Time // when the oldest unsent record arrived
	lastProgress time.Time // last acknowledgement progress, or when waiting started
	timerAt      time.Time // deadline of the armed state timeout; zero: none armed by this mode

	sentSinceSync uint64 // batches sent since the last synchronisation
	acksSinceSync uint64 // acknowledgements accepted since then
	staleAcks     uint64 // acknowledgements of batches sent before the last go-back

	lastAckWarn time.Time
}

// awaiting reports whether an acknowledgement is due: the probe or a batch
// is in flight.
func (a *ackedData) awaiting() bool { return !a.synced || len(a.inflight) > 0 }

// inflightRecords is the number of records sent and not acknowledged.
func (a *ackedData) inflightRecords() uint64 {
	if !a.synced {
		return 0
	}
	return a.nextWire - a.ackedWire
}

// maxSpans bounds the renumbering spans kept (one is added per hole, so
// per crash of a log that leaves one): the oldest go first.
const maxSpans = 1024

// deltaFor is the Delta of the span that covers log number seq.
func (a *ackedData) deltaFor(seq uint64) uint64 {
	if seq >= a.spanLo && seq < a.spanHi {
		return a.spanDelta
	}
	i := sort.Search(len(a.spans), func(i int) bool { return a.spans[i].FromSeq > seq })
	a.spanLo, a.spanHi, a.spanDelta = 0, math.MaxUint64, 0
	if i > 0 {
		a.spanLo, a.spanDelta = a.spans[i-1].FromSeq, a.spans[i-1].Delta
	}
	if i < len(a.spans) {
		a.spanHi = a.spans[i].FromSeq
	}
	return a.spanDelta
}

// setSpans replaces the spans and empties the deltaFor cache.
func (a *ackedData) setSpans(spans []Renumbering) {
	a.spans = spans
	a.spanLo, a.spanHi = 1, 0
}

// rewind moves the log's cursor back to the oldest untrimmed record and
// numbers what follows from nextWire again. The backlog is due at once.
func (a *ackedData) rewind(now time.Time) {
	a.inflight = a.inflight[:0]
	a.log.Rewind()
	a.readahead = a.readahead[:0]
	a.rpos = 0
	a.unsent = a.log.Len()
	a.skipping = true
	a.pendingSince = now.Add(-a.cfg.BatchDelay)
}

// disconnect forgets everything tied to the connection. The records stay in
// the log; the next connection resynchronises.
func (a *ackedData) disconnect() {
	a.inflight = a.inflight[:0]
	a.synced = false
	a.timerAt = time.Time{}
	a.staleAcks = 0
}

// ---------------------------------------------------------------------------
// Event handling
// ---------------------------------------------------------------------------

func (d *connData) handleAcked(state State, ev ManagerEvent) step {
	switch ev.Type {
	case EventDeliver:
		if ev.records != nil {
			return d.ackedDeliver(state, ev.records)
		}
		return d.ackedDeliver(state, [][]byte{ev.Record})
	case EventTick:
		return d.onTick(state)
	case EventAttempt:
		return d.ackedAttempt(state)
	case EventFlushTick:
		return d.ackedTimer(state)
	case EventConnectionLost:
		return d.onConnectionLost(state)
	case EventAck:
		return d.ackedAck(state, ev.SourceID, ev.NextSeq)
	default: // EventDrainTick: Throttled is never entered in this mode.
		return keep()
	}
}

// ackedKeep keeps the state; in Streaming it (re)arms the timer if the next
// deadline is earlier than the armed one.
func (d *connData) ackedKeep(state State) step {
	if state != Streaming {
		return keep()
	}
	return keep(d.rearm()...)
}

// ackedDeliver stores records in the log, in order, whatever the state; a
// record the log refuses is counted as dropped.
func (d *connData) ackedDeliver(state State, records [][]byte) step {
	a := d.acked
	stored := 0
	var sendErr error
	for _, record := range records {
		seq, err := a.log.Append(record)
		if err != nil {
			d.refused(err)
			continue
		}
		if !a.ownSet {
			a.ownSet, a.firstOwnSeq = true, seq
		}
		if a.unsent == 0 {
			a.pendingSince = d.clock.Now()
		}
		a.unsent++
		stored++
		// A full batch leaves as soon as the window has room, not after the
		// whole take, so that the Brain works on it while the rest is stored.
		// Only full batches leave from here: a partial one waits for the
		// timer (reading the clock on every record would cost more than the
		// rest of this path). After a failed send the rest is still stored.
		if sendErr == nil && state == Streaming && a.synced && a.unsent >= a.cfg.BatchSize && len(a.inflight) < a.cfg.Window {
			sendErr = d.pump()
		}
	}
	if sendErr != nil {
		return d.goDisconnected(state, sendErr)
	}
	if stored == 0 {
		return keep()
	}
	return d.ackedKeep(state)
}

// ackedAttempt connects, then sends the probe (an empty batch): the Brain
// answers with its NextSeq, which resynchronises the numbering.
func (d *connData) ackedAttempt(state State) step {
	if state != Connecting {
		return keep() // stale
	}
	a := d.acked
	if failed, ok := d.connect(state, a.transport.Connect); !ok {
		return failed
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.DeliverTimeout)
	err := a.transport.SendBatch(ctx, a.sourceID, 0, nil)
	cancel()
	if err != nil {
		return d.goDisconnected(state, fmt.Errorf("send probe: %w", err))
	}
	now := d.clock.Now()
	a.synced = false
	a.lastProgress = now
	a.timerAt = now.Add(a.cfg.AckTimeout)
	return NextState(Streaming, SetStateTimeout(a.cfg.AckTimeout, ManagerEvent{Type: EventFlushTick}))
}

// ackedTimer is Streaming's one timer: the acknowledgement deadline and the
// batch delay, whichever comes first.
func (d *connData) ackedTimer(state State) step {
	if state != Streaming {
		return keep() // stale
	}
	a := d.acked
	a.timerAt = time.Time{}
	now := d.clock.Now()
	if a.awaiting() && now.Sub(a.lastProgress) >= a.cfg.AckTimeout {
		d.stats.AckTimeouts++
		d.metrics.ackTimeout()
		return d.goDisconnected(state, fmt.Errorf("%w: no progress for %v with %d records in flight", ErrAckTimeout, now.Sub(a.lastProgress), a.inflightRecords()))
	}
	if a.synced {
		if err := d.pump(); err != nil {
			return d.goDisconnected(state, err)
		}
	}
	return d.ackedKeep(state)
}

func (d *connData) ackedAck(state State, sourceID string, next uint64) step {
	a := d.acked
	if state != Streaming {
		d.ignoreAck(ackIgnoredState, next)
		return keep()
	}
	if sourceID != a.sourceID {
		d.ignoreAck(ackIgnoredForeign, next)
		return d.ackedKeep(state)
	}
	if !a.synced {
		// The first acknowledgement since the connect: the probe's answer,
		// or an older one still on its way; either is the Brain's word.
		// Acknowledgements reach us in the order the Brain sent them, so
		// one below what it acknowledged before means it lost its state:
		// the records it forgot are gone here, the rest is renumbered from
		// its NextSeq, which is the best left to do.
		if a.haveAcked && next < a.ackedWire {
			d.log.Error().Uint64("next_seq", next).Uint64("acknowledged_before", a.ackedWire).
				Msg("the brain's NextSeq went back: it lost its state; records it had acknowledged are not resent")
		}
		d.resync(next)
		if err := d.pump(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.ackedKeep(state)
	}
	switch {
	case next < a.ackedWire:
		d.ignoreAck(ackIgnoredStale, next)
		return d.ackedKeep(state)
	case next > a.highWire:
		// Numbers this manager never sent: a protocol error.
		d.ignoreAck(ackIgnoredBeyond, next)
		return d.ackedKeep(state)
	case next > a.nextWire:
		// Records sent before a reconnect or a go-back, which the Brain
		// processed after all (its answer was late): skip past them. They
		// are counted as acknowledged as they are read and trimmed (sendBatch).
		a.ackedWire = next
		a.rewind(d.clock.Now())
		a.nextWire = next
		a.lastProgress = d.clock.Now()
		if err := d.pump(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.ackedKeep(state)
	}
	a.acksSinceSync++
	progress := next > a.ackedWire
	if progress {
		d.ackThrough(next)
	}
	switch {
	case a.staleAcks > 0:
		// An answer to a batch sent before the last go-back.
		a.staleAcks--
	case !progress && len(a.inflight) > 0:
		// The Brain re-acknowledged its NextSeq: a batch before the one it
		// refused was lost (say, the Brain process restarted). Go back N.
		a.staleAcks = a.sentSinceSync - a.acksSinceSync
		a.rewind(d.clock.Now())
		a.nextWire = a.ackedWire
		d.log.Info().Uint64("next_seq", next).Uint64("outstanding", a.staleAcks).Msg("brain re-acknowledged: resending from its NextSeq")
	}
	if err := d.pump(); err != nil {
		return d.goDisconnected(state, err)
	}
	return d.ackedKeep(state)
}

// resync adopts the Brain's NextSeq after a connect: it is where sending
// resumes; records below it are processed and are trimmed as they are read.
func (d *connData) resync(next uint64) {
	a := d.acked
	now := d.clock.Now()
	a.synced, a.haveAcked = true, true
	a.ackedWire = next
	a.rewind(now)
	a.nextWire = next
	a.highWire = max(a.highWire, next)
	a.sentSinceSync, a.acksSinceSync, a.staleAcks = 0, 0, 0
	a.lastProgress = now
	d.attempt = 0
	d.log.Info().Str("source_id", a.sourceID).Uint64("next_seq", next).Int("unacked", a.unsent).Msg("acknowledged mode synchronised")
}

// ackThrough accepts a cumulative acknowledgement: it trims the log through
// the record numbered next-1 and forgets the batches it covers.
func (d *connData) ackThrough(next uint64) {
	a := d.acked
	last := next - 1
	for _, b := range a.inflight {
		if last >= b.firstWire && last < b.firstWire+uint64(b.n) {
			if err := a.log.Trim(last + b.delta); err != nil {
				// The records stay and will be resent; the Brain drops them.
				d.log.Error().Err(err).Uint64("next_seq", next).Msg("trim acknowledged records")
			}
			break
		}
	}
	k := 0
	for k < len(a.inflight) && a.inflight[k].firstWire+uint64(a.inflight[k].n) <= next {
		k++
	}
	a.inflight = a.inflight[:copy(a.inflight, a.inflight[k:])]
	acked := next - a.ackedWire
	a.ackedWire = next
	d.stats.Acked += acked
	d.metrics.addAcked(acked)
	a.lastProgress = d.clock.Now()
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

// pump sends batches while the window has room: full batches at once, a
// partial one when its oldest record has waited BatchDelay.
func (d *connData) pump() error {
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

// sendBatch takes up to BatchSize records from the log, numbers them and
// sends them as one batch. It returns how many it sent.
func (d *connData) sendBatch() (int, error) {
	a := d.acked
	payloads := a.payloads[:0]
	first := a.nextWire
	trimThrough, skipped := uint64(0), 0
	var batchDelta, lastSeq uint64
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
		delta := a.deltaFor(r.Seq)
		if wire := r.Seq - delta; wire != a.nextWire {
			if a.skipping && wire < a.nextWire && d.processedBefore(r.Seq) {
				// Below the Brain's NextSeq: processed already (a resend
				// after a lost ack, or a trim not yet on disk at a crash).
				a.rpos++
				a.unsent = max(a.unsent-1, 0)
				trimThrough, skipped = r.Seq, skipped+1
				continue
			}
			if len(payloads) > 0 {
				break // a batch keeps one numbering
			}
			var err error
			if delta, err = d.renumber(r.Seq); err != nil {
				return 0, err
			}
		}
		if len(payloads) == 0 {
			batchDelta = delta
		} else if delta != batchDelta {
			break // a known span starts here: a batch keeps one numbering
		}
		a.skipping = false
		if !a.tookAny || r.Seq > a.maxTakenSeq {
			a.tookAny, a.maxTakenSeq = true, r.Seq
		}
		lastSeq = r.Seq
		payloads = append(payloads, r.Data)
		a.rpos++
		a.unsent = max(a.unsent-1, 0)
		a.nextWire++
	}
	if skipped > 0 {
		if err := a.log.Trim(trimThrough); err != nil {
			d.log.Error().Err(err).Msg("trim records the brain already processed")
		}
		d.stats.Acked += uint64(skipped)
		d.metrics.addAcked(uint64(skipped))
	}
	a.payloads = payloads
	if len(payloads) == 0 {
		return 0, nil
	}
	if err := d.clearUnsent(lastSeq); err != nil {
		clear(payloads)
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.DeliverTimeout)
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
	a.inflight = append(a.inflight, inflightBatch{firstWire: first, n: n, delta: batchDelta})
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

// processedBefore tells, for a record found below the Brain's NextSeq right
// after a synchronisation, whether the Brain has it: a record that predates
// this manager was numbered wire = log number; one of ours was sent with a
// wire number below it. One of ours never sent is renumbered instead, and so
// is one at or above the log's UnsentMarker that this manager did not send.
func (d *connData) processedBefore(seq uint64) bool {
	a := d.acked
	taken := a.tookAny && seq <= a.maxTakenSeq
	if a.markerSet && seq >= a.markerFrom {
		return taken
	}
	if !a.ownSet || seq < a.firstOwnSeq {
		return true
	}
	return taken
}

// clearUnsent removes the log's UnsentMarker before a batch whose highest
// log number is last goes out, if the batch reaches the marker: from then
// on the Brain may have records numbered from it on.
func (d *connData) clearUnsent(last uint64) error {
	a := d.acked
	if !a.markerSet || last < a.markerFrom {
		return nil
	}
	if err := a.marker.ClearUnsent(); err != nil {
		return fmt.Errorf("clear the unsent marker: %w", err)
	}
	a.markerSet = false
	return nil
}

// renumber closes a hole in the log's numbering (or a numbering the Brain
// is ahead of): from the record numbered seq on, wire = log number - delta,
// so that the Brain sees consecutive numbers. The new span is saved to the
// NumberingStore before any record goes out under it; if saving fails,
// nothing changes and the error is returned.
func (d *connData) renumber(seq uint64) (delta uint64, err error) {
	a := d.acked
	delta = seq - a.nextWire
	i := sort.Search(len(a.spans), func(i int) bool { return a.spans[i].FromSeq >= seq })
	spans := append(append(make([]Renumbering, 0, i+1), a.spans[max(0, i+1-maxSpans):i]...), Renumbering{FromSeq: seq, Delta: delta})
	if a.store != nil {
		if err := a.store.SaveNumbering(spans); err != nil {
			return 0, fmt.Errorf("save numbering: %w", err)
		}
	}
	a.setSpans(spans)
	d.stats.SeqGaps++
	d.metrics.seqGap()
	d.log.Warn().Uint64("log_seq", seq).Uint64("wire_seq", a.nextWire).Bool("saved", a.store != nil).
		Msg("hole in the log's sequence numbers: renumbering so the brain sees consecutive numbers")
	return delta, nil
}

// ignoreAck counts an ignored acknowledgement and logs it, at most once per
// DropLogInterval (stale ones only at debug level: they are expected after a
// go-back or a reconnect).
func (d *connData) ignoreAck(reason string, next uint64) {
	d.stats.AcksIgnored++
	d.metrics.ackIgnored(reason)
	if reason == ackIgnoredStale || reason == ackIgnoredState {
		d.log.Debug().Str("reason", reason).Uint64("next_seq", next).Msg("acknowledgement ignored")
		return
	}
	now := d.clock.Now()
	if !d.acked.lastAckWarn.IsZero() && now.Sub(d.acked.lastAckWarn) < d.cfg.DropLogInterval {
		return
	}
	d.acked.lastAckWarn = now
	d.log.Warn().Str("reason", reason).Uint64("next_seq", next).Uint64("sent_through", d.acked.nextWire).
		Uint64("acked", d.acked.ackedWire).Uint64("ignored_total", d.stats.AcksIgnored).Msg("acknowledgement ignored")
}

// refused counts a record the log did not store (full, disk refused), as
// dropped, logged at most once per DropLogInterval.
func (d *connData) refused(err error) { d.countDropped(1, err, "log refused records: dropped") }

// rearm returns a SetStateTimeout for the earliest deadline (the
// acknowledgement timeout while something is in flight, the batch delay
// while records wait and the window has room) if it is earlier than the one
// armed. A timer that fires early (its deadline moved) simply re-arms.
func (d *connData) rearm() []Action[ManagerEvent] {
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
