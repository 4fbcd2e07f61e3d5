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

	"github.com/pharos-node/pharos-node/buffer"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
)

// Sentinel errors.
var (
	// ErrInvalidOptions is wrapped by every refusal of Options.
	ErrInvalidOptions = errors.New("agent: invalid options")
	// ErrClosed: the agent is closing or closed; the record was not accepted.
	ErrClosed = errors.New("agent: closed")
	// ErrBusy: the connection manager's mailbox is full; the record was not accepted. It
	// matches ingest.ErrSinkFull, so the ingest sources report it as such.
	ErrBusy = fmt.Errorf("agent: connection manager busy: %w", ingest.ErrSinkFull)
	// ErrRecordsLeft: Close could neither deliver nor spill some accepted records (no spill
	// directory, or the disk refused them). The error says how many.
	ErrRecordsLeft = errors.New("agent: records left undelivered")
)

// Defaults of Options.
const (
	DefaultManagerName = gen.Atom("pharos_conn")
	DefaultMailboxSize = 100_000
	DefaultRingRecords = 100_000
	DefaultRingBytes   = 64 << 20
)

// Options configure Start. Brain is required; everything else has a default.
type Options struct {
	// Node is an Ergo node the caller already runs, speaking Erlang distribution (package
	// node). Nil: Start starts its own from NodeName and NodeOptions, and Close stops it.
	Node gen.Node
	// Connector reaches the Brain from Node. Nil: Node must implement it (a *node.Node from
	// node.Start does); for a node built with node.NewNodeOptions use NewStackConnector.
	Connector Connector
	// NodeName and NodeOptions start the agent's own node when Node is nil. NodeName defaults
	// to pharos@<host name>; NodeOptions.Cookie is required then. Unless NodeOptions.Log says
	// otherwise, Ergo's log goes to Logger at warning level and above.
	NodeName    gen.Atom
	NodeOptions node.Options

	// Brain is the target: its node and registered name.
	Brain Target
	// Mode is the delivery mode; the default is ModePayload.
	Mode Mode
	// BrainQueue is backpressure on the Brain's mailbox (see QueueLimit); the zero value is
	// off.
	BrainQueue QueueLimit
	// Delivery tunes the connection manager; the zero value means fsm.DefaultConfig(). Its
	// Delivery field is set from Mode.
	Delivery fsm.Config

	// ManagerName is the connection manager's registered name on the node (default
	// DefaultManagerName); MailboxSize bounds the records waiting for it in its inbox
	// (fsm.Inbox), and its mailbox (default DefaultMailboxSize; a full inbox refuses records
	// with ErrBusy, so Deliver never blocks).
	ManagerName gen.Atom
	MailboxSize int

	// RingRecords and RingBytes bound the RAM ring (defaults DefaultRingRecords,
	// DefaultRingBytes). RingRecords must exceed Delivery.MaxPending. In ModeAcked without a
	// spill directory, RingRecords bounds the RAM log instead.
	RingRecords int
	RingBytes   int
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

// Agent delivers records to a Brain through one connection manager. Its methods are safe for
// concurrent use.
type Agent struct {
	opts    Options
	log     zerolog.Logger
	node    gen.Node
	ownNode *node.Node
	brain   *Brain
	handle  fsm.Handle
	inbox   *fsm.Inbox // records accepted, not yet taken by the manager
	pid     gen.PID
	ring    *buffer.Ring
	spill   *spill.Log
	seqLog  *SeqSpill // ModeAcked with a spill directory
	memLog  *fsm.MemoryLog
	metrics *prometheus.Registry // the manager's metrics, read back by State and Stats

	arena recordArena // where DeliverMetric and DeliverAlert encode records

	mu       sync.RWMutex // held for reading by every delivery, for writing by Close
	closed   bool
	accepted atomic.Uint64
	refused  atomic.Uint64
}

// Start builds the tiers, the Brain transport and the connection manager, which starts
// connecting at once. Records may be delivered as soon as it returns, Brain or not.
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
		n, err := node.Start(opts.NodeName, nopts)
		if err != nil {
			return nil, fmt.Errorf("agent: start node %s: %w", opts.NodeName, err)
		}
		a.node, a.ownNode = n, n
		connector = n
	} else if connector == nil {
		c, isConnector := opts.Node.(Connector)
		if !isConnector {
			return nil, fmt.Errorf("%w: Node is not a *node.Node: set Connector (NewStackConnector)", ErrInvalidOptions)
		}
		connector = c
	}

	brain, err := NewBrainWithQueueLimit(connector, opts.Brain, opts.Mode, opts.BrainQueue, opts.Logger)
	if err != nil {
		return nil, err
	}
	a.brain = brain

	a.metrics = prometheus.NewRegistry()
	metrics, err := fsm.NewMetrics(teeRegisterer{a.metrics, opts.Registerer}, nil)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}

	if opts.SpillDir != "" {
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
			return nil, fmt.Errorf("agent: open spill directory: %w", err)
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
	}

	cfg := opts.Delivery
	aopts := fsm.ActorOptions{Config: cfg, Logger: opts.Logger, Metrics: metrics}
	if opts.Mode == ModeAcked {
		aopts.Config.Delivery = fsm.DeliveryAcked
		aopts.NewAckTransport = brain.NewAckTransport
		// The manager copies every record it takes into its log (the spill directory's or the
		// RAM log) and then hands it back: the arena carves new records from its memory.
		a.arena.recycle = true
		aopts.Stored = a.arena.release
		if a.spill != nil {
			a.seqLog = &SeqSpill{Log: a.spill, Zl: opts.Logger}
			aopts.Log = a.seqLog
		} else {
			mem, err := fsm.NewMemoryLog(opts.RingRecords, rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
			a.memLog = mem
			aopts.Log = mem
		}
	} else {
		aopts.Config.Delivery = fsm.DeliveryUnacked
		ring, err := buffer.New(opts.RingRecords, opts.RingBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: ring: %w", ErrInvalidOptions, err)
		}
		a.ring = ring
		aopts.Ring = &RingTier{Ring: ring}
		aopts.NewTransport = brain.NewTransport
		if a.spill != nil {
			aopts.Spill = &SpillTier{Log: a.spill}
		}
	}
	inbox, err := fsm.NewInbox(opts.MailboxSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	aopts.Inbox = inbox
	a.inbox = inbox
	if err := aopts.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	pid, err := a.node.SpawnRegister(opts.ManagerName, fsm.Factory(aopts), gen.ProcessOptions{MailboxSize: int64(opts.MailboxSize)})
	if err != nil {
		return nil, fmt.Errorf("agent: start connection manager %s: %w", opts.ManagerName, err)
	}
	a.pid = pid
	a.handle = fsm.NewInboxHandle(a.node, opts.ManagerName, inbox)
	a.log.Info().Str("brain_node", string(opts.Brain.Node)).Str("brain_name", string(opts.Brain.Name)).
		Str("mode", opts.Mode.String()).Str("node", string(a.node.Name())).Bool("spill", a.spill != nil).
		Msg("agent started")
	ok = true
	return a, nil
}

func (o *Options) withDefaults() error {
	if o.Brain.Node == "" || o.Brain.Name == "" {
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
			o.NodeName = gen.Atom("pharos@" + host)
		}
		if o.NodeOptions.Cookie == "" {
			return fmt.Errorf("%w: NodeOptions.Cookie is required to start a node", ErrInvalidOptions)
		}
	}
	return nil
}

