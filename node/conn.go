package node

// Conn: one established distribution connection, Ergo's gen.Connection.
//
// Goroutines: serve starts a writer (conn_write.go: drains the pending-frames buffer to the
// socket) and a ticker (conn_tick.go: sends ticks, detects a silent peer), then runs the reader
// (conn_read.go: frames in, each control message routed to gen.Core) until the connection ends;
// writer and ticker end before serve returns. Links, monitors and gen_server calls between the
// two nodes live in conn_links.go, conn_monitors.go and conn_calls.go; the gen.Connection
// methods, Ergo's requests, in connection.go.

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"ergo.services/ergo/gen"
)

// ErrNoErlangEquivalent is returned for Ergo features that Erlang distribution cannot carry:
// events, proxies, remote spawning of Ergo behaviours, remote application start, links to
// names or aliases.
var ErrNoErlangEquivalent = fmt.Errorf("node: no Erlang distribution equivalent: %w", gen.ErrUnsupported)

// ErrConnectionClosed is returned by sends on a connection that has ended.
var ErrConnectionClosed = errors.New("node: distribution connection closed")

// ErrSendBufferFull: a send waited for room in the connection's buffer (the peer reads slower
// than we write, or not at all) until its context ended; nothing of it was sent. It wraps the
// context's error.
var ErrSendBufferFull = errors.New("node: distribution connection's send buffer full")

// RawTerm is a message that is already encoded: a complete term_to_binary output, starting with
// the version byte 131. A Conn writes it to the wire as it is, without decoding or re-encoding:
// the fast path for pre-encoded payloads. Send it with ordinary Ergo calls
// (process.Send(to, node.RawTerm(b))) or with Conn.SendRaw.
type RawTerm []byte

// ConnStats are a connection's counters.
type ConnStats struct {
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	TicksIn, TicksOut       uint64
	Ignored                 uint64 // unknown or unreadable control messages, logged and dropped
}

// Conn is an established connection to one Erlang node. It implements gen.Connection; all its
// methods are safe for concurrent use.
type Conn struct {
	core     gen.Core
	log      gen.Log
	opts     connOptions
	self     gen.Atom
	peer     peerInfo
	net      net.Conn
	rawNet   net.Conn // the socket under TLS, as Ergo knows it
	started  time.Time
	remote   *remoteNode
	serving  atomic.Bool
	closeErr error // set once, under mu

	mu       sync.Mutex
	space    *sync.Cond // signalled when pending shrinks or the connection ends
	pending  []byte
	spare    []byte
	closed   bool
	kick     chan struct{}
	done     chan struct{}
	doneOnce sync.Once

	framesIn, framesOut atomic.Uint64
	writing             atomic.Bool // the writer is in a socket write
	stats               struct{ msgIn, msgOut, bytesIn, bytesOut, ticksIn, ticksOut, ignored atomic.Uint64 }

	stateMu     sync.Mutex
	links       map[linkKey]linkRecords
	monitorsOut map[gen.Ref]outMonitor
	monitorsIn  map[gen.Ref]inMonitor
	calls       map[gen.Ref]pendingCall
	waiters     map[gen.Ref]waiter // Probe's calls
	confirms    map[uint64]pendingConfirm
	unlinkID    uint64
}

type connOptions struct {
	tickTime  time.Duration
	highWater int
	maxFrame  int
	decode    func([]byte) (any, error)
	encode    func(dst []byte, v any) ([]byte, error)
	now       func() time.Time
	maxCalls  int
}

func newConn(core gen.Core, log gen.Log, c net.Conn, peer peerInfo, opts connOptions) *Conn {
	conn := &Conn{
		core:        core,
		log:         log,
		opts:        opts,
		self:        core.Name(),
		peer:        peer,
		net:         c,
		started:     opts.now(),
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
		links:       make(map[linkKey]linkRecords),
		monitorsOut: make(map[gen.Ref]outMonitor),
		monitorsIn:  make(map[gen.Ref]inMonitor),
		calls:       make(map[gen.Ref]pendingCall),
		waiters:     make(map[gen.Ref]waiter),
		confirms:    make(map[uint64]pendingConfirm),
	}
	conn.space = sync.NewCond(&conn.mu)
	conn.remote = &remoteNode{conn: conn}
	return conn
}

// Peer returns the peer's node name.
func (c *Conn) Peer() gen.Atom { return gen.Atom(c.peer.name) }

