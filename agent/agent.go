package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"ergo.services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/buffer"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
	"github.com/pharos-node/pharos-node/tier"
)

// Sentinel errors.
var (
	// ErrInvalidOptions is wrapped by every refusal of Options.
	ErrInvalidOptions = errors.New("agent: invalid options")
	// ErrClosed: the agent is closing or closed; the record was not accepted.
	ErrClosed = errors.New("agent: closed")
	// ErrBusy: the connection manager's inbox is full; the record was not accepted. It
	// matches ingest.ErrSinkFull, so the ingest sources report it as such.
	ErrBusy = fmt.Errorf("agent: connection manager busy: %w", ingest.ErrSinkFull)
	// ErrFull: RAM holds as many records as the ring's bounds allow and Options.RefuseWhenFull
	// is set; the record was not accepted (nothing was dropped). It matches
	// ingest.ErrSinkOverflow (and so ingest.ErrSinkFull): the HTTP ingest answers 429.
	ErrFull = fmt.Errorf("agent: RAM buffer full, record refused: %w", ingest.ErrSinkOverflow)
	// ErrStopped: the connection manager is down for good (its supervisor gave up restarting
	// it); the record was not accepted. Err says why.
	ErrStopped = errors.New("agent: connection manager down")
	// ErrRecordsLeft: Close could neither deliver nor spill some accepted records (no spill
	// directory, or the disk refused them). The error says how many.
	ErrRecordsLeft = errors.New("agent: records left undelivered")
)

// Defaults of Options.
const (
	DefaultManagerName = "pharos_conn"
	DefaultMailboxSize = 100_000
	DefaultRingRecords = 100_000
	DefaultRingBytes   = 64 << 20
)

// Mode is how a record travels to the Brain (docs/wire.md).
type Mode = brain.Mode

// The delivery modes.
const (
	ModePayload = brain.ModePayload // term_to_binary(Record) as a binary (the default)
	ModeTerm    = brain.ModeTerm    // the record term itself
	ModeSubject = brain.ModeSubject // {Name, Body}, Body as in ModePayload
	ModeAcked   = brain.ModeAcked   // pharos_batch / pharos_ack: nothing lost, duplicates dropped
)

// ParseMode reads "payload", "term", "subject" or "acked".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModePayload, ModeTerm, ModeSubject, ModeAcked} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown delivery mode %q (want payload, term, subject or acked)", ErrInvalidOptions, s)
}

// Target is the Brain: the process registered as Name on the node Node.
type Target = brain.Target

// QueueLimit is backpressure on the Brain's mailbox (see brain.QueueLimit).
type QueueLimit = brain.QueueLimit

