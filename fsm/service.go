package fsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"
)

// ErrStopped: the Service has stopped (Stop, or its supervisor gave up restarting the manager).
var ErrStopped = errors.New("fsm: connection manager stopped")

// ErrRestartIntensity: the manager crashed more often than ServiceOptions allow and its
// supervisor gave up; the tiers were handed back.
var ErrRestartIntensity = errors.New("fsm: connection manager restarted too often; supervisor gave up")

// Default restart intensity of a Service: at most 10 restarts within 10 s, as an OTP
// supervisor's {intensity, period} (OTP's default is 1 in 5 s; a connection manager whose
// peer can send it exit signals earns more room).
const (
	DefaultRestartIntensity = 10
	DefaultRestartPeriod    = 10 * time.Second
)

// ServiceOptions configure StartService.
type ServiceOptions struct {
	// Name is the manager's registered name; its supervisor is Name + "_sup".
	Name gen.Atom
	// Actor are the manager's options; Context and Status are the Service's own (any value
	// given is replaced). The tiers and the Inbox in it outlive every restart.
	Actor ActorOptions
	// Process are the manager's process options (MailboxSize bounds each mailbox queue).
	Process gen.ProcessOptions
	// RestartIntensity restarts within RestartPeriod make the supervisor give up (defaults
	// DefaultRestartIntensity, DefaultRestartPeriod; Ergo counts the period in whole seconds).
	RestartIntensity int
	RestartPeriod    time.Duration
	// Metrics, optional, counts restarts (pharos_fsm_restarts_total).
	Metrics *Metrics
	// Logger; the zero value discards.
	Logger zerolog.Logger
}

// Service is a connection manager under an Ergo supervisor that restarts it, with its tiers and
// inbox intact, when it crashes (a panic, a kill), up to the restart intensity. Its lifetime
// context reaches every transport call of every incarnation; Stop cancels it, stops the
// supervisor, and waits for the manager to hand its tiers back. Its methods are safe for
// concurrent use.
type Service struct {
	node   gen.Node
	name   gen.Atom
	sup    gen.PID
	handle Handle
	status *Status
	opts   ActorOptions
	cancel context.CancelFunc
	log    zerolog.Logger

	done    chan struct{} // closed once the supervisor has terminated
	mu      sync.Mutex
	doneErr error // why: nil after Stop, ErrRestartIntensity (wrapped) if it gave up
}

// StartService validates opts, spawns the supervisor and, under it, the manager, which starts
// connecting at once.
func StartService(node gen.Node, opts ServiceOptions) (*Service, error) {
	if opts.Name == "" {
		return nil, &ConfigError{Field: "Name", Reason: "must not be empty"}
	}
	if opts.RestartIntensity == 0 {
		opts.RestartIntensity = DefaultRestartIntensity
	}
	if opts.RestartPeriod == 0 {
		opts.RestartPeriod = DefaultRestartPeriod
	}
	if opts.RestartIntensity < 0 || opts.RestartIntensity > 65535 || opts.RestartPeriod < time.Second || opts.RestartPeriod > 65535*time.Second {
		return nil, &ConfigError{Field: "RestartIntensity/RestartPeriod", Reason: fmt.Sprintf("must be 1..65535 and 1s..65535s, got %d in %v", opts.RestartIntensity, opts.RestartPeriod)}
	}
	life, cancel := context.WithCancel(context.Background())
	s := &Service{node: node, name: opts.Name, status: NewStatus(), cancel: cancel, log: opts.Logger, done: make(chan struct{})}
	opts.Actor.Context, opts.Actor.Status = life, s.status
	opts.Actor.Live = &LiveConfig{}
	opts.Actor.Live.p.Store(&opts.Actor.Config)
	if err := opts.Actor.Validate(); err != nil {
		cancel()
		return nil, err
	}
	s.opts = opts.Actor
	s.handle = NewInboxHandle(node, opts.Name, opts.Actor.Inbox)
	s.handle.supervised = true
	sup, err := node.SpawnRegister(opts.Name+"_sup", func() gen.ProcessBehavior { return &serviceSup{svc: s, opts: opts} }, gen.ProcessOptions{})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("fsm: start supervisor of %s: %w", opts.Name, err)
	}
	s.sup = sup
	return s, nil
}

// Name is the manager's registered name.
func (s *Service) Name() gen.Atom { return s.name }

// Handle addresses the manager (Deliver, DeliverMany) across its restarts.
func (s *Service) Handle() Handle { return s.handle }

// Status is where the manager publishes.
func (s *Service) Status() *Status { return s.status }

// Snapshot is the manager's last published snapshot.
func (s *Service) Snapshot() Snapshot { return s.status.Load() }

// Done is closed once the Service has stopped: after Stop, or when the supervisor gave up
// (Err says which).
func (s *Service) Done() <-chan struct{} { return s.done }

