package fsm

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/rs/zerolog"
)

// ActorOptions configure the Ergo actor that runs a Manager. The same value
// is reused on every supervisor restart, so the Ring and Spill it holds (and
// their content) survive a crash of the manager.
type ActorOptions struct {
	Config Config
	// NewTransport builds the transport in the actor's Init, from the
	// actor's own process (the Brain transport monitors the Brain from it;
	// the DOWN message then reaches the manager as a lost connection).
	// Required in the unacknowledged modes.
	NewTransport func(p gen.Process) (Transport, error)
	// Ring is the RAM tier. Required in the unacknowledged modes.
	Ring Ring
	// Spill is the optional disk tier of the unacknowledged modes.
	Spill Spill
	// NewAckTransport builds the acknowledged mode's transport in Init, from
	// the actor's process: its pid is the batches' ReplyTo, so the Brain's
	// pharos_ack reaches this actor. Required in the acknowledged mode.
	NewAckTransport func(p gen.Process) (AckTransport, error)
	// Log keeps the acknowledged mode's records until acknowledged (the
	// spill directory's adapter, or a MemoryLog); like Ring it outlives
	// restarts. Required in the acknowledged mode.
	Log SeqLog
	// Clock defaults to SystemClock. Its timers send the state timeouts to
	// the actor's mailbox.
	Clock Clock
	// Rand drives the jitter; nil uses math/rand/v2's top-level functions.
	// It is used by one actor at a time.
	Rand Rand
	// Logger; the zero value discards.
	Logger zerolog.Logger
	// Metrics may be nil; create it once, outside the child spec.
	Metrics *Metrics
	// Inbox carries delivered records to the actor in place of one mailbox
	// message each (see Inbox); the actor's Handle must then be made with
	// NewInboxHandle on the same Inbox. Like Ring it outlives restarts:
	// create it once, outside the child spec. Required. Records travel
	// through it and not as mailbox messages: a mailbox full of records
	// makes Ergo drop what else arrives, the Brain's acks among them
	// (TestActorAckedFloodKeepsAcks), and costs ~0.7 µs more per record.
	Inbox *Inbox
	// Stored is ManagerOptions.Stored: called in the acknowledged mode
	// with the records taken from Inbox once the Log has copied them.
	Stored func(records [][]byte)
}

// Validate checks what can be checked before spawning.
func (o ActorOptions) Validate() error {
	if err := o.Config.Validate(); err != nil {
		return err
	}
	if o.Config.Delivery == DeliveryAcked {
		if o.NewAckTransport == nil {
			return &ConfigError{Field: "NewAckTransport", Reason: "must not be nil in the acknowledged mode"}
		}
		if o.Log == nil {
			return &ConfigError{Field: "Log", Reason: "must not be nil in the acknowledged mode"}
		}
		return o.checkInbox()
	}
	if o.NewTransport == nil {
		return &ConfigError{Field: "NewTransport", Reason: "must not be nil"}
	}
	if o.Ring == nil {
		return &ConfigError{Field: "Ring", Reason: "must not be nil"}
	}
	if err := checkRingCap(o.Ring, o.Config.MaxPending); err != nil {
		return err
	}
	return o.checkInbox()
}

// checkInbox: records travel only through an Inbox (see ActorOptions.Inbox).
func (o ActorOptions) checkInbox() error {
	if o.Inbox == nil {
		return &ConfigError{Field: "Inbox", Reason: "must not be nil"}
	}
	return nil
}

// StaticTransport adapts a Transport that needs no process to
// ActorOptions.NewTransport.
func StaticTransport(t Transport) func(gen.Process) (Transport, error) {
	return func(gen.Process) (Transport, error) { return t, nil }
}

// Messages specific to the manager actor.
type (
	connLostMessage struct{}
)

// translateManagerMessage maps the manager actor's mailbox to events: the
// handle's messages, monitor DOWNs as a lost connection, and the Brain's
// acknowledgements.
func translateManagerMessage(message any) (ManagerEvent, bool) {
	switch m := message.(type) {
	case connLostMessage, gen.MessageDownProcessID, gen.MessageDownPID, gen.MessageDownNode:
		return ManagerEvent{Type: EventConnectionLost}, true
	case Ack:
		return ManagerEvent{Type: EventAck, SourceID: m.SourceID, NextSeq: m.NextSeq}, true
	case etf.Tuple:
		if ack, ok := ParseAck(m); ok {
			return ManagerEvent{Type: EventAck, SourceID: ack.SourceID, NextSeq: ack.NextSeq}, true
		}
		return ManagerEvent{}, false
	default:
		return ManagerEvent{}, false
	}
}