// Options configure Start. Brain is required; everything else has a default.
type Options struct {
	// Node is an Ergo node the caller already runs, speaking Erlang distribution (package
	// node). Nil: Start starts its own from NodeName and NodeOptions, and Close stops it.
	Node gen.Node
	// Connector reaches the Brain from Node. Nil: Node must implement it (a *node.Node from
	// node.Start does); for a node built with node.NewNodeOptions use brain.NewStackConnector.
	Connector brain.Connector
	// NodeName and NodeOptions start the agent's own node when Node is nil. NodeName defaults
	// to pharos@<host name>; NodeOptions.Cookie is required then. Unless NodeOptions.Log says
	// otherwise, Ergo's log goes to Logger at warning level and above.
	NodeName    string
	NodeOptions node.Options

	// Brain is the target: its node and registered name. Not used with a Sink.
	Brain Target
	// Cluster, in place of Brain, delivers to a cluster of Brains (a static list or a pg
	// group) through one connection manager per shard (package cluster, docs/clusters.md).
	Cluster *ClusterConfig
	// Sink, when set, replaces the Brain as where records go (e.g. an *otlpsink.Sink): Brain,
	// Connector and BrainQueue are then not used, Mode must be ModePayload, and an own node
	// needs no cookie.
	Sink Sink
	// Mode is the delivery mode; the default is ModePayload.
	Mode Mode
	// BrainQueue is backpressure on the Brain's mailbox; the zero value is off.
	BrainQueue QueueLimit
	// Delivery tunes the connection manager; the zero value means fsm.DefaultConfig(). Its
	// Delivery field is set from Mode.
	Delivery fsm.Config
	// RestartIntensity restarts of the connection manager within RestartPeriod make its
	// supervisor give up, and the agent stop (Done, Err); defaults fsm.DefaultRestartIntensity
	// and fsm.DefaultRestartPeriod.
	RestartIntensity int
	RestartPeriod    time.Duration

	// ManagerName is the connection manager's registered name on the node (default
	// DefaultManagerName; its supervisor is ManagerName_sup); MailboxSize bounds the records
	// waiting for it in its inbox, and its mailbox (default DefaultMailboxSize; a full inbox
	// refuses records with ErrBusy, so Deliver never blocks).
	ManagerName string
	MailboxSize int

	// RingRecords and RingBytes bound the RAM ring (defaults DefaultRingRecords,
	// DefaultRingBytes). RingRecords must exceed Delivery.MaxPending. In ModeAcked without a
	// spill directory, RingRecords bounds the RAM log instead.
	RingRecords int
	RingBytes   int
	// RefuseWhenFull (ModePayload, ModeTerm, ModeSubject without a spill directory): once the
	// records held in RAM (waiting, in the ring, delivered and not yet confirmed) reach
	// RingRecords or RingBytes, deliveries fail with ErrFull instead of the ring dropping its
	// oldest records, so that a client that can retry does. Ignored with a spill directory
	// (the ring then spills to disk, whose own overflow policy applies) and in ModeAcked.
	RefuseWhenFull bool
	// SpillDir is the disk tier: records the ring cannot hold, records left at Close (and, in
	// ModeAcked, every record until acknowledged) wait there across restarts. Empty: RAM only.
	SpillDir string
	// SpillOptions are passed to spill.Open (the logger and registerer are added; in ModeAcked
	// the overflow policy is always spill.Refuse, see ackedSpillOptions).
	SpillOptions []spill.Option

	// Limits are the record limits DeliverMetric and DeliverAlert validate against.
	Limits etf.RecordLimits
	// Registerer receives the manager's and the spill log's metrics. Nil: not exported (State
	// and Stats work either way).
	Registerer prometheus.Registerer
	// Logger; the zero value discards.
	Logger zerolog.Logger
}

// Agent delivers records to a Brain through one supervised connection manager. Its methods
// are safe for concurrent use.
type Agent struct {
	opts    Options
	log     zerolog.Logger
	node    gen.Node
	ownNode *node.Node
	brain   *brain.Brain
	svc     *fsm.Service
	handle  fsm.Handle
	inbox   *fsm.Inbox // records accepted, not yet taken by the manager
	ring    *buffer.Ring
	pending *tier.Unconfirmed // delivered, not yet confirmed (payload, term, subject)
	spill   *spill.Log
	memLog  *tier.MemoryLog
	cluster *cluster.Router // with Options.Cluster, in place of brain, svc and the tiers

	arena recordArena // where DeliverMetric and DeliverAlert encode records

	mu       sync.RWMutex // held for reading by every delivery, for writing by Close
	closed   bool
	done     atomic.Bool // Close has finished
	accepted atomic.Uint64
	refused  atomic.Uint64
}

