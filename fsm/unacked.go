package fsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/tier"
)

// The unacknowledged modes (Config.Delivery == DeliveryUnacked: payload,
// term and subject, which differ only in the transport): records wait in
// the Ring (and, past MaxPending, on the Spill) and go out through the
// Transport; distribution gives no receipt, so what was written in the
// last FlushInterval before a drop is counted as possibly lost. doc.go has
// the state table; this file implements it.

// unackedMode is the unacknowledged modes' discipline.
type unackedMode struct {
	*connData
	transport Transport
	batch     BatchTransport // nil unless transport implements it
	ring      Ring
	spill     Spill
	window    deliveryWindow
	cold      []tier.Record // read buffer of the disk tier's replay
	coldData  [][]byte

	spillRetryAt time.Time
	lastSpillErr time.Time
}

// checkRingCap refuses a ring that cannot hold MaxPending records plus the
// one being delivered: below that, Streaming would evict from a ring the
// disk tier is meant to protect.
func checkRingCap(r Ring, maxPending int) error {
	if c := r.Cap(); c <= maxPending {
		return &ConfigError{Field: "MaxPending", Reason: fmt.Sprintf("must be below the ring's capacity %d, got %d", c, maxPending)}
	}
	return nil
}

func newUnackedMode(d *connData, opts ManagerOptions) (*unackedMode, error) {
	if opts.Transport == nil {
		return nil, &ConfigError{Field: "Transport", Reason: "must not be nil"}
	}
	if opts.Ring == nil {
		return nil, &ConfigError{Field: "Ring", Reason: "must not be nil"}
	}
	if err := checkRingCap(opts.Ring, opts.Config.MaxPending); err != nil {
		return nil, err
	}
	u := &unackedMode{connData: d, transport: opts.Transport, ring: opts.Ring, spill: opts.Spill}
	if b, ok := opts.Transport.(BatchTransport); ok {
		u.batch = b
	}
	return u, nil
}

func (d *unackedMode) handle(state State, ev ManagerEvent) step {
	switch ev.Type {
	case EventDeliver:
		return d.onDeliver(state, ev.Record)
	case EventTick:
		return d.onTick(state)
	case EventAttempt:
		return d.onAttempt(state)
	case EventDrainTick:
		return d.onDrainTick(state)
	case EventFlushTick:
		return d.onFlushTick(state)
	case EventConnectionLost:
		return d.onConnectionLost(state)
	default: // EventAck: no acknowledgements in these modes.
		return keep()
	}
}

// take hands the records to the machine one event each: one record can
// change the state.
func (d *unackedMode) take(m *Manager, records [][]byte) {
	for _, r := range records {
		m.machine.Cast(ManagerEvent{Type: EventDeliver, Record: r})
	}
}

// disconnected counts what was delivered in the last FlushInterval as
// possibly lost (docs/wire.md): distribution gives no receipt.
func (d *unackedMode) disconnected(ev *zerolog.Event) *zerolog.Event {
	if !d.connected {
		return ev
	}
	lost := d.window.total(d.clock.Now(), d.cfg.FlushInterval)
	d.window.reset()
	d.stats.PossiblyLost += uint64(lost)
	d.metrics.addPossiblyLost(lost)
	return ev.Int("possibly_lost", lost)
}

func (d *unackedMode) onDeliver(state State, record []byte) step {
	switch state {
	case Disconnected, Connecting, Throttled:
		// Buffering states: spill the ring before it can evict, then keep
		// the new record in RAM. The connect path replays disk, then RAM.
		d.bufferWithSpill(record)
		return keep()
	case Streaming:
		d.dropped(d.ring.Push(record))
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.maybeThrottle()
	default:
		return keep()
	}
}

func (d *unackedMode) onAttempt(state State) step {
	switch state {
	case Connecting:
		if failed, ok := d.connect(state, d.transport.Connect); !ok {
			return failed
		}
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		d.attempt = 0
		return d.maybeThrottle()
	default: // Disconnected, Streaming, Throttled: a stale attempt.
		return keep()
	}
}

func (d *unackedMode) onDrainTick(state State) step {
	switch state {
	case Throttled:
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.maybeThrottle()
	default: // Disconnected, Connecting, Streaming: stale.
		return keep()
	}
}

func (d *unackedMode) onFlushTick(state State) step {
	switch state {
	case Streaming:
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		// A state timeout fires once: re-arm the periodic flush.
		return keep(SetStateTimeout(d.cfg.FlushInterval, ManagerEvent{Type: EventFlushTick}))
	default: // Disconnected, Connecting, Throttled: stale.
		return keep()
	}
}