// Node returns the Ergo node the agent runs on.
func (a *Agent) Node() gen.Node { return a.node }

// Brain returns the transport factory (target and mode).
func (a *Agent) Brain() *Brain { return a.brain }

// SourceID is the spill directory's sender identity ("" without one).
func (a *Agent) SourceID() string {
	if a.spill == nil {
		return ""
	}
	return a.spill.SourceID()
}

// DeliverMetric validates m (WIRE.md's rules, Options.Limits), encodes it once
// (term_to_binary) and hands it to the connection manager. It never blocks: it fails with an
// *etf.ValidationError, ErrBusy or ErrClosed.
func (a *Agent) DeliverMetric(m etf.Metric) error {
	if err := m.Validate(a.opts.Limits); err != nil {
		return err
	}
	rec, err := a.arena.encode(etf.MetricSize(&m), func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &m) })
	if err != nil {
		return err
	}
	return a.deliver(rec)
}

// DeliverMetrics is DeliverMetric for several metrics, in order, for a caller that has them
// together (a decoded request, a packet, a generator): the locking that DeliverMetric pays per
// record is paid once. It returns how many it accepted, from the front. With fewer than all,
// the error is the one DeliverMetric would have returned for the next metric (a
// *etf.ValidationError, ErrBusy, ErrClosed), and the metrics after it were not looked at.
func (a *Agent) DeliverMetrics(ms []etf.Metric) (int, error) {
	n := len(ms)
	var invalid error
	var prev *etf.Metric
	for i := range ms {
		if err := ms[i].ValidateAfter(prev, a.opts.Limits); err != nil {
			n, invalid = i, err
			break
		}
		prev = &ms[i]
	}
	recs := make([][]byte, 0, min(n, deliverChunk))
	done := 0
	for done < n {
		// Encode no more than the inbox has room for (at least one, to get its refusal), and
		// at most deliverChunk: a refusal then wastes few encodings.
		k := min(n-done, deliverChunk, max(a.inbox.Limit()-a.inbox.Len(), 1))
		part := ms[done : done+k]
		var err error
		recs, err = a.arena.encodeEach(k, recs[:0],
			func(i int) int { return etf.MetricSize(&part[i]) },
			func(i int, dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &part[i]) })
		if err != nil { // not after Validate; kept for the encoder's own checks (recs holds those before)
			n, invalid = done+len(recs), err
		}
		accepted, err := a.deliverMany(recs)
		done += accepted
		if err != nil {
			return done, err
		}
	}
	return done, invalid
}

