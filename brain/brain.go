package brain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/node"
)

// Mode is how a record travels to the Brain (docs/wire.md, "How a record travels").
type Mode uint8

const (
	// ModePayload sends term_to_binary(Record) as a binary message (the default, as the Gleam
	// original).
	ModePayload Mode = iota
	// ModeTerm sends the record term itself.
	ModeTerm
	// ModeSubject sends {Name, Body}, Body as in ModePayload.
	ModeSubject
	// ModeAcked sends {pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads} and keeps every
	// record until the Brain's cumulative {pharos_ack, SourceId, NextSeq} covers it.
	ModeAcked
)

// String names the mode as configuration files do.
func (m Mode) String() string {
	switch m {
	case ModePayload:
		return "payload"
	case ModeTerm:
		return "term"
	case ModeSubject:
		return "subject"
	case ModeAcked:
		return "acked"
	default:
		return fmt.Sprintf("mode(%d)", uint8(m))
	}
}

// ErrInvalid is wrapped by every refusal of NewBrain's arguments.
var ErrInvalid = errors.New("brain: invalid argument")

// Connector makes (or returns) the distribution connection to a peer node with typed errors.
// *node.Node implements it; NewStackConnector adapts a node the caller started from
// node.NewNodeOptions.
type Connector interface {
	Connect(ctx context.Context, peer gen.Atom) (*node.Conn, error)
}

// stackConnector is Node.Connect for a gen.Node started by the caller with node.NewNodeOptions
// and Stack.Install.
type stackConnector struct {
	node  gen.Node
	stack *node.Stack
}

// NewStackConnector returns a Connector for a node built with node.NewNodeOptions, ergo.StartNode
// and stack.Install (a node started by node.Start is a Connector already).
func NewStackConnector(n gen.Node, stack *node.Stack) Connector {
	return stackConnector{node: n, stack: stack}
}

func (s stackConnector) Connect(ctx context.Context, peer gen.Atom) (*node.Conn, error) {
	return s.stack.Connect(ctx, s.node, peer)
}

func (s stackConnector) Reachable(ctx context.Context, peer gen.Atom) error {
	return s.stack.Reachable(ctx, peer)
}

// reachability is optionally implemented by a Connector (*node.Node and NewStackConnector's do):
// it tells cheaply whether a peer looks reachable, and makes the transports fsm.Probers.
type reachability interface {
	Reachable(ctx context.Context, peer gen.Atom) error
}

// Target is where records go: the process registered as Name on the node Node.
type Target struct {
	Node string // "brain@host"
	Name string // "pharos_brain"
}

