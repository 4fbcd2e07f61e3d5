package node

// Conn: one established distribution connection, Ergo's gen.Connection.
//
// Goroutines: Serve runs the reader (frames in, routed to gen.Core); it starts a writer (drains
// the pending-frames buffer to the socket) and a ticker (sends ticks, detects a silent peer);
// both end before Serve returns. Send methods append a complete frame to the pending buffer
// under a mutex and wake the writer, so frames are never interleaved and the order of the calls
// is the order on the wire. When more than the high-water mark is pending, senders wait: the
// socket, not memory, sets the pace.

import (
	"bufio"
	"context"
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

// ErrPeerSilent: nothing, not even a tick, arrived from the peer for the tick time.
var ErrPeerSilent = errors.New("node: peer silent for the tick time")

// ErrPeerNotReading: the peer took nothing of what we wrote for the tick time (it may still be
// sending, even ticking).
var ErrPeerNotReading = errors.New("node: peer read nothing for the tick time")

// SilentPeerError is the typed error ending a connection whose peer stopped answering.
type SilentPeerError struct {
	Peer    gen.Atom
	Silence time.Duration
}

func (e *SilentPeerError) Error() string {
	return fmt.Sprintf("connection with %s dropped: %v (%s)", e.Peer, ErrPeerSilent, e.Silence)
}

func (e *SilentPeerError) Unwrap() error { return ErrPeerSilent }

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

type linkKey struct{ local, remote gen.PID }

type linkOrigin uint8

const (
	linkedByUs linkOrigin = 1 << iota
	linkedByPeer
)

type outMonitor struct {
	local  gen.PID
	target Proc   // on the peer
	notify waiter // set by Probe: the exit goes here instead of gen.Core
}

type inMonitor struct {
	remote gen.PID
	target Proc // local
}

type pendingCall struct {
	caller gen.PID
	since  time.Time
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
	links       map[linkKey]linkOrigin
	monitorsOut map[gen.Ref]outMonitor
	monitorsIn  map[gen.Ref]inMonitor
	calls       map[gen.Ref]pendingCall
	waiters     map[gen.Ref]waiter // Probe's calls
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
		links:       make(map[linkKey]linkOrigin),
		monitorsOut: make(map[gen.Ref]outMonitor),
		monitorsIn:  make(map[gen.Ref]inMonitor),
		calls:       make(map[gen.Ref]pendingCall),
		waiters:     make(map[gen.Ref]waiter),
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

// ---- writing ----

// enqueue appends one frame built by build to the pending buffer. It waits while more than the
// high-water mark is pending (the peer reads slower than we write), until there is room, the
// connection ends, or ctx is done: then it fails with ErrSendBufferFull wrapping ctx's error,
// and nothing of the frame was sent.
func (c *Conn) enqueue(ctx context.Context, build func(dst []byte) ([]byte, error)) error {
	c.mu.Lock()
	if len(c.pending) >= c.opts.highWater && !c.closed && ctx.Done() != nil {
		// Wake the waiter below when ctx ends; stop runs after the lock is released.
		stop := context.AfterFunc(ctx, func() {
			c.mu.Lock()
			c.space.Broadcast()
			c.mu.Unlock()
		})
		defer stop()
	}
	for len(c.pending) >= c.opts.highWater && !c.closed {
		if err := ctx.Err(); err != nil {
			pending := len(c.pending)
			c.mu.Unlock()
			return fmt.Errorf("%w (%d bytes waiting for %s): %w", ErrSendBufferFull, pending, c.peer.name, err)
		}
		c.space.Wait()
	}
	return c.appendLocked(build)
}

// enqueueNow is enqueue without the wait: for the few small frames the connection sends on its
// own (ticks, and answers from the reading goroutine, which must never block on a peer that is
// itself blocked writing to us).
func (c *Conn) enqueueNow(build func(dst []byte) ([]byte, error)) error {
	c.mu.Lock()
	return c.appendLocked(build)
}

// appendLocked appends the frame build makes and unlocks c.mu.
func (c *Conn) appendLocked(build func(dst []byte) ([]byte, error)) error {
	if c.closed {
		err := c.closeErr
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrConnectionClosed, err)
	}
	start := len(c.pending)
	buf, err := build(c.pending)
	if err != nil {
		c.pending = buf[:start]
		c.mu.Unlock()
		return err
	}
	c.pending = buf
	c.mu.Unlock()
	if start == 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// controlFrame returns the builder of a control message's frame, with an optional message
// value (hasMsg).
func (c *Conn) controlFrame(ctl Control, msg any, hasMsg bool) func(dst []byte) ([]byte, error) {
	return func(dst []byte) ([]byte, error) {
		dst, start := beginFrame(dst)
		dst = ctl.appendTerm(dst)
		if hasMsg {
			var err error
			if dst, err = c.appendMessage(dst, msg); err != nil {
				return dst, err
			}
		}
		return finishFrame(dst, start), nil
	}
}

// sendControl sends a control message with an optional message value (nil: none), waiting for
// room in the buffer until ctx is done (enqueue).
func (c *Conn) sendControl(ctx context.Context, ctl Control, msg any, hasMsg bool) error {
	err := c.enqueue(ctx, c.controlFrame(ctl, msg, hasMsg))
	if err == nil && hasMsg {
		c.stats.msgOut.Add(1)
	}
	return err
}

// sendControlNow is sendControl without waiting for room, for what the connection owes the peer
// (an ack, an exit, a monitor's end, an is_auth answer) from the reading goroutine, which must
// keep reading, and for clean-ups after ctx ended. A failure (the connection is ending) is
// logged at debug level.
func (c *Conn) sendControlNow(ctl Control, msg any, hasMsg bool) {
	if err := c.enqueueNow(c.controlFrame(ctl, msg, hasMsg)); err != nil {
		c.log.Debug("node: answer %T to %s: %v", ctl, c.peer.name, err)
		return
	}
	if hasMsg {
		c.stats.msgOut.Add(1)
	}
}

// sendToPID is the control message of a send from a local process to a peer pid: SEND_SENDER,
// or SEND if the peer lacks FlagSendSender.
func (c *Conn) sendToPID(from, to gen.PID) Control {
	if c.peer.flags&FlagSendSender != 0 {
		return SendSender{From: from, To: to}
	}
	return Send{To: to}
}

func (c *Conn) appendMessage(dst []byte, msg any) ([]byte, error) {
	if raw, ok := msg.(RawTerm); ok {
		if len(raw) < 2 || raw[0] != etfVersion {
			return dst, fmt.Errorf("node: RawTerm must start with the version byte 131")
		}
		return append(dst, raw...), nil
	}
	dst = append(dst, etfVersion)
	return c.opts.encode(dst, msg)
}

func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			if len(c.pending) == 0 || c.closed {
				c.mu.Unlock()
				break
			}
			out := c.pending
			c.pending = c.spare[:0]
			c.spare = nil
			c.space.Broadcast()
			c.mu.Unlock()

			if err := c.write(out); err != nil {
				c.shutdown(fmt.Errorf("writing to %s: %w", c.peer.name, err))
				return
			}
			if cap(out) > 4*c.opts.highWater {
				out = nil // do not keep a buffer grown by one huge message
			}
			c.mu.Lock()
			c.spare = out[:0]
			c.mu.Unlock()
		}
	}
}