// maybeThrottle picks Streaming or Throttled after a successful flush, from
// the backlog left (ring plus disk) against MaxPending.
func (d *unackedMode) maybeThrottle() step {
	if d.held() > d.cfg.MaxPending {
		return NextState(Throttled, SetStateTimeout(d.cfg.DrainInterval, ManagerEvent{Type: EventDrainTick}))
	}
	return NextState(Streaming, SetStateTimeout(d.cfg.FlushInterval, ManagerEvent{Type: EventFlushTick}))
}

// ---------------------------------------------------------------------------
// Buffering and flushing
// ---------------------------------------------------------------------------

// bufferWithSpill keeps record while not streaming. With a disk tier, once
// the ring holds MaxPending records its whole content goes to disk before
// the push could evict anything. If the disk refuses (full), the unwritten
// remainder goes back in front of the ring, spilling pauses for BaseBackoff,
// and what the ring must evict is counted as dropped.
func (d *unackedMode) bufferWithSpill(record []byte) {
	if d.spill != nil && d.ring.Len() >= d.cfg.MaxPending {
		now := d.clock.Now()
		if !now.Before(d.spillRetryAt) {
			recs := d.ring.DrainUpTo(d.ring.Len())
			for i, r := range recs {
				if err := d.spill.Append(r); err != nil {
					d.dropped(d.ring.PutBackFront(recs[i:]))
					d.spillRetryAt = now.Add(d.cfg.BaseBackoff)
					if now.Sub(d.lastSpillErr) >= d.cfg.DropLogInterval || d.lastSpillErr.IsZero() {
						d.lastSpillErr = now
						d.log.Error().Err(err).Int("unspilled", len(recs)-i).Msg("disk tier refused records; the ring will evict")
					}
					break
				}
			}
		}
	}
	d.dropped(d.ring.Push(record))
}

// flush replays up to DrainBatch records: the disk tier first (oldest
// first), then the ring, which is only touched once the disk is empty so
// order is kept. On a failure nothing is lost: the disk keeps what was not
// trimmed, the ring gets the remainder back in front.
func (d *unackedMode) flush() error {
	budget := d.cfg.DrainBatch
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
	if err != nil {
		d.dropped(d.ring.PutBackFront(recs[sent:]))
		return err
	}
	return nil
}

// replayChunk bounds one read from the disk tier.
const replayChunk = 256

func (d *unackedMode) replayCold(budget int) (int, error) {
	total := 0
	for total < budget {
		var err error
		d.cold, err = d.spill.ReadOldest(d.cold[:0], min(budget-total, replayChunk))
		if err != nil {
			return total, fmt.Errorf("read disk tier: %w", err)
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
		if sent > 0 {
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
		d.window.add(d.clock.Now(), sent, d.cfg.FlushInterval)
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

// dropped counts ring evictions and logs them at most once per
// DropLogInterval.
func (d *unackedMode) dropped(n int) { d.countDropped(n, nil, "ring full: records dropped") }

func (d *unackedMode) held() int {
	n := d.ring.Len()
	if d.spill != nil {
		n += d.spill.Len()
	}
	return n
}

func (d *unackedMode) addStats(*Stats) {}

func (d *unackedMode) peerExit(message any) bool {
	pe, ok := d.transport.(PeerExits)
	return ok && pe.IsPeerExit(message)
}

func (d *unackedMode) updateDepths() {
	if d.metrics == nil {
		return
	}
	var spillRecords int
	var spillBytes int64
	if d.spill != nil {
		spillRecords, spillBytes = d.spill.Len(), d.spill.Bytes()
	}
	d.metrics.setDepths(d.ring.Len(), d.ring.Bytes(), spillRecords, spillBytes)
}

// deliveryWindow remembers how many records were delivered recently, in at
// most ~17 buckets per span, to count what was written in the last flush
// interval before a drop.
type deliveryWindow struct {
	buckets []deliveryBucket
}

type deliveryBucket struct {
	at time.Time
	n  int
}

func (w *deliveryWindow) prune(now time.Time, span time.Duration) {
	keep := 0
	for keep < len(w.buckets) && now.Sub(w.buckets[keep].at) > span {
		keep++
	}
	if keep > 0 {
		w.buckets = append(w.buckets[:0], w.buckets[keep:]...)
	}
}

func (w *deliveryWindow) add(now time.Time, n int, span time.Duration) {
	w.prune(now, span)
	if last := len(w.buckets) - 1; last >= 0 && now.Sub(w.buckets[last].at) < span/16 {
		w.buckets[last].n += n
		return
	}
	w.buckets = append(w.buckets, deliveryBucket{at: now, n: n})
}

func (w *deliveryWindow) total(now time.Time, span time.Duration) int {
	w.prune(now, span)
	sum := 0
	for _, b := range w.buckets {
		sum += b.n
	}
	return sum
}

func (w *deliveryWindow) reset() { w.buckets = w.buckets[:0] }
