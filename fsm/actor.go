package fsm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/tier"
	"github.com/rs/zerolog"
)

// ActorOptions configure the Ergo actor that runs a Manager. The same value
// is reused on every supervisor restart, so the Ring and Spill it holds (and
// their content) survive a crash of the manager.
type ActorOptions struct {
	Config Config
	// Live, optional, holds the configuration in force, changed by
	// Service.Reconfigure; it replaces Config when set. Like Ring it
	// outlives restarts.
	Live *LiveConfig
	// Context bounds every transport call of every incarnation (see
	// ManagerOptions.Context); Service cancels it at Stop. Nil: none.
	Context context.Context
	// Status, optional, receives the Snapshot every incarnation publishes
	// after each message; like Ring it outlives restarts.
	Status *Status
	// NewTransport builds the transport in the actor's Init, from the
	// actor's own process (the Brain transport monitors the Brain from it;
	// the DOWN message then reaches the manager as a lost connection).
	// Required in the unacknowledged modes.
	NewTransport func(p gen.Process) (Transport, error)
	// Ring is the RAM tier. Required in the unacknowledged modes.
	Ring Ring
	// Spill is the optional disk tier of the unacknowledged modes.
	Spill Spill
	// Unconfirmed holds what the unacknowledged modes delivered and the
	// Brain has not confirmed (with a transport that is a Confirmer); like
	// Ring it outlives restarts. Nil: none (with confirmations on, each
	// incarnation then has its own, lost with it).
	Unconfirmed *tier.Unconfirmed
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
	connLostMessage    struct{}
	reconfigureMessage struct{} // take ActorOptions.Live's configuration
)

// LiveConfig is the configuration a Service's manager runs with, changed by Reconfigure.
type LiveConfig struct {
	p atomic.Pointer[Config]
}

// Load returns the configuration in force.
func (l *LiveConfig) Load() Config { return *l.p.Load() }

// PeerExits is optionally implemented by a Transport or AckTransport that
// links its peer: it tells which exit signals (gen.MessageExitPID and the
// like, reaching the trapping manager as messages) say that the peer is
// gone. Those become a lost connection; every other exit signal is ignored,
// as a trapping gen_server ignores an {'EXIT', From, Reason} it does not
// own.
type PeerExits interface {
	IsPeerExit(message any) bool
}

// translateManagerMessage maps the manager actor's mailbox to events: the
// handle's messages and monitor DOWNs as a lost connection. Acknowledgements
// and exit signals are the Intercept's.
func translateManagerMessage(message any) (ManagerEvent, bool) {
	switch m := message.(type) {
	case connLostMessage, gen.MessageDownProcessID, gen.MessageDownPID, gen.MessageDownNode:
		return ManagerEvent{Type: EventConnectionLost}, true
	case Ack:
		return ManagerEvent{Type: EventAck, SourceID: m.SourceID, NextSeq: m.NextSeq}, true
	default:
		return ManagerEvent{}, false
	}
}

// intercept handles what the manager actor takes itself: the inbox's
// notification, the Brain's pharos_ack (decoded by the node layer as an
// etf.Tuple; a malformed one is counted as ignored), and exit signals
// from others than the parent.
func (m *Manager) intercept(message any, log zerolog.Logger) bool {
	switch msg := message.(type) {
	case inboxMessage:
		m.TakeInbox()
		return true
	case reconfigureMessage:
		if m.live != nil {
			m.Reconfigure(m.live.Load())
			log.Info().Msg("connection manager reconfigured")
		}
		return true
	case etf.Tuple:
		ack, err := etf.ParseAck(msg)
		switch {
		case err == nil:
			m.Ack(ack.SourceID, ack.NextSeq)
		case errors.Is(err, etf.ErrNotAck):
			log.Debug().Int("arity", len(msg)).Msg("unexpected tuple in the mailbox; ignored")
		default:
			m.AckIgnored(ackIgnoredMalformed)
			log.Warn().Err(err).Msg("acknowledgement ignored")
		}
		return true
	case gen.MessageExitPID, gen.MessageExitProcessID, gen.MessageExitAlias, gen.MessageExitEvent, gen.MessageExitNode:
		if id, ok := m.data.mode.confirmation(message); ok { // a transport may confirm by an exit
			m.Cast(ManagerEvent{Type: EventConfirmed, ID: id})
			return true
		}
		if m.data.mode.peerExit(message) {
			log.Info().Str("signal", fmt.Sprintf("%+v", message)).Msg("the brain's link broke: connection lost")
			m.ConnectionLost()
		} else {
			log.Info().Str("signal", fmt.Sprintf("%+v", message)).Msg("exit signal from a process we are not linked to; ignored")
		}
		return true
	}
	if id, ok := m.data.mode.confirmation(message); ok {
		m.Cast(ManagerEvent{Type: EventConfirmed, ID: id})
		return true
	}
	return false
}

