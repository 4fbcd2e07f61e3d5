package cluster

import (
	"context"
	"errors"
	"fmt"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/node"
)

// transport is a shard's transport: the Brain transport of the shard's current owner, built
// again when the owner changes (the router then tells the manager its connection is lost, and
// its next Connect reaches the new owner). It implements every interface the Brain transport
// does, so the manager treats it as one.
//
// In the acknowledged mode the batches name a proxy as ReplyTo, one per owner epoch, which
// forwards the acknowledgements to the manager only while its epoch is the shard's: an
// acknowledgement of the old owner arriving after the change never reaches the manager, whose
// numbering it could otherwise move (with a store the old owner does not share, its NextSeq
// means nothing to the new owner's).
type transport struct {
	r    *Router
	l    *lane
	proc gen.Process

	owner *member
	epoch uint64         // the lane's epoch when owner was taken
	inner innerTransport // nil until the first Connect
	proxy gen.PID
	// sentEpoch is the epoch records or round trips last went out in: if the owner changed
	// since, their connection is abandoned (Lost).
	sentEpoch uint64
}

// innerTransport is every interface of the Brain transport.
type innerTransport interface {
	fsm.BatchTransport
	fsm.AckTransport
	fsm.Confirmer
	fsm.LossReason
}

var (
	_ fsm.BatchTransport = (*transport)(nil)
	_ fsm.AckTransport   = (*transport)(nil)
	_ fsm.Confirmer      = (*transport)(nil)
	_ fsm.LossReason     = (*transport)(nil)
	_ fsm.Prober         = (*transport)(nil)
)

// Probe implements fsm.Prober: the shard's peer looks reachable once it has an owner again (the
// router's health probes found a member live), so a manager in its backoff connects soon after
// a Brain returns instead of at the end of a wait of up to MaxBackoff.
func (t *transport) Probe(ctx context.Context) error {
	if owner, _, _ := t.l.current(); owner == nil {
		return fmt.Errorf("%w for shard %s", ErrNoMember, t.l.label)
	}
	return nil
}

func (r *Router) newTransport(l *lane, p gen.Process) *transport {
	return &transport{r: r, l: l, proc: p}
}

// Connect waits (within ctx: ConnectTimeout) for the shard to have an owner, switches to it if
// it changed, and connects to it.
func (t *transport) Connect(ctx context.Context) error {
	owner, epoch, changed := t.l.current()
	for owner == nil {
		select {
		case <-changed:
			owner, epoch, changed = t.l.current()
		case <-ctx.Done():
			return fmt.Errorf("%w for shard %s: %w", ErrNoMember, t.l.label, ctx.Err())
		}
	}
	if t.inner == nil || epoch != t.epoch {
		if err := t.switchTo(owner, epoch); err != nil {
			return err
		}
	}
	return t.inner.Connect(ctx)
}

// switchTo builds the transport of the shard's new owner. The old owner's monitor is removed
// (its DOWN would otherwise end a connection to the new one), and, in the acknowledged mode,
// the old proxy is ended and a new one started for the new epoch.
func (t *transport) switchTo(owner *member, epoch uint64) error {
	// Ergo keeps a monitor that fired registered, and a new Brain transport monitors its target
	// without removing one first: the new owner's (from an earlier epoch) goes too.
	for _, m := range []*member{t.owner, owner} {
		if m == nil {
			continue
		}
		pid := gen.ProcessID{Name: gen.Atom(m.target.Name), Node: gen.Atom(m.target.Node)}
		if err := t.proc.DemonitorProcessID(pid); err != nil && !errors.Is(err, gen.ErrTargetUnknown) {
			t.r.log.Debug().Err(err).Str("shard", t.l.label).Str("brain", m.key).Msg("demonitor")
		}
	}
	var inner innerTransport
	if owner.brain.Mode() == brain.ModeAcked {
		if t.proxy != (gen.PID{}) {
			_ = t.proc.Node().Kill(t.proxy)
			t.proxy = gen.PID{}
		}
		proxy, err := t.proc.Spawn(func() gen.ProcessBehavior { return &ackProxy{log: t.r.log} }, gen.ProcessOptions{}, t.l, epoch, t.proc.PID())
		if err != nil {
			return fmt.Errorf("cluster: shard %s: start the acknowledgement proxy: %w", t.l.label, err)
		}
		t.proxy = proxy
		at, err := owner.brain.NewAckTransportReplyTo(t.proc, proxy)
		if err != nil {
			return err
		}
		inner = at.(innerTransport)
	} else {
		tr, err := owner.brain.NewTransport(t.proc)
		if err != nil {
			return err
		}
		inner = tr.(innerTransport)
	}
	t.owner, t.epoch, t.inner = owner, epoch, inner
	t.r.log.Info().Str("shard", t.l.label).Str("brain", owner.key).Msg("shard connecting to its owner")
	return nil
}