// PeerFlags returns the distribution flags the peer announced.
func (c *Conn) PeerFlags() Flags { return c.peer.flags }

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats {
	return ConnStats{
		MessagesIn: c.stats.msgIn.Load(), MessagesOut: c.stats.msgOut.Load(),
		BytesIn: c.stats.bytesIn.Load(), BytesOut: c.stats.bytesOut.Load(),
		TicksIn: c.stats.ticksIn.Load(), TicksOut: c.stats.ticksOut.Load(),
		Ignored: c.stats.ignored.Load(),
	}
}

// Congested reports whether the send buffer holds its high-water mark (ProtoOptions.HighWater)
// or more: the peer reads slower than we write, and a send would wait for room.
func (c *Conn) Congested() bool { return c.pendingLen() >= c.opts.highWater }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// serve runs the connection until it ends and returns why.
func (c *Conn) serve() error {
	if !c.serving.CompareAndSwap(false, true) {
		return errors.New("node: connection served twice")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.tickLoop() }()

	c.readLoop()
	wg.Wait()
	c.forgetPeerState()
	err := c.Err()
	if droppedByUs(err) {
		// Ergo reports the end to the node's processes as noconnection, without the reason.
		c.log.Warning("node: connection with %s dropped: %v", c.peer.name, err)
	}
	return err
}

// droppedByUs reports whether a connection ended because this side dropped a misbehaving peer:
// a frame over the limit, a peer silent or not reading for the tick time.
func droppedByUs(err error) bool {
	var silent *SilentPeerError
	return errors.Is(err, ErrFrameTooLarge) || errors.As(err, &silent) || errors.Is(err, ErrPeerNotReading)
}

// forgetPeerState undoes, in gen.Core, what the peer registered (its links to and monitors of
// local processes), so that a local process ending later does not make the node dial the peer
// to report it.
func (c *Conn) forgetPeerState() {
	c.stateMu.Lock()
	links := c.links
	monitors := c.monitorsIn
	calls := c.calls
	confirms := c.confirms
	c.confirms = make(map[uint64]pendingConfirm)
	c.links = make(map[linkKey]linkRecords)
	c.monitorsIn = make(map[gen.Ref]inMonitor)
	c.monitorsOut = make(map[gen.Ref]outMonitor)
	c.calls = make(map[gen.Ref]pendingCall)
	c.waiters = make(map[gen.Ref]waiter)
	c.stateMu.Unlock()
	// Callers still waiting for a reply learn now that none will come, not at their timeout
	// (gen.Core answers only links and monitors when a node goes down).
	for ref, call := range calls {
		c.core.RouteSendResponseError(gen.PID{Node: c.Peer()}, call.caller, gen.MessageOptions{Ref: ref}, gen.ErrNoConnection)
	}
	for id, p := range confirms {
		c.answerConfirm(id, p, fmt.Errorf("%w: %w", ErrConnectionClosed, c.Err()))
	}
	for k, records := range links {
		if records&remoteOnLocal != 0 {
			c.core.RouteUnlinkPID(k.remote, k.local)
		}
	}
	for _, mon := range monitors {
		if mon.target.Name != "" {
			c.core.RouteDemonitorProcessID(mon.remote, gen.ProcessID{Name: mon.target.Name, Node: c.self})
		} else {
			c.core.RouteDemonitorPID(mon.remote, mon.target.PID)
		}
	}
}

// shutdown ends the connection once, recording why.
func (c *Conn) shutdown(reason error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if reason == nil {
		reason = ErrConnectionClosed
	}
	c.closeErr = reason
	c.space.Broadcast()
	c.mu.Unlock()
	c.doneOnce.Do(func() { close(c.done) })
	c.closeNet()
}

// tlsCloseWait bounds how long closing a TLS connection waits for its close_notify to be written.
const tlsCloseWait = 250 * time.Millisecond

// closeNet closes the connection. Under TLS, closing sends a close_notify, which crypto/tls lets
// wait up to 5 s for room in a socket that a peer no longer reads: past tlsCloseWait the socket
// underneath is closed, which ends that wait at once.
func (c *Conn) closeNet() {
	if c.rawNet == nil || c.rawNet == c.net {
		c.net.Close()
		return
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		c.net.Close()
	}()
	select {
	case <-closed:
	case <-time.After(tlsCloseWait):
		c.rawNet.Close()
		<-closed
	}
}