// deliverChunk is how many records DeliverMetrics encodes before handing them over.
const deliverChunk = 256

// DeliverAlert is DeliverMetric for an alert.
func (a *Agent) DeliverAlert(al etf.Alert) error {
	if err := al.Validate(a.opts.Limits); err != nil {
		return err
	}
	rec, err := a.arena.encode(etf.AlertSize(&al), func(dst []byte) ([]byte, error) { return etf.AppendAlert(dst, &al) })
	if err != nil {
		return err
	}
	return a.deliver(rec)
}

// Deliver makes the agent an ingest.Sink.
func (a *Agent) Deliver(rec ingest.Record) error {
	switch {
	case rec.Metric != nil:
		return a.DeliverMetric(*rec.Metric)
	case rec.Alert != nil:
		return a.DeliverAlert(*rec.Alert)
	default:
		return fmt.Errorf("agent: empty ingest record")
	}
}

var _ ingest.Sink = (*Agent)(nil)

func (a *Agent) deliver(rec []byte) error {
	_, err := a.deliverMany([][]byte{rec})
	return err
}

// deliverMany hands recs to the manager's inbox, as many as it takes, and says how many.
func (a *Agent) deliverMany(recs [][]byte) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.refused.Add(1)
		return 0, ErrClosed
	}
	n, err := a.handle.DeliverMany(recs)
	a.accepted.Add(uint64(n))
	if err != nil {
		a.refused.Add(1)
		if errors.Is(err, fsm.ErrMailboxFull) {
			return n, fmt.Errorf("%w: %w", ErrBusy, err)
		}
		return n, fmt.Errorf("agent: %w", err)
	}
	return n, nil
}

// State is the connection manager's state (Disconnected until the first connection).
func (a *Agent) State() fsm.State {
	families, err := a.metrics.Gather()
	if err != nil {
		return fsm.Disconnected
	}
	for _, f := range families {
		if f.GetName() != "pharos_fsm_state" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetGauge().GetValue() != 1 {
				continue
			}
			for _, l := range m.GetLabel() {
				for _, s := range fsm.States() {
					if l.GetName() == "state" && l.GetValue() == s.String() {
						return s
					}
				}
			}
		}
	}
	return fsm.Disconnected
}

// Stats are the agent's counters.
type Stats struct {
	State        fsm.State
	Accepted     uint64 // records DeliverMetric/DeliverAlert accepted
	Refused      uint64 // records refused by the manager (busy) or after Close
	Delivered    uint64 // records handed to the transport (unacknowledged modes)
	Acked        uint64 // records the Brain acknowledged (ModeAcked)
	Dropped      uint64 // records evicted from RAM with nowhere to go
	PossiblyLost uint64 // written in the last flush interval before a drop (WIRE.md)
	Reconnects   uint64
	Transitions  map[string]uint64 // "from->to": count
	RingRecords  int
	SpillRecords int // untrimmed records on disk
}