// Factory returns the process factory of a manager actor with these
// options: the generic machine actor around a Manager built in Init (so a
// restart starts from Disconnected with a fresh attempt counter). ChildSpec,
// Spawn and Service use it; it does not validate opts (Init does).
//
// The actor publishes a Snapshot to opts.Status after every message. When it
// terminates by its own decision (its parent's exit signal, Stop) it hands
// its tiers back first, in its own goroutine: records still in the inbox,
// and those in the ring, go to the disk tier (the acknowledged mode's log
// takes the inbox's), so that whoever closes the tiers finds them complete.
// A crash hands nothing back: the restarted incarnation goes on with them.
func Factory(opts ActorOptions) gen.ProcessFactory {
	// Each incarnation's own values (its logger, its number with Status) live in its Manager:
	// this spec, and so these closures, serve every incarnation, and a crashed one's
	// OnTerminate may run on another goroutine while the next one starts.
	publish := func(m *Manager) {
		if opts.Status != nil {
			opts.Status.publish(m.inc, Snapshot{Running: true, State: m.State(), Stats: m.Stats(), Held: m.Held()})
			if opts.Status.waiting() && m.Held() == 0 && (opts.Inbox == nil || opts.Inbox.Len() == 0) {
				opts.Status.drained()
			}
		}
	}
	spec := MachineActorSpec[ManagerEvent]{
		Clock:     opts.Clock,
		Translate: translateManagerMessage,
		Intercept: func(r Runnable[ManagerEvent], message any) bool {
			m := r.(*Manager)
			return m.intercept(message, m.zl)
		},
		After: func(r Runnable[ManagerEvent]) { publish(r.(*Manager)) },
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
			zl := opts.Logger.With().Str("process", string(p.Name())).Logger()
			var inc uint64
			if opts.Status != nil {
				inc = opts.Status.begin()
			}
			cfg := opts.Config
			if opts.Live != nil {
				cfg = opts.Live.Load()
			}
			m, err := NewManager(ManagerOptions{
				Config:       cfg,
				Context:      opts.Context,
				Transport:    transport,
				AckTransport: ackTransport,
				Log:          opts.Log,
				Ring:         opts.Ring,
				Spill:        opts.Spill,
				Unconfirmed:  opts.Unconfirmed,
				Clock:        opts.Clock,
				Rand:         opts.Rand,
				Logger:       zl,
				Metrics:      opts.Metrics,
				Timers:       timers,
				Inbox:        opts.Inbox,
				Stored:       opts.Stored,
			})
			if m != nil {
				m.live, m.zl, m.inc = opts.Live, zl, inc
			}
			return m, err
		},
		OnExit: func(r Runnable[ManagerEvent], reason error) {
			m := r.(*Manager)
			hb := HandBack(opts)
			m.zl.Info().Err(reason).Str("state", m.State().String()).Int("spilled", hb.Spilled).Int("lost", hb.Lost).
				Msg("connection manager stopping; tiers handed back")
			if opts.Status != nil {
				opts.Status.end(m.inc, m.Stats())
				opts.Status.handedBack(hb)
			}
		},
		OnTerminate: func(r Runnable[ManagerEvent], reason error) {
			if opts.Inbox != nil {
				// The notification, if any, dies with this mailbox: the
				// next Deliver notifies again, and fails with
				// ErrNotRunning if nothing takes the name.
				opts.Inbox.rearm()
			}
			m := r.(*Manager)
			if opts.Status != nil {
				opts.Status.end(m.inc, m.Stats())
			}
			if !errors.Is(reason, gen.TerminateReasonNormal) && !errors.Is(reason, gen.TerminateReasonShutdown) {
				m.zl.Warn().Err(reason).Str("state", m.State().String()).Msg("connection manager crashed")
			}
		},
	}
	return spec.Factory()
}

// Handback is what a stopping manager did with the records its tiers and
// inbox still held.
type Handback struct {
	Spilled int // appended to the disk tier (or, in the acknowledged mode, stored in the log)
	Lost    int // nowhere to keep them: no disk tier, or it refused them
}

// HandBack moves what the tiers hold in RAM to where it outlives the
// manager: the inbox's records and the ring's go to the disk tier (ring
// first: they are older), in the acknowledged mode the inbox's records to
// the log. What cannot be kept is counted in Lost. The inbox is closed:
// later deliveries fail with ErrNotRunning. It must run while no manager
// uses the tiers: a stopping manager calls it from its own goroutine, a
// Service after its supervisor gave up.
func HandBack(opts ActorOptions) Handback {
	var hb Handback
	var inbox [][]byte
	if opts.Inbox != nil {
		inbox = opts.Inbox.Close()
	}
	if opts.Config.Delivery == DeliveryAcked {
		for _, rec := range inbox {
			if _, err := opts.Log.Append(rec); err != nil {
				hb.Lost++
				continue
			}
			hb.Spilled++
		}
		if opts.Stored != nil && len(inbox) > 0 {
			opts.Stored(inbox)
		}
		return hb
	}
	var recs [][]byte
	if opts.Unconfirmed != nil {
		// Delivered but not confirmed: older than the ring. Those of the
		// disk tier are still there, untrimmed.
		for _, r := range opts.Unconfirmed.TakeAll() {
			recs = append(recs, r.RAM...)
		}
	}
	if opts.Ring != nil {
		recs = append(recs, opts.Ring.DrainUpTo(opts.Ring.Len())...)
	}
	for _, rec := range append(recs, inbox...) {
		if opts.Spill == nil {
			hb.Lost++
			continue
		}
		if err := opts.Spill.Append(rec); err != nil {
			hb.Lost++
			continue
		}
		hb.Spilled++
	}
	return hb
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
	node       gen.Node
	name       gen.Atom
	inbox      *Inbox // nil: Deliver is refused
	supervised bool   // a Service's: records wait in the inbox while the manager restarts
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
	accepted, err := h.inbox.putMany(records[:n], func() error { return h.send(inboxMessage{}) }, h.supervised)
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