// ParseAck decodes {pharos_ack, SourceId, NextSeq} as the etf package
// decodes it: a Tuple of an Atom (etf.Atom or gen.Atom) "pharos_ack", a
// binary ([]byte, or a string) and a non-negative integer (any Go integer
// type, or a *big.Int that fits 64 bits). Anything else is not an ack.
func ParseAck(t etf.Tuple) (Ack, bool) {
	if len(t) != 3 {
		return Ack{}, false
	}
	switch tag := t[0].(type) {
	case etf.Atom:
		if tag != "pharos_ack" {
			return Ack{}, false
		}
	case gen.Atom:
		if tag != "pharos_ack" {
			return Ack{}, false
		}
	default:
		return Ack{}, false
	}
	var ack Ack
	switch id := t[1].(type) {
	case []byte:
		ack.SourceID = string(id)
	case string:
		ack.SourceID = id
	default:
		return Ack{}, false
	}
	next, ok := nonNegative(t[2])
	if !ok {
		return Ack{}, false
	}
	ack.NextSeq = next
	return ack, true
}

func nonNegative(v any) (uint64, bool) {
	switch n := v.(type) {
	case int64:
		return uint64(n), n >= 0
	case int:
		return uint64(n), n >= 0
	case int32:
		return uint64(n), n >= 0
	case uint64:
		return n, true
	case uint32:
		return uint64(n), true
	case uint8:
		return uint64(n), true
	case *big.Int:
		if n == nil || !n.IsUint64() {
			return 0, false
		}
		return n.Uint64(), true
	default:
		return 0, false
	}
}

// Factory returns the process factory of a manager actor with these
// options: the generic machine actor around a Manager built in Init (so a
// restart starts from Disconnected with a fresh attempt counter). ChildSpec
// and Spawn use it; it does not validate opts (Init does).
func Factory(opts ActorOptions) gen.ProcessFactory {
	spec := MachineActorSpec[ManagerEvent]{
		Clock:     opts.Clock,
		Translate: translateManagerMessage,
		Intercept: func(r Runnable[ManagerEvent], message any) bool {
			if _, ok := message.(inboxMessage); ok {
				r.(*Manager).TakeInbox()
				return true
			}
			return false
		},
		New: func(p gen.Process, timers TimerFunc) (_ Runnable[ManagerEvent], err error) {
			defer func() {
				if err != nil && opts.Inbox != nil {
					// Ergo registers the name before Init and calls no
					// Terminate when Init fails: a notification sent to
					// this process meanwhile dies with it. Release the
					// name first (no later notification can reach this
					// process), then re-arm, as OnTerminate does.
					if name := p.Name(); name != "" {
						_, _ = p.Node().UnregisterName(name)
					}
					opts.Inbox.rearm()
				}
			}()
			if err := opts.Validate(); err != nil {
				return nil, err
			}
			var transport Transport
			var ackTransport AckTransport
			if opts.Config.Delivery == DeliveryAcked {
				ackTransport, err = opts.NewAckTransport(p)
			} else {
				transport, err = opts.NewTransport(p)
			}
			if err != nil {
				return nil, fmt.Errorf("fsm: build transport: %w", err)
			}
			return NewManager(ManagerOptions{
				Config:       opts.Config,
				Transport:    transport,
				AckTransport: ackTransport,
				Log:          opts.Log,
				Ring:         opts.Ring,
				Spill:        opts.Spill,
				Clock:        opts.Clock,
				Rand:         opts.Rand,
				Logger:       opts.Logger.With().Str("process", string(p.Name())).Logger(),
				Metrics:      opts.Metrics,
				Timers:       timers,
				Inbox:        opts.Inbox,
				Stored:       opts.Stored,
			})
		},
		OnTerminate: func(r Runnable[ManagerEvent], reason error) {
			if opts.Inbox != nil {
				// The notification, if any, dies with this mailbox: the
				// next Deliver notifies again, and fails with
				// ErrNotRunning if nothing takes the name.
				opts.Inbox.rearm()
			}
			m := r.(*Manager)
			m.data.log.Info().Err(reason).Str("state", m.State().String()).Msg("connection manager stopped")
		},
	}
	return spec.Factory()
}

// ChildSpec is a worker spec for an act.Supervisor (one-for-one and the
// like register a child under its spec name, which is what Handle uses).
// procOpts.MailboxSize bounds every queue of the mailbox (0: unbounded);
// with a bound, Handle.Deliver fails with ErrMailboxFull instead of blocking.
func ChildSpec(name gen.Atom, opts ActorOptions, procOpts gen.ProcessOptions) (act.SupervisorChildSpec, error) {
	if err := opts.Validate(); err != nil {
		return act.SupervisorChildSpec{}, err
	}
	return act.SupervisorChildSpec{
		Name:    name,
		Factory: Factory(opts),
		Options: procOpts,
	}, nil
}