// Stats returns the counters, read back from the manager's metrics.
func (a *Agent) Stats() Stats {
	s := Stats{State: a.State(), Accepted: a.accepted.Load(), Refused: a.refused.Load(), Transitions: map[string]uint64{}}
	if families, err := a.metrics.Gather(); err == nil {
		for _, f := range families {
			for _, m := range f.GetMetric() {
				v := uint64(m.GetCounter().GetValue())
				switch f.GetName() {
				case "pharos_fsm_delivered_total":
					s.Delivered = v
				case "pharos_fsm_acked_records_total":
					s.Acked = v
				case "pharos_fsm_dropped_total":
					s.Dropped = v
				case "pharos_fsm_possibly_lost_total":
					s.PossiblyLost = v
				case "pharos_fsm_reconnects_total":
					s.Reconnects = v
				case "pharos_fsm_transitions_total":
					var from, to string
					for _, l := range m.GetLabel() {
						switch l.GetName() {
						case "from":
							from = l.GetValue()
						case "to":
							to = l.GetValue()
						}
					}
					s.Transitions[from+"->"+to] = v
				}
			}
		}
	}
	if a.ring != nil {
		s.RingRecords = a.ring.Len()
	}
	if a.spill != nil {
		s.SpillRecords = a.spill.Len()
	}
	return s
}

// pending is how many accepted records are still held (inbox, RAM ring, disk, RAM log).
func (a *Agent) pending() int {
	n := a.held()
	if a.inbox != nil {
		n += a.inbox.Len()
	}
	return n
}

// held is how many accepted records the tiers hold (RAM ring, disk, RAM log): pending without
// those still in the manager's inbox.
func (a *Agent) held() int {
	n := 0
	if a.ring != nil {
		n += a.ring.Len()
	}
	if a.spill != nil {
		n += a.spill.Len()
	}
	if a.memLog != nil {
		n += a.memLog.Len()
	}
	return n
}

// Close stops accepting records, keeps delivering until everything accepted is delivered or
// ctx is done, stops the connection manager, then appends what is left in RAM to the spill
// directory (where the next Start with the same directory picks it up) and closes it. Without
// a spill directory what is left is lost, and Close says how much with ErrRecordsLeft. With a
// ctx already done, Close spills at once. Besides ctx, Close may wait for one transport call
// in progress (bounded by Delivery.ConnectTimeout or DeliverTimeout), plus one second; a
// manager still inside a call then is killed, and Close waits for the call to return before it
// touches what the manager uses: as long again with Options.Node, for as long as it takes with a
// node of the agent's own (stopping that node waits for it anyway). With Options.Node, in acked
// mode with a spill directory, a manager that outlives that too leaves the records of its inbox
// counted in ErrRecordsLeft, and those in its hand to be refused by the closed spill log
// (counted in Stats.Dropped).
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.closed = true
	a.mu.Unlock()

	drained := a.waitDrained(ctx)
	stopWait := max(a.opts.Delivery.ConnectTimeout, a.opts.Delivery.DeliverTimeout) + time.Second
	stopCtx, cancel := context.WithTimeout(context.Background(), stopWait)
	err := a.handle.Stop(stopCtx)
	cancel()
	managerGone := true
	if err != nil {
		a.log.Warn().Err(err).Msg("connection manager did not stop in time; killing it")
		_ = a.node.Kill(a.pid)
		// A kill ends a manager inside a handler only when the handler returns; until then it
		// still uses the tiers, and SeqSpill is not safe for concurrent use. Stopping a node of
		// our own waits for it anyway: then wait for it here, and spill everything after.
		wait := stopWait
		if a.ownNode != nil {
			wait = 0
		}
		if managerGone = a.waitGone(wait, stopWait); !managerGone {
			a.log.Error().Dur("waited", stopWait).Msg("connection manager still inside a handler after the kill")
		}
	}
	left := a.pending()
	spilled, lost := a.spillRing(managerGone)
	a.release()
	a.log.Info().Bool("drained", drained).Int("left", left).Int("spilled", spilled).Int("lost", lost).
		Uint64("accepted", a.accepted.Load()).Msg("agent closed")
	if lost > 0 {
		return fmt.Errorf("%w: %d", ErrRecordsLeft, lost)
	}
	return nil
}