// Err is nil while running and after Stop; an error wrapping ErrRestartIntensity once the
// supervisor gave up.
func (s *Service) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneErr
}

// Reconfigure changes the manager's tuning while it runs (backoff, flush and drain pacing,
// timeouts, the acknowledged mode's batches and window, the confirmations): the running
// manager takes it with its next message, later incarnations start with it. What it cannot
// change live is refused with a *ConfigError and nothing changes: the delivery discipline,
// confirmations switched on or off, and (unacknowledged modes) a MaxPending the ring cannot
// hold.
func (s *Service) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cur := s.opts.Live.p.Load()
	switch {
	case cfg.Delivery != cur.Delivery:
		return &ConfigError{Field: "Delivery", Reason: "cannot change while running"}
	case cfg.Confirm.Enabled() != cur.Confirm.Enabled():
		return &ConfigError{Field: "Confirm.Interval", Reason: "cannot switch confirmations on or off while running"}
	case cfg.Delivery == DeliveryUnacked && s.opts.Ring != nil:
		if err := checkRingCap(s.opts.Ring, cfg.MaxPending); err != nil {
			return err
		}
	}
	s.opts.Live.p.Store(&cfg)
	if err := s.handle.send(reconfigureMessage{}); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	return nil
}

// WaitDrained returns once the manager holds no record (inbox, ring and disk empty; in the
// acknowledged mode, every record acknowledged), or with ctx's error, or ErrStopped.
func (s *Service) WaitDrained(ctx context.Context) error {
	ch := s.status.waitDrained()
	// A manager that is idle handles a message to find out.
	_ = s.handle.send(probeMessage{})
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.status.forget(ch)
		return ctx.Err()
	case <-s.done:
		s.status.forget(ch)
		return ErrStopped
	}
}

// Stop cancels the lifetime context (a transport call in progress returns at once), stops the
// supervisor, whose manager hands its tiers back as it terminates (see Factory), and waits for
// both to end or for ctx. It returns what was handed back.
func (s *Service) Stop(ctx context.Context) (Handback, error) {
	s.cancel()
	if err := s.node.SendExit(s.sup, gen.TerminateReasonShutdown); err != nil && !errors.Is(err, gen.ErrProcessUnknown) && !errors.Is(err, gen.ErrProcessTerminated) {
		s.log.Warn().Err(err).Msg("stop the connection manager's supervisor")
	}
	select {
	case <-s.done:
		return s.status.HandedBack(), nil
	case <-ctx.Done():
		return s.status.HandedBack(), fmt.Errorf("fsm: stop %s: %w", s.name, ctx.Err())
	}
}

// serviceSup is the Service's supervisor: one-for-one, transient (a manager that stops
// normally is not restarted), counting restarts and handing the tiers back if it gives up.
type serviceSup struct {
	act.Supervisor
	svc      *Service
	opts     ServiceOptions
	started  bool
	lastExit error
}

func (p *serviceSup) Init(...any) (act.SupervisorSpec, error) {
	return act.SupervisorSpec{
		Type:     act.SupervisorTypeOneForOne,
		Children: []act.SupervisorChildSpec{{Name: p.opts.Name, Factory: Factory(p.opts.Actor), Options: p.opts.Process}},
		Restart: act.SupervisorRestart{
			Strategy:  act.SupervisorStrategyTransient,
			Intensity: uint16(p.opts.RestartIntensity),
			Period:    uint16(p.opts.RestartPeriod / time.Second),
		},
		EnableHandleChild: true,
	}, nil
}

func (p *serviceSup) HandleChildStart(name gen.Atom, pid gen.PID) error {
	if p.started {
		n := p.svc.status.restarts.Add(1)
		p.opts.Metrics.restart()
		p.svc.log.Warn().Str("process", string(name)).AnErr("reason", p.lastExit).Uint64("restarts", n).
			Msg("connection manager restarted by its supervisor; its tiers are intact")
	}
	p.started = true
	return nil
}

func (p *serviceSup) HandleChildTerminate(name gen.Atom, pid gen.PID, reason error) error {
	p.lastExit = reason
	return nil
}

// Terminate runs when the supervisor ends: after Stop, or after giving up. No manager runs any
// more, so the tiers are handed back here if the last incarnation crashed (it handed back
// nothing).
func (p *serviceSup) Terminate(reason error) {
	s := p.svc
	var err error
	if !errors.Is(reason, gen.TerminateReasonShutdown) && !errors.Is(reason, gen.TerminateReasonNormal) {
		err = fmt.Errorf("%w (last exit: %v): %w", ErrRestartIntensity, p.lastExit, reason)
	}
	hb := HandBack(s.opts)
	s.status.handedBack(hb)
	if err != nil {
		s.log.Error().Err(err).Int("spilled", hb.Spilled).Int("lost", hb.Lost).Msg("connection manager down for good")
	}
	s.cancel()
	s.mu.Lock()
	s.doneErr = err
	s.mu.Unlock()
	close(s.done)
}