// Start builds the tiers, the Brain transport and the supervised connection manager, which
// starts connecting at once. Records may be delivered as soon as it returns, Brain or not.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	a := &Agent{opts: opts, log: opts.Logger, node: opts.Node}
	ok := false
	defer func() {
		if !ok {
			a.release()
		}
	}()

	connector := opts.Connector
	if a.node == nil {
		nopts := opts.NodeOptions
		if !nopts.Log.DefaultLogger.Disable && len(nopts.Log.Loggers) == 0 && nopts.Log.Level == 0 {
			nopts.Log.Level = gen.LogLevelWarning
			nopts.Log.DefaultLogger.Disable = true
			nopts.Log.Loggers = []gen.Logger{{Name: "zerolog", Logger: ergoLogger{log: opts.Logger}}}
		}
		n, err := node.Start(gen.Atom(opts.NodeName), nopts)
		if err != nil {
			return nil, fmt.Errorf("agent: start node %s: %w", opts.NodeName, err)
		}
		a.node, a.ownNode = n, n
		connector = n
	} else if connector == nil && opts.Sink == nil {
		c, isConnector := opts.Node.(brain.Connector)
		if !isConnector {
			return nil, fmt.Errorf("%w: Node is not a *node.Node: set Connector (brain.NewStackConnector)", ErrInvalidOptions)
		}
		connector = c
	}

	if opts.Cluster != nil {
		if err := a.startCluster(ctx, connector); err != nil {
			return nil, err
		}
		a.log.Info().Str("routing", opts.Cluster.Routing.String()).Int("shards", a.cluster.Shards()).
			Str("mode", opts.Mode.String()).Str("node", string(a.node.Name())).Bool("spill", opts.SpillDir != "").
			Msg("agent started (cluster)")
		ok = true
		return a, nil
	}
	if opts.Sink == nil {
		b, err := brain.NewBrainWithQueueLimit(connector, opts.Brain, opts.Mode, opts.BrainQueue, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		a.brain = b
	}

	metrics, err := fsm.NewMetrics(opts.Registerer, nil)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := a.openSpill(); err != nil {
		return nil, err
	}
	aopts := fsm.ActorOptions{Config: opts.Delivery, Logger: opts.Logger, Metrics: metrics}
	if err := a.buildTiers(&aopts); err != nil {
		return nil, err
	}
	iopts := fsm.InboxOptions{Limit: opts.MailboxSize}
	if opts.RefuseWhenFull && opts.Mode != ModeAcked && a.spill == nil {
		iopts.RAMRecords, iopts.RAMBytes = opts.RingRecords, opts.RingBytes
	}
	inbox, err := fsm.NewInboxWithOptions(iopts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	aopts.Inbox = inbox
	a.inbox = inbox
	if err := aopts.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	svc, err := fsm.StartService(a.node, fsm.ServiceOptions{
		Name:             gen.Atom(opts.ManagerName),
		Actor:            aopts,
		Process:          gen.ProcessOptions{MailboxSize: int64(opts.MailboxSize)},
		RestartIntensity: opts.RestartIntensity,
		RestartPeriod:    opts.RestartPeriod,
		Metrics:          metrics,
		Logger:           opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: start connection manager %s: %w", opts.ManagerName, err)
	}
	a.svc = svc
	a.handle = svc.Handle()
	a.log.Info().Func(a.logTarget).
		Str("mode", opts.Mode.String()).Str("node", string(a.node.Name())).Bool("spill", a.spill != nil).
		Msg("agent started")
	ok = true
	return a, nil
}

// openSpill opens the spill directory, if any.
func (a *Agent) openSpill() error {
	opts := a.opts
	if opts.SpillDir == "" {
		return nil
	}
	logger := opts.Logger
	sopts := append([]spill.Option{spill.WithLogger(&logger)}, opts.SpillOptions...)
	if opts.Mode == ModeAcked {
		// Dropping the oldest segment would delete unacknowledged records (see ackedSpillOptions).
		sopts = append(sopts, ackedSpillOptions()...)
	}
	if opts.Registerer != nil {
		sopts = append(sopts, spill.WithRegisterer(opts.Registerer))
	}
	l, err := spill.Open(opts.SpillDir, sopts...)
	if err != nil {
		return fmt.Errorf("agent: open spill directory: %w", err)
	}
	a.spill = l
	if rec := l.Recovery(); rec.LostRecords > 0 || rec.TornBytes > 0 || len(rec.Damage) > 0 || rec.MetaRebuilt {
		a.log.Warn().Uint64("lost_records", rec.LostRecords).Int64("torn_bytes", rec.TornBytes).
			Int("damaged_regions", len(rec.Damage)).Bool("meta_rebuilt", rec.MetaRebuilt).
			Msg("spill directory recovered from damage")
	}
	if n := l.Len(); n > 0 {
		a.log.Info().Int("records", n).Str("dir", opts.SpillDir).Msg("records waiting on disk from an earlier run")
	}
	return nil
}

// buildTiers sets the manager's tiers and transport in aopts for the mode.
func (a *Agent) buildTiers(aopts *fsm.ActorOptions) error {
	opts := a.opts
	if opts.Mode == ModeAcked {
		aopts.Config.Delivery = fsm.DeliveryAcked
		aopts.NewAckTransport = a.brain.NewAckTransport
		// The manager copies every record it takes into its log (the spill directory or the
		// RAM log) and then hands it back: the arena carves new records from its memory.
		a.arena.recycle = true
		aopts.Stored = a.arena.release
		if a.spill != nil {
			aopts.Log = a.spill // numbers densely, across restarts (package spill)
			return nil
		}
		mem, err := tier.NewMemoryLog(opts.RingRecords, rand.Reader)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		a.memLog = mem
		aopts.Log = mem
		return nil
	}
	aopts.Config.Delivery = fsm.DeliveryUnacked
	ring, err := buffer.New(opts.RingRecords, opts.RingBytes)
	if err != nil {
		return fmt.Errorf("%w: ring: %w", ErrInvalidOptions, err)
	}
	a.ring = ring
	aopts.Ring = tier.NewRing(ring)
	a.pending = &tier.Unconfirmed{}
	aopts.Unconfirmed = a.pending
	aopts.NewTransport = a.newTransport()
	if a.spill != nil {
		aopts.Spill = tier.NewSpill(a.spill)
	}
	return nil
}

func (o *Options) withDefaults() error {
	if err := o.sinkDefaults(); err != nil {
		return err
	}
	switch {
	case o.Cluster != nil && (o.Brain != (Target{}) || o.Sink != nil):
		return fmt.Errorf("%w: set one of Brain, Cluster and Sink", ErrInvalidOptions)
	case o.Cluster == nil && o.Sink == nil && (o.Brain.Node == "" || o.Brain.Name == ""):
		return fmt.Errorf("%w: Brain.Node and Brain.Name are required", ErrInvalidOptions)
	}
	if o.Mode > ModeAcked {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, o.Mode)
	}
	if o.Delivery == (fsm.Config{}) {
		o.Delivery = fsm.DefaultConfig()
	}
	if o.ManagerName == "" {
		o.ManagerName = DefaultManagerName
	}
	if o.MailboxSize == 0 {
		o.MailboxSize = DefaultMailboxSize
	}
	if o.MailboxSize < 0 {
		return fmt.Errorf("%w: MailboxSize %d", ErrInvalidOptions, o.MailboxSize)
	}
	if o.RingRecords == 0 {
		o.RingRecords = DefaultRingRecords
	}
	if o.RingBytes == 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.Node == nil {
		if o.NodeName == "" {
			host, err := os.Hostname()
			if err != nil {
				return fmt.Errorf("%w: no NodeName and no host name: %w", ErrInvalidOptions, err)
			}
			o.NodeName = "pharos@" + host
		}
		if o.NodeOptions.Cookie == "" {
			return fmt.Errorf("%w: NodeOptions.Cookie is required to start a node", ErrInvalidOptions)
		}
	}
	return nil
}

// Node returns the Ergo node the agent runs on.
func (a *Agent) Node() gen.Node { return a.node }

// Brain returns the transport factory (target and mode); nil with a Sink or a Cluster.
func (a *Agent) Brain() *brain.Brain { return a.brain }

// Cluster returns the router in cluster mode (Options.Cluster), else nil.
func (a *Agent) Cluster() *cluster.Router { return a.cluster }

// SourceID is the spill directory's sender identity ("" without one). In cluster mode each
// shard's SourceId begins with it.
func (a *Agent) SourceID() string {
	if a.cluster != nil {
		return a.cluster.SourceID()
	}
	if a.spill == nil {
		return ""
	}
	return a.spill.SourceID()
}

// Done is closed when the connection manager is down for good: after Close, or when its
// supervisor gave up restarting it (Err then says why, and the tiers were handed back: a daemon
// should Close and exit non-zero, so that its own supervisor restarts it).
func (a *Agent) Done() <-chan struct{} {
	if a.cluster != nil {
		return a.cluster.Done()
	}
	return a.svc.Done()
}

// Err is non-nil once the connection manager's supervisor gave up (it wraps
// fsm.ErrRestartIntensity).
func (a *Agent) Err() error {
	if a.cluster != nil {
		return a.cluster.Err()
	}
	return a.svc.Err()
}