// writeChunk is the most the writer hands the socket at once: the tick loop sees the writer's
// progress at this grain, so a peer that reads at all (a chunk per tick time) is not dropped.
const writeChunk = 64 << 10

// write writes out to the socket a chunk at a time, counting each chunk as written.
func (c *Conn) write(out []byte) error {
	c.writing.Store(true)
	defer c.writing.Store(false)
	for len(out) > 0 {
		n := min(len(out), writeChunk)
		_, err := c.net.Write(out[:n])
		c.framesOut.Add(1)
		c.stats.bytesOut.Add(uint64(n))
		if err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

// sendTick queues a tick unless something is already waiting to be written: the tick loop must
// never block behind a full buffer, or it would stop watching for a silent peer, the one thing
// that ends a connection whose peer stopped reading.
func (c *Conn) sendTick() {
	c.mu.Lock()
	if len(c.pending) > 0 {
		c.mu.Unlock()
		return
	}
	c.stats.ticksOut.Add(1)
	_ = c.appendLocked(func(dst []byte) ([]byte, error) { return append(dst, 0, 0, 0, 0), nil })
}

// tickLoop sends a tick when nothing was written for a quarter of the tick time, and ends the
// connection when nothing was read for the whole tick time, or when the writer had something to
// write and the peer took none of it for the whole tick time (a peer that sends, even ticks,
// but no longer reads: without this, the writer and every sender would wait forever). It checks
// every eighth.
func (c *Conn) tickLoop() {
	step := c.opts.tickTime / 8
	if step <= 0 {
		step = time.Millisecond
	}
	t := time.NewTicker(step)
	defer t.Stop()
	lastIn, lastOut := c.framesIn.Load(), c.framesOut.Load()
	silentIn, silentOut, stuckOut := 0, 0, 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if in := c.framesIn.Load(); in != lastIn {
			lastIn, silentIn = in, 0
		} else {
			silentIn++
		}
		if out := c.framesOut.Load(); out != lastOut {
			lastOut, silentOut, stuckOut = out, 0, 0
		} else {
			silentOut++
			if c.writing.Load() {
				stuckOut++
			} else {
				stuckOut = 0
			}
		}
		if silentIn >= 8 {
			c.shutdown(&SilentPeerError{Peer: c.Peer(), Silence: time.Duration(silentIn) * step})
			return
		}
		if stuckOut >= 8 {
			c.shutdown(fmt.Errorf("connection with %s dropped: %w (%s, %d bytes waiting)",
				c.peer.name, ErrPeerNotReading, time.Duration(stuckOut)*step, c.pendingLen()))
			return
		}
		if silentOut >= 2 {
			silentOut = 0
			c.sendTick()
		}
	}
}

// pendingLen is how many bytes wait for the writer.
func (c *Conn) pendingLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
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

// ---- reading ----

// serve runs the connection until it ends and returns why.
func (c *Conn) serve() error {
	if !c.serving.CompareAndSwap(false, true) {
		return errors.New("node: connection served twice")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.tickLoop() }()

	fr := &frameReader{r: bufio.NewReaderSize(c.net, 64<<10), limit: c.opts.maxFrame}
	for {
		body, err := fr.next()
		if err != nil {
			c.shutdown(fmt.Errorf("reading from %s: %w", c.peer.name, err))
			break
		}
		c.framesIn.Add(1)
		c.stats.bytesIn.Add(uint64(len(body) + 4))
		if len(body) == 0 {
			c.stats.ticksIn.Add(1)
			c.sendTick() // answer every tick
			continue
		}
		c.dispatch(body)
	}
	wg.Wait()
	c.forgetPeerState()
	return c.Err()
}

func (c *Conn) ignore(format string, args ...any) {
	c.stats.ignored.Add(1)
	c.log.Warning("node: ignored from %s: "+format, append([]any{c.peer.name}, args...)...)
}

func (c *Conn) dispatch(body []byte) {
	if body[0] != passThrough {
		c.ignore("frame with header %d (only pass-through 'p' is negotiated)", body[0])
		return
	}
	ctl, msg, err := decodeControl(body[1:])
	if err != nil {
		c.ignore("%v", err)
		return
	}
	if err := c.checkAddresses(ctl); err != nil {
		c.ignore("%T: %v", ctl, err)
		return
	}
	switch m := ctl.(type) {
	case Send:
		c.deliverPID(gen.PID{Node: c.Peer()}, m.To, msg)
	case SendSender:
		c.deliverPID(m.From, m.To, msg)
	case RegSend:
		value, err := c.decodeMessage(msg)
		if err != nil {
			c.ignore("REG_SEND to %s: %v", m.To, err)
			return
		}
		c.stats.msgIn.Add(1)
		if err := c.core.RouteSendProcessID(m.From, gen.ProcessID{Name: m.To, Node: c.self}, gen.MessageOptions{}, value); err != nil {
			if m.To == "net_kernel" && c.answerIsAuth(msg) {
				return
			}
			c.log.Debug("node: REG_SEND from %s to %s: %v", m.From, m.To, err)
		}
	case AliasSend:
		value, err := c.decodeMessage(msg)
		if err != nil {
			c.ignore("ALIAS_SEND: %v", err)
			return
		}
		c.stats.msgIn.Add(1)
		if c.completeCall(m.From, msg) {
			return
		}
		if err := c.core.RouteSendAlias(m.From, gen.Alias(m.Alias), gen.MessageOptions{}, value); err != nil {
			c.log.Debug("node: ALIAS_SEND from %s: %v", m.From, err)
		}
	case Link:
		c.peerLink(m.From, m.To)
	case Unlink:
		c.peerUnlink(m.From, m.To)
	case UnlinkID:
		c.peerUnlink(m.From, m.To)
		c.sendControlNow(UnlinkIDAck{ID: m.ID, From: m.To, To: m.From}, nil, false)
	case UnlinkIDAck:
		// our UNLINK_ID is complete; the link was already forgotten when it was sent.
	case Exit:
		c.peerExit(m.From, m.To, m.Reason)
	case Exit2:
		if err := c.core.RouteSendExit(m.From, m.To, decodeReason(m.Reason)); err != nil {
			c.log.Debug("node: EXIT2 from %s to %s: %v", m.From, m.To, err)
		}
	case MonitorP:
		c.peerMonitor(m)
	case DemonitorP:
		c.peerDemonitor(m)
	case MonitorPExit:
		c.monitorFired(m)
	default:
		c.ignore("control message with op %d", ctl.Op())
	}
}

// checkAddresses refuses a control message whose destination is not on this node, or whose
// sender (for links and monitors) is not on the peer: gen.Core would take such a destination
// for a remote one and dial its node, from the reading goroutine, and a foreign consumer of a
// link or monitor would make it dial that node when the local process ends. Erlang nodes send
// neither.
func (c *Conn) checkAddresses(ctl Control) error {
	local := func(pid gen.PID) error {
		if pid.Node != c.self {
			return fmt.Errorf("destination %s is not on this node", pid)
		}
		return nil
	}
	peer := func(pid gen.PID) error {
		if pid.Node != c.Peer() {
			return fmt.Errorf("sender %s is not on the peer", pid)
		}
		return nil
	}
	switch m := ctl.(type) {
	case Send:
		return local(m.To)
	case SendSender:
		return local(m.To)
	case AliasSend:
		if m.Alias.Node != c.self {
			return fmt.Errorf("alias %s is not on this node", m.Alias)
		}
	case Link:
		return errors.Join(peer(m.From), local(m.To))
	case Unlink:
		return local(m.To)
	case UnlinkID:
		return local(m.To)
	case Exit:
		return local(m.To)
	case Exit2:
		return local(m.To)
	case MonitorP:
		if m.To.Name == "" {
			return errors.Join(peer(m.From), local(m.To.PID))
		}
		return peer(m.From)
	}
	return nil
}

func (c *Conn) decodeMessage(msg []byte) (any, error) {
	if len(msg) == 0 {
		return nil, errors.New("no message after the control message")
	}
	return c.opts.decode(msg)
}

func (c *Conn) deliverPID(from, to gen.PID, msg []byte) {
	c.stats.msgIn.Add(1)
	if c.completeCall(from, msg) {
		return
	}
	value, err := c.decodeMessage(msg)
	if err != nil {
		c.ignore("message to %s: %v", to, err)
		return
	}
	if err := c.core.RouteSendPID(from, to, gen.MessageOptions{}, value); err != nil {
		c.log.Debug("node: message from %s to %s: %v", from, to, err)
	}
}

// ---- links ----

func (c *Conn) peerLink(remote, local gen.PID) {
	c.stateMu.Lock()
	k := linkKey{local: local, remote: remote}
	already := c.links[k]&linkedByPeer != 0
	c.links[k] |= linkedByPeer
	c.stateMu.Unlock()
	if already {
		return
	}
	// Register the peer process as a consumer of the local one, so that gen.Core tells us
	// (SendTerminatePID) when the local process ends.
	if err := c.core.RouteLinkPID(remote, local); err != nil {
		// no such local process: the link breaks at once, as in Erlang (reason noproc).
		c.stateMu.Lock()
		delete(c.links, k)
		c.stateMu.Unlock()
		c.sendControlNow(Exit{From: local, To: remote, Reason: encodeReason(gen.ErrProcessUnknown)}, nil, false)
	}
}

func (c *Conn) peerUnlink(remote, local gen.PID) {
	k := linkKey{local: local, remote: remote}
	c.stateMu.Lock()
	origin, ok := c.links[k]
	delete(c.links, k)
	c.stateMu.Unlock()
	if ok && origin&linkedByPeer != 0 {
		c.core.RouteUnlinkPID(remote, local)
	}
}

func (c *Conn) peerExit(remote, local gen.PID, rawReason []byte) {
	k := linkKey{local: local, remote: remote}
	c.stateMu.Lock()
	origin, ok := c.links[k]
	delete(c.links, k)
	c.stateMu.Unlock()
	reason := decodeReason(rawReason)
	if ok && origin&linkedByPeer != 0 {
		c.core.RouteUnlinkPID(remote, local)
	}
	if ok && origin&linkedByUs != 0 {
		// gen.Core holds local as a consumer of remote: let it deliver the exit.
		c.core.RouteTerminatePID(remote, reason)
		return
	}
	if err := c.core.RouteSendExit(remote, local, reason); err != nil {
		c.log.Debug("node: EXIT from %s to %s: %v", remote, local, err)
	}
}

// ---- monitors ----

func (c *Conn) peerMonitor(m MonitorP) {
	var err error
	if m.To.Name != "" {
		err = c.core.RouteMonitorProcessID(m.From, gen.ProcessID{Name: m.To.Name, Node: c.self})
	} else {
		err = c.core.RouteMonitorPID(m.From, m.To.PID)
	}
	if err != nil {
		if m.To.Name == "net_kernel" {
			// gen:call monitors net_kernel before asking is_auth (net_adm:ping); the emulated
			// net_kernel (answerIsAuth) never ends, so the monitor never fires.
			return
		}
		// no such process: the monitor fires at once with reason noproc.
		c.sendControlNow(MonitorPExit{From: m.To, To: m.From, Ref: m.Ref, Reason: encodeReason(gen.ErrProcessUnknown)}, nil, false)
		return
	}
	c.stateMu.Lock()
	c.monitorsIn[m.Ref] = inMonitor{remote: m.From, target: m.To}
	c.stateMu.Unlock()
}

func (c *Conn) peerDemonitor(m DemonitorP) {
	c.stateMu.Lock()
	mon, ok := c.monitorsIn[m.Ref]
	delete(c.monitorsIn, m.Ref)
	stillWatched := false
	for _, other := range c.monitorsIn {
		if other.remote == mon.remote && other.target == mon.target {
			stillWatched = true
		}
	}
	c.stateMu.Unlock()
	if !ok || stillWatched {
		return
	}
	if mon.target.Name != "" {
		c.core.RouteDemonitorProcessID(mon.remote, gen.ProcessID{Name: mon.target.Name, Node: c.self})
	} else {
		c.core.RouteDemonitorPID(mon.remote, mon.target.PID)
	}
}

func (c *Conn) monitorFired(m MonitorPExit) {
	c.stateMu.Lock()
	mon, ok := c.monitorsOut[m.Ref]
	delete(c.monitorsOut, m.Ref)
	c.stateMu.Unlock()
	if !ok {
		return
	}
	reason := decodeReason(m.Reason)
	if mon.notify != nil {
		mon.notify <- reason
		return
	}
	if mon.target.Name != "" {
		c.core.RouteTerminateProcessID(gen.ProcessID{Name: mon.target.Name, Node: c.Peer()}, reason)
		return
	}
	c.core.RouteTerminatePID(mon.target.PID, reason)
}

// forgetPeerState undoes, in gen.Core, what the peer registered (its links to and monitors of
// local processes), so that a local process ending later does not make the node dial the peer
// to report it.
func (c *Conn) forgetPeerState() {
	c.stateMu.Lock()
	links := c.links
	monitors := c.monitorsIn
	calls := c.calls
	c.links = make(map[linkKey]linkOrigin)
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
	for k, origin := range links {
		if origin&linkedByPeer != 0 {
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

// ---- calls (gen_server:call emulation) ----

// completeCall treats msg as the reply {Ref, Reply} to a pending call; it reports whether it was.
func (c *Conn) completeCall(from gen.PID, msg []byte) bool {
	c.stateMu.Lock()
	n := len(c.calls) + len(c.waiters)
	c.stateMu.Unlock()
	if n == 0 {
		return false
	}
	r := &termReader{b: msg}
	if r.version() != nil {
		return false
	}
	if arity, err := r.tupleHeader(); err != nil || arity != 2 {
		return false
	}
	if tag, err := r.peek(); err != nil || (tag != etfNewerReference && tag != etfNewReference) {
		return false
	}
	ref, err := r.ref()
	if err != nil {
		return false
	}
	c.stateMu.Lock()
	call, ok := c.calls[ref]
	delete(c.calls, ref)
	w, isWaiter := c.waiters[ref]
	delete(c.waiters, ref)
	c.stateMu.Unlock()
	if isWaiter {
		w <- nil
		return true
	}
	if !ok {
		return false
	}
	reply := append([]byte{etfVersion}, msg[r.off:]...)
	value, err := c.opts.decode(reply)
	if err != nil {
		c.core.RouteSendResponseError(from, call.caller, gen.MessageOptions{Ref: ref}, err)
		return true
	}
	c.core.RouteSendResponse(from, call.caller, gen.MessageOptions{Ref: ref}, value)
	return true
}

func (c *Conn) addCall(caller gen.PID, ref gen.Ref) {
	now := c.opts.now()
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if len(c.calls) >= c.opts.maxCalls {
		// callers gave up long ago on the oldest ones (Ergo call timeouts are seconds)
		for k, v := range c.calls {
			if now.Sub(v.since) > time.Minute {
				delete(c.calls, k)
			}
		}
		if len(c.calls) >= c.opts.maxCalls {
			for k := range c.calls {
				delete(c.calls, k)
				break
			}
		}
	}
	c.calls[ref] = pendingCall{caller: caller, since: now}
}

// genCallTerm is {'$gen_call', {From, Ref}, Message}.
type genCallTerm struct {
	from    gen.PID
	ref     gen.Ref
	message any
}

func (c *Conn) appendGenCall(dst []byte, g genCallTerm) ([]byte, error) {
	dst = append(dst, etfVersion)
	dst = appendTupleHeader(dst, 3)
	dst = appendAtom(dst, "$gen_call")
	dst = appendTupleHeader(dst, 2)
	dst = appendPid(dst, g.from)
	dst = appendRef(dst, g.ref)
	if raw, ok := g.message.(RawTerm); ok {
		if len(raw) < 2 || raw[0] != etfVersion {
			return dst, fmt.Errorf("node: RawTerm must start with the version byte 131")
		}
		return append(dst, raw[1:]...), nil
	}
	return c.opts.encode(dst, g.message)
}

func (c *Conn) sendCall(ctl Control, from gen.PID, ref gen.Ref, message any) error {
	c.addCall(from, ref)
	err := c.enqueue(context.Background(), func(dst []byte) ([]byte, error) {
		dst, start := beginFrame(dst)
		dst = ctl.appendTerm(dst)
		dst, err := c.appendGenCall(dst, genCallTerm{from: from, ref: ref, message: message})
		if err != nil {
			return dst, err
		}
		return finishFrame(dst, start), nil
	})
	if err != nil {
		c.stateMu.Lock()
		delete(c.calls, ref)
		c.stateMu.Unlock()
	} else {
		c.stats.msgOut.Add(1)
	}
	return err
}

// answerIsAuth plays net_kernel for net_adm:ping/1: a {'$gen_call', {Pid, Tag}, {is_auth, _}}
// sent to net_kernel on this node is answered {Tag, yes}. It reports whether msg was one.
func (c *Conn) answerIsAuth(msg []byte) bool {
	r := &termReader{b: msg}
	if r.version() != nil {
		return false
	}
	if n, err := r.tupleHeader(); err != nil || n != 3 {
		return false
	}
	if a, err := r.atom(); err != nil || a != "$gen_call" {
		return false
	}
	if n, err := r.tupleHeader(); err != nil || n != 2 {
		return false
	}
	caller, err := r.pid()
	if err != nil {
		return false
	}
	tag, err := r.skip()
	if err != nil {
		return false
	}
	if n, err := r.tupleHeader(); err != nil || n != 2 {
		return false
	}
	if a, err := r.atom(); err != nil || a != "is_auth" {
		return false
	}
	reply := appendTupleHeader([]byte{etfVersion}, 2)
	reply = append(reply, tag...)
	reply = appendAtom(reply, "yes")
	// From the reading goroutine: without waiting for room. A failure means the connection
	// is ending; it was an is_auth all the same.
	c.sendControlNow(c.sendToPID(c.core.PID(), caller), RawTerm(reply), true)
	return true
}