func (t *transport) live() (innerTransport, error) {
	if t.inner == nil {
		return nil, brain.ErrNotConnected
	}
	t.sentEpoch = t.epoch
	return t.inner, nil
}

// Deliver implements fsm.Transport.
func (t *transport) Deliver(ctx context.Context, record []byte) error {
	in, err := t.live()
	if err != nil {
		return err
	}
	return in.Deliver(ctx, record)
}

// DeliverBatch implements fsm.BatchTransport.
func (t *transport) DeliverBatch(ctx context.Context, records [][]byte) (int, error) {
	in, err := t.live()
	if err != nil {
		return 0, err
	}
	return in.DeliverBatch(ctx, records)
}

// SendBatch implements fsm.AckTransport.
func (t *transport) SendBatch(ctx context.Context, sourceID string, firstSeq uint64, payloads [][]byte) error {
	in, err := t.live()
	if err != nil {
		return err
	}
	return in.SendBatch(ctx, sourceID, firstSeq, payloads)
}

// Confirm implements fsm.Confirmer.
func (t *transport) Confirm(ctx context.Context, id uint64) error {
	in, err := t.live()
	if err != nil {
		return err
	}
	return in.Confirm(ctx, id)
}

// Confirmation implements fsm.Confirmer: only a confirmation from the current owner's node
// completes a round trip (another connection numbers its own confirmations).
func (t *transport) Confirmation(message any) (uint64, bool) {
	m, ok := message.(node.MessageConfirmed)
	if !ok || t.inner == nil || string(m.PID.Node) != t.owner.target.Node {
		return 0, false
	}
	return t.inner.Confirmation(message)
}

// Lost implements fsm.Confirmer: the connection the last records went out on ended, or the
// shard moved to another owner since (that connection is abandoned: what waits for its
// confirmation is settled and resent to the new owner).
func (t *transport) Lost() bool {
	if t.inner == nil {
		return false
	}
	if _, epoch, _ := t.l.current(); epoch != t.sentEpoch {
		return true
	}
	return t.inner.Lost()
}

// LossReason implements fsm.LossReason.
func (t *transport) LossReason() error {
	if t.inner == nil {
		return nil
	}
	return t.inner.LossReason()
}

// ackProxy is the ReplyTo of one epoch of a shard in the acknowledged mode: it forwards what the
// Brain sends (its acknowledgements) to the manager while the epoch is the shard's, and ends at
// the first message after, or when the manager ends.
type ackProxy struct {
	act.Actor
	log     zerolog.Logger
	l       *lane
	epoch   uint64
	manager gen.PID
}

// monitorManager is the proxy's first message to itself: Ergo allows no monitor in Init.
type monitorManager struct{}

func (p *ackProxy) Init(args ...any) error {
	p.l, p.epoch, p.manager = args[0].(*lane), args[1].(uint64), args[2].(gen.PID)
	return p.Send(p.PID(), monitorManager{})
}

func (p *ackProxy) HandleMessage(from gen.PID, message any) error {
	switch message.(type) {
	case monitorManager:
		if err := p.MonitorPID(p.manager); err != nil {
			return gen.TerminateReasonNormal // the manager is gone already
		}
		return nil
	case gen.MessageDownPID:
		return gen.TerminateReasonNormal
	}
	var err error
	behind, maxAck := false, uint64(0)
	if !p.l.isEpoch(p.epoch, func() {
		if ack, perr := etf.ParseAck(message); perr == nil {
			maxAck = p.l.maxAck
			behind = p.l.checkShared(ack.NextSeq)
		}
		err = p.Send(p.manager, message)
	}) {
		return gen.TerminateReasonNormal
	}
	if behind {
		p.log.Error().Str("shard", p.l.label).Uint64("acknowledged_before", maxAck).
			Msg("the shard's new owner's NextSeq is behind what an earlier owner acknowledged: the Brains do not share " +
				"their acknowledged-mode store; records can be processed twice, or lost when the shard returns to a Brain " +
				"that is ahead: use a shared store (pharos_acked_mnesia, docs/clusters.md)")
	}
	if err != nil {
		p.Log().Debug("forward an acknowledgement: %s", err)
	}
	return nil
}