// Spawn starts an unsupervised manager registered under name (the
// original's start_link) and returns its handle.
func Spawn(node gen.Node, name gen.Atom, opts ActorOptions, procOpts gen.ProcessOptions) (Handle, error) {
	if err := opts.Validate(); err != nil {
		return Handle{}, err
	}
	if _, err := node.SpawnRegister(name, Factory(opts), procOpts); err != nil {
		return Handle{}, fmt.Errorf("fsm: spawn %s: %w", name, err)
	}
	return NewInboxHandle(node, name, opts.Inbox), nil
}

// Handle addresses a manager by its registered name, so it stays valid
// across supervisor restarts (the original's from_name). Its methods are
// safe from any goroutine and never block: they push into the mailbox.
type Handle struct {
	node  gen.Node
	name  gen.Atom
	inbox *Inbox // nil: Deliver is refused
}

// NewHandle wraps a registered name as a handle that can stop the actor
// and report a lost connection, but not deliver records (that needs the
// actor's Inbox: NewInboxHandle). It also serves plain machine actors.
func NewHandle(node gen.Node, name gen.Atom) Handle { return Handle{node: node, name: name} }

// NewInboxHandle wraps a registered name as a handle that delivers records
// through inbox, the one given to the actor in ActorOptions.Inbox.
func NewInboxHandle(node gen.Node, name gen.Atom, inbox *Inbox) Handle {
	return Handle{node: node, name: name, inbox: inbox}
}

// Name is the registered name.
func (h Handle) Name() gen.Atom { return h.name }

// Deliver enqueues one pre-encoded record. The manager takes ownership of
// the slice: do not modify it afterwards. It fails with ErrEmptyRecord,
// ErrMailboxFull (the inbox holds its limit, or the mailbox is full when
// the inbox must notify) or ErrNotRunning (between a crash and the
// restart, or after Stop, unless the inbox already has records waiting:
// the next incarnation takes them); it never blocks. A handle made with
// NewHandle has no inbox and refuses records with ErrInvalidConfig.
func (h Handle) Deliver(record []byte) error {
	_, err := h.DeliverMany([][]byte{record})
	return err
}

// DeliverMany is Deliver for several records, oldest first, under one lock of the
// inbox: for callers that have records together (a decoded request, a packet), it
// saves the per-record locking. It returns how many it accepted, from the front; with
// fewer than all, the error says why the next one was refused (ErrEmptyRecord,
// ErrMailboxFull, ErrNotRunning) and the ones after it were not looked at.
func (h Handle) DeliverMany(records [][]byte) (int, error) {
	n := len(records)
	var refused error
	for i, r := range records {
		if len(r) == 0 {
			n, refused = i, ErrEmptyRecord
			break
		}
	}
	if n == 0 {
		return 0, refused
	}
	if h.node == nil {
		return 0, ErrNotRunning
	}
	if h.inbox == nil {
		return 0, fmt.Errorf("%w: handle of %s has no Inbox (use NewInboxHandle)", ErrInvalidConfig, h.name)
	}
	accepted, err := h.inbox.putMany(records[:n], func() error { return h.send(inboxMessage{}) })
	if err != nil {
		return accepted, err
	}
	return accepted, refused
}

// ConnectionLost tells the manager its sink went away.
func (h Handle) ConnectionLost() error { return h.send(connLostMessage{}) }

// Stop asks the manager to terminate normally (a supervisor with the
// transient strategy will not restart it) and waits until its name is
// released or ctx ends.
func (h Handle) Stop(ctx context.Context) error {
	if err := h.send(stopMessage{}); err != nil {
		return err
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := h.send(probeMessage{}); errors.Is(err, ErrNotRunning) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fsm: stop %s: %w", h.name, ctx.Err())
		case <-tick.C:
		}
	}
}

func (h Handle) send(message any) error {
	if h.node == nil {
		return ErrNotRunning
	}
	err := h.node.Send(h.name, message)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gen.ErrProcessMailboxFull):
		return fmt.Errorf("%w: %s: %w", ErrMailboxFull, h.name, err)
	case errors.Is(err, gen.ErrProcessUnknown), errors.Is(err, gen.ErrProcessTerminated), errors.Is(err, gen.ErrNodeTerminated):
		return fmt.Errorf("%w: %s: %w", ErrNotRunning, h.name, err)
	default:
		return fmt.Errorf("fsm: send to %s: %w", h.name, err)
	}
}