// Error reports a failed connection to the Brain, naming the step (connect, probe,
// monitor) and wrapping the typed error of package node (errors.Is(err,
// node.ErrNoSuchProcess), node.ErrWrongCookie, ...).
type Error struct {
	Target Target
	Step   string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("brain: %s on %s: %s: %v", e.Target.Name, e.Target.Node, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrNotConnected: Deliver was called without a connection (before Connect, or after it was
// lost).
var ErrNotConnected = errors.New("brain: not connected to the Brain")

// Brain builds the Brain transports of one target in one mode. The atoms and the fixed parts of
// the messages are resolved here, once, never per record. It is immutable and safe to share.
type Brain struct {
	target Target
	mode   Mode
	dial   Connector
	log    zerolog.Logger
	// subjectHead is the fixed front of {Name, Body} (ModeSubject).
	subjectHead []byte
	queue       QueueLimit
}

// NewBrain checks the target and prepares its messages. dial is usually the *node.Node.
func NewBrain(dial Connector, target Target, mode Mode, log zerolog.Logger) (*Brain, error) {
	return NewBrainWithQueueLimit(dial, target, mode, QueueLimit{}, log)
}

// NewBrainWithQueueLimit is NewBrain with backpressure on the Brain's message queue.
func NewBrainWithQueueLimit(dial Connector, target Target, mode Mode, queue QueueLimit, log zerolog.Logger) (*Brain, error) {
	if queue.Max < 0 || queue.Every < 0 {
		return nil, fmt.Errorf("%w: QueueLimit %+v", ErrInvalid, queue)
	}
	if queue.Max > 0 && queue.Every == 0 {
		queue.Every = 20 * time.Millisecond
	}
	if dial == nil {
		return nil, fmt.Errorf("%w: no Connector", ErrInvalid)
	}
	if _, _, err := node.SplitNodeName(target.Node); err != nil {
		return nil, fmt.Errorf("%w: Brain node %q: %w", ErrInvalid, target.Node, err)
	}
	if target.Name == "" {
		return nil, fmt.Errorf("%w: empty Brain name", ErrInvalid)
	}
	if mode > ModeAcked {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, mode)
	}
	head, err := etf.SubjectHead(target.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: Brain name %q: %w", ErrInvalid, target.Name, err)
	}
	return &Brain{target: target, mode: mode, dial: dial, log: log, subjectHead: head, queue: queue}, nil
}

// Target returns the Brain's node and name.
func (b *Brain) Target() Target { return b.target }

// Mode returns the delivery mode.
func (b *Brain) Mode() Mode { return b.mode }

// NewTransport is fsm.ActorOptions.NewTransport for the unacknowledged modes: a transport bound
// to the manager's process p, which monitors the Brain.
func (b *Brain) NewTransport(p gen.Process) (fsm.Transport, error) {
	if b.mode == ModeAcked {
		return nil, fmt.Errorf("%w: NewTransport in the acknowledged mode", ErrInvalid)
	}
	return b.transport(p), nil
}

// NewAckTransport is fsm.ActorOptions.NewAckTransport: the acknowledged mode's transport, whose
// batches name p as ReplyTo.
func (b *Brain) NewAckTransport(p gen.Process) (fsm.AckTransport, error) {
	if b.mode != ModeAcked {
		return nil, fmt.Errorf("%w: NewAckTransport in mode %v", ErrInvalid, b.mode)
	}
	return b.transport(p), nil
}

// NewAckTransportReplyTo is NewAckTransport with replyTo as the batches' ReplyTo instead of p's
// own pid: a process that passes the acknowledgements on to p (package cluster's proxy, which
// drops those of a Brain the manager has left). Everything else is p's, as with NewAckTransport.
func (b *Brain) NewAckTransportReplyTo(p gen.Process, replyTo gen.PID) (fsm.AckTransport, error) {
	if b.mode != ModeAcked {
		return nil, fmt.Errorf("%w: NewAckTransportReplyTo in mode %v", ErrInvalid, b.mode)
	}
	return &brainTransport{brain: b, proc: p, replyTo: replyTo}, nil
}

// brainTransport is one manager process's view of the Brain. Only the manager's goroutine calls
// it, one call at a time.
type brainTransport struct {
	brain     *Brain
	proc      gen.Process
	replyTo   gen.PID // the batches' ReplyTo, when not proc's own pid
	conn      *node.Conn
	monitored bool
	dialed    *node.Conn // the last connection Connect made, whatever failed after it
	scratch   []byte
	// The queue check (QueueLimit): the Brain's pid on this connection, when its queue was last
	// measured, and the bound on it since (measured + sent since).
	brainPID  any
	checkedAt time.Time
	queued    int
	// Delivery confirmations: the manager's round trip of each confirmation node sent, and the
	// connection the last record or round trip went out on.
	rounds map[uint64]uint64
	sentOn *node.Conn
}

var (
	_ fsm.BatchTransport = (*brainTransport)(nil)
	_ fsm.AckTransport   = (*brainTransport)(nil)
	_ fsm.Confirmer      = (*brainTransport)(nil)
	_ fsm.Prober         = probingTransport{}
)

// probingTransport is a brainTransport whose Connector can tell whether the Brain's node looks
// reachable: an fsm.Prober.
type probingTransport struct {
	*brainTransport
	r reachability
}

// Probe implements fsm.Prober. With the connection to the Brain's node still up (the last
// attempt found the node but not the Brain's process), the Brain's name is registered again
// (node.Conn.Probe: one round trip); otherwise the Brain's node is registered with its EPMD, or
// accepts connections at its static address.
func (t probingTransport) Probe(ctx context.Context) error {
	target := t.brain.target
	if c := t.dialed; c != nil {
		select {
		case <-c.Done():
		default:
			if _, err := c.Probe(ctx, gen.Atom(target.Name)); err != nil {
				return &Error{Target: target, Step: "probe", Err: err}
			}
			return nil
		}
	}
	if err := t.r.Reachable(ctx, gen.Atom(target.Node)); err != nil {
		return &Error{Target: target, Step: "probe", Err: err}
	}
	return nil
}

// transport is a new transport for process p, an fsm.Prober when the Connector can probe.
func (b *Brain) transport(p gen.Process) interface {
	fsm.BatchTransport
	fsm.AckTransport
} {
	t := &brainTransport{brain: b, proc: p}
	if r, ok := b.dial.(reachability); ok {
		return probingTransport{brainTransport: t, r: r}
	}
	return t
}

// Connect makes sure of the hidden-node connection, probes the Brain's registered name and
// monitors it from the manager's process, so that its DOWN (the process ends, or the node goes
// away) reaches the manager as a lost connection. Ergo keeps a fired monitor registered, so the
// old one is always removed first: without that every reconnect after a DOWN would fail.
func (t *brainTransport) Connect(ctx context.Context) error {
	target := t.brain.target
	t.conn = nil
	conn, err := t.brain.dial.Connect(ctx, gen.Atom(target.Node))
	if err != nil {
		return &Error{Target: target, Step: "connect", Err: err}
	}
	t.dialed = conn
	if _, err := conn.Probe(ctx, gen.Atom(target.Name)); err != nil {
		return &Error{Target: target, Step: "probe", Err: err}
	}
	pid := gen.ProcessID{Name: gen.Atom(target.Name), Node: gen.Atom(target.Node)}
	if t.monitored {
		if err := t.proc.DemonitorProcessID(pid); err != nil && !errors.Is(err, gen.ErrTargetUnknown) {
			t.brain.log.Debug().Err(err).Msg("demonitor the Brain")
		}
		t.monitored = false
	}
	if err := t.proc.MonitorProcessID(pid); err != nil {
		return &Error{Target: target, Step: "monitor", Err: err}
	}
	t.monitored = true
	t.conn = conn
	t.brainPID = nil
	t.checkedAt, t.queued = time.Time{}, 0
	clear(t.rounds)
	if t.brain.mode != ModeAcked {
		// The delivery confirmations' round trips go to the Brain's pid: resolved here, where
		// waiting is the connection attempt's, not in the middle of streaming.
		if _, err := t.whereis(ctx); err != nil {
			t.conn = nil
			return &Error{Target: target, Step: "whereis", Err: err}
		}
	}
	return nil
}

// whereis returns the Brain's pid on the current connection (an rpc the first time).
func (t *brainTransport) whereis(ctx context.Context) (any, error) {
	if t.brainPID != nil {
		return t.brainPID, nil
	}
	pid, err := t.rpc(ctx, "erlang", "whereis", etf.Atom(t.brain.target.Name))
	if err != nil {
		return nil, fmt.Errorf("brain: whereis %s: %w", t.brain.target.Name, err)
	}
	if isAtom(pid, "undefined") {
		return nil, &Error{Target: t.brain.target, Step: "whereis", Err: node.ErrNoSuchProcess}
	}
	t.brainPID = pid
	return pid, nil
}

// Confirm implements fsm.Confirmer: an UNLINK_ID from the manager to the Brain's process, which
// the Brain's runtime answers with UNLINK_ID_ACK once every message the manager sent it before
// is in its message queue (Erlang orders the signals between two processes; docs/node.md). The
// answer reaches the manager as a node.MessageConfirmed, which Confirmation reads.
func (t *brainTransport) Confirm(ctx context.Context, id uint64) error {
	c, err := t.live()
	if err != nil {
		return err
	}
	pid, err := t.whereis(ctx)
	if err != nil {
		return err
	}
	var to gen.PID
	switch p := pid.(type) {
	case gen.PID:
		to = p
	case etf.Pid:
		to = p.Gen()
	default:
		return fmt.Errorf("brain: whereis %s: not a pid: %v", t.brain.target.Name, pid)
	}
	nid, err := c.Confirm(t.proc.PID(), to)
	if err != nil {
		return fmt.Errorf("brain: confirm delivery to %s: %w", to, err)
	}
	t.sentOn = c
	if t.rounds == nil {
		t.rounds = map[uint64]uint64{}
	}
	t.rounds[nid] = id
	return nil
}

// LossReason implements fsm.LossReason: why the connection ended, if it did.
func (t *brainTransport) LossReason() error {
	for _, c := range []*node.Conn{t.conn, t.sentOn} {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
			return c.Err()
		default:
		}
	}
	return nil
}

// Lost implements fsm.Confirmer: the connection the last record or round trip went out on has
// ended (whatever connection the transport has now).
func (t *brainTransport) Lost() bool {
	c := t.sentOn
	if c == nil {
		return false
	}
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// Confirmation implements fsm.Confirmer: a node.MessageConfirmed for one of this transport's
// round trips. One that says the connection ended first completes nothing (the lost connection
// reaches the manager on its own).
func (t *brainTransport) Confirmation(message any) (uint64, bool) {
	m, ok := message.(node.MessageConfirmed)
	if !ok {
		return 0, false
	}
	id, ok := t.rounds[m.ID]
	delete(t.rounds, m.ID)
	return id, ok && m.Err == nil
}

func isAtom(v any, name string) bool {
	switch a := v.(type) {
	case gen.Atom:
		return string(a) == name
	case etf.Atom:
		return string(a) == name
	}
	return false
}

// live returns the connection if it is still up.
func (t *brainTransport) live() (*node.Conn, error) {
	c := t.conn
	if c == nil {
		return nil, ErrNotConnected
	}
	select {
	case <-c.Done():
		t.conn = nil
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotConnected, err)
		}
		return nil, ErrNotConnected
	default:
		return c, nil
	}
}