// waitDrained polls until the manager is idle with nothing held, or ctx is done.
func (a *Agent) waitDrained(ctx context.Context) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		// Idle first: a sleeping process holds no record in hand, and nothing new arrives.
		if state, err := a.node.ProcessState(a.pid); err != nil || state == gen.ProcessStateSleep {
			if a.pending() == 0 {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// waitGone polls until the manager's process has ended, for at most d (d <= 0: for as long as
// it takes, with a warning every warnEvery).
func (a *Agent) waitGone(d, warnEvery time.Duration) bool {
	start := time.Now()
	warned := start
	for {
		if state, err := a.node.ProcessState(a.pid); err != nil || state == gen.ProcessStateTerminated {
			return true
		}
		now := time.Now()
		if d > 0 && now.Sub(start) >= d {
			return false
		}
		if now.Sub(warned) >= warnEvery {
			warned = now
			a.log.Warn().Dur("waited", now.Sub(start)).Msg("waiting for the killed connection manager to leave its handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// spillRing moves what is left in the RAM tiers to disk, after the manager stopped. With
// managerGone false (a manager that outlived its kill) the records left in the inbox of acked
// mode are counted as lost rather than appended through SeqSpill under the manager; the other
// tiers are safe for concurrent use.
func (a *Agent) spillRing(managerGone bool) (spilled, lost int) {
	if a.ring != nil {
		for _, rec := range a.ring.Drain(nil) {
			if a.spill == nil {
				lost++
				continue
			}
			if _, err := a.spill.Append(rec); err != nil {
				lost++
				a.log.Error().Err(err).Msg("spill at close")
				continue
			}
			spilled++
		}
	}
	if a.memLog != nil {
		lost += a.memLog.Len()
	}
	// Records accepted but never taken by the manager (it was killed, or died): they follow
	// everything above, so they go last, in order.
	if a.inbox != nil {
		for _, rec := range a.inbox.Drain() {
			var err error
			switch {
			case a.seqLog != nil && !managerGone:
				lost++
				continue
			case a.seqLog != nil:
				_, err = a.seqLog.Append(rec)
			case a.spill != nil && a.memLog == nil:
				_, err = a.spill.Append(rec)
			default: // no spill directory: nothing can keep it
				lost++
				continue
			}
			if err != nil {
				lost++
				a.log.Error().Err(err).Msg("spill at close")
				continue
			}
			spilled++
		}
	}
	return spilled, lost
}

// release closes the spill log and stops the agent's own node.
func (a *Agent) release() {
	if a.spill != nil {
		if err := a.spill.Close(); err != nil {
			a.log.Error().Err(err).Msg("close spill directory")
		}
	}
	if a.ownNode != nil {
		a.ownNode.Stop()
	}
}

// teeRegisterer registers with the agent's own registry (read back by State and Stats) and
// with the caller's, if any.
type teeRegisterer struct {
	own    *prometheus.Registry
	caller prometheus.Registerer
}

func (t teeRegisterer) Register(c prometheus.Collector) error {
	if err := t.own.Register(c); err != nil {
		return err
	}
	if t.caller != nil {
		if err := t.caller.Register(c); err != nil {
			t.own.Unregister(c)
			return err
		}
	}
	return nil
}

func (t teeRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t teeRegisterer) Unregister(c prometheus.Collector) bool {
	ok := t.own.Unregister(c)
	if t.caller != nil {
		ok = t.caller.Unregister(c) || ok
	}
	return ok
}

// ergoLogger sends Ergo's own log lines to zerolog.
type ergoLogger struct{ log zerolog.Logger }

func (l ergoLogger) Log(m gen.MessageLog) {
	var ev *zerolog.Event
	switch {
	case m.Level >= gen.LogLevelError:
		ev = l.log.Error()
	case m.Level == gen.LogLevelWarning:
		ev = l.log.Warn()
	case m.Level == gen.LogLevelInfo:
		ev = l.log.Info()
	default:
		ev = l.log.Debug()
	}
	ev.Str("component", "ergo").Msgf(m.Format, m.Args...)
}

func (ergoLogger) Terminate() {}