// Deliver sends one pre-encoded record (term_to_binary bytes, 131 first) in the configured
// mode, on the fast path: the bytes are never decoded.
func (t *brainTransport) Deliver(ctx context.Context, record []byte) error {
	c, err := t.live()
	if err != nil {
		return err
	}
	if _, err := t.room(ctx, 1); err != nil {
		return err
	}
	t.sentOn = c
	if err := t.send(ctx, c, record); err != nil {
		return err
	}
	t.sent(1)
	return nil
}

func (t *brainTransport) send(ctx context.Context, c *node.Conn, record []byte) error {
	if len(record) < 2 || record[0] != 131 {
		// Not a term_to_binary output: refuse it here rather than let the Brain drop the
		// connection. The manager keeps it, so this is logged once per record.
		return fmt.Errorf("brain: record is not term_to_binary output (%d bytes)", len(record))
	}
	from, to := t.proc.PID(), gen.Atom(t.brain.target.Name)
	var err error
	switch t.brain.mode {
	case ModeTerm:
		err = c.SendRaw(ctx, from, to, node.RawTerm(record))
	case ModeSubject:
		head := t.brain.subjectHead
		err = c.SendAppend(ctx, from, to, func(dst []byte) ([]byte, error) { return etf.AppendSubject(dst, head, record), nil })
	default:
		err = c.SendBinary(ctx, from, to, record)
	}
	if err != nil {
		return fmt.Errorf("brain: send to %s on %s: %w", to, t.brain.target.Node, err)
	}
	return nil
}

// DeliverBatch sends records in order, appended to the connection's buffer together
// (node.Conn.SendAppendMany); it stops at the first failure and reports how many went out.
func (t *brainTransport) DeliverBatch(ctx context.Context, records [][]byte) (int, error) {
	c, err := t.live()
	if err != nil {
		return 0, err
	}
	room, err := t.room(ctx, len(records))
	if err != nil {
		return 0, err
	}
	t.sentOn = c
	for i, rec := range records[:room] {
		if len(rec) < 2 || rec[0] != 131 {
			// Send those before it, then refuse it as send does.
			n, err := t.sendMany(ctx, c, records[:i])
			if err != nil {
				return n, err
			}
			return i, fmt.Errorf("brain: record is not term_to_binary output (%d bytes)", len(rec))
		}
	}
	n, err := t.sendMany(ctx, c, records[:room])
	if err == nil && room < len(records) {
		err = fmt.Errorf("%w: %d of %d records sent (limit %d)", ErrBusy, n, len(records), t.brain.queue.Max)
	}
	return n, err
}

// sendMany sends records (each checked by the caller) in the configured mode.
func (t *brainTransport) sendMany(ctx context.Context, c *node.Conn, records [][]byte) (int, error) {
	if len(records) == 0 {
		return 0, nil
	}
	from, to := t.proc.PID(), gen.Atom(t.brain.target.Name)
	var n int
	var err error
	defer func() { t.sent(n) }()
	switch t.brain.mode {
	case ModeTerm:
		n, err = c.SendAppendMany(ctx, from, to, len(records), func(dst []byte, i int) ([]byte, error) {
			return append(dst, records[i]...), nil
		})
	case ModeSubject:
		head := t.brain.subjectHead
		n, err = c.SendAppendMany(ctx, from, to, len(records), func(dst []byte, i int) ([]byte, error) {
			return etf.AppendSubject(dst, head, records[i]), nil
		})
	default:
		n, err = c.SendBinaries(ctx, from, to, records)
	}
	if err != nil {
		return n, fmt.Errorf("brain: send to %s on %s: %w", to, t.brain.target.Node, err)
	}
	return n, nil
}

// SendBatch sends {pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads} with the manager's pid
// as ReplyTo, written straight into the connection's buffer: each payload is framed as a binary,
// never decoded. An empty payloads is the resynchronisation probe ([]).
func (t *brainTransport) SendBatch(ctx context.Context, sourceID string, firstSeq uint64, payloads [][]byte) error {
	c, err := t.live()
	if err != nil {
		return err
	}
	self, replyTo := t.proc.PID(), t.proc.PID()
	if t.replyTo != (gen.PID{}) {
		replyTo = t.replyTo
	}
	// The fixed part is encoded here, outside the connection's send lock.
	head, err := etf.AppendBatchHead(t.scratch[:0], replyTo, sourceID, firstSeq)
	if err != nil {
		return fmt.Errorf("brain: encode batch: %w", err)
	}
	t.scratch = head
	err = c.SendAppend(ctx, self, gen.Atom(t.brain.target.Name), func(dst []byte) ([]byte, error) {
		return etf.AppendBatch(dst, head, payloads), nil
	})
	if err != nil {
		return fmt.Errorf("brain: send batch to %s on %s: %w", t.brain.target.Name, t.brain.target.Node, err)
	}
	return nil
}
