package node

// Ergo's network seams: Handshake is a gen.NetworkHandshake, Proto a gen.NetworkProto. Ergo
// calls Handshake.Start (dialling) or Handshake.Accept (listening) on a fresh socket, passes the
// gen.HandshakeResult to Proto.NewConnection, calls Conn.Join with the socket, then runs
// Proto.Serve in a goroutine of its own until the connection ends.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"ergo.services/ergo/gen"
)

// Version of our handshake and proto as Ergo sees them: routes name it to pick our stack.
var protocolVersion = gen.Version{Name: "erlang-dist", Release: "6", License: gen.LicenseMIT}

// ProtocolVersion returns the gen.Version that names this package's handshake and proto in
// Ergo routes (gen.Route.HandshakeVersion and ProtoVersion).
func ProtocolVersion() gen.Version { return protocolVersion }

// ProtoOptions configure a Proto.
type ProtoOptions struct {
	// TickTime is the peer's net_ticktime: a tick goes out after TickTime/4 without traffic and
	// a peer silent for TickTime is dropped with a *SilentPeerError. 0 means 60 s, BEAM's default.
	TickTime time.Duration
	// MaxFrame is the largest frame accepted from a peer; 0 means 64 MiB.
	MaxFrame int
	// HighWater is how many encoded bytes may wait for the socket before senders block;
	// 0 means 1 MiB.
	HighWater int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxPendingCalls bounds the gen_server calls awaiting a reply per connection; 0 means 65536.
	MaxPendingCalls int
}

// Proto is Erlang distribution's connection layer as a gen.NetworkProto. It also keeps the
// live connections by peer name for the fast path (Conn, SendRaw).
type Proto struct {
	opts  connOptions
	conns sync.Map // gen.Atom -> *Conn
	count atomic.Int64
}

var _ gen.NetworkProto = (*Proto)(nil)

// NewProto returns a Proto; see ProtoOptions for defaults.
func NewProto(opts ProtoOptions) *Proto {
	co := connOptions{
		tickTime:  opts.TickTime,
		maxFrame:  opts.MaxFrame,
		highWater: opts.HighWater,
		now:       opts.Now,
		maxCalls:  opts.MaxPendingCalls,
		decode:    nil,
		encode:    encodeMessage,
	}
	if co.tickTime <= 0 {
		co.tickTime = 60 * time.Second
	}
	if co.maxFrame <= 0 {
		co.maxFrame = 64 << 20
	}
	if co.highWater <= 0 {
		co.highWater = 1 << 20
	}
	if co.now == nil {
		co.now = time.Now
	}
	if co.maxCalls <= 0 {
		co.maxCalls = 1 << 16
	}
	co.decode = newMessageDecoder(co.maxFrame)
	return &Proto{opts: co}
}

// Version names the protocol: "erlang-dist:6".
func (p *Proto) Version() gen.Version { return protocolVersion }

// NewConnection builds the Conn for a completed handshake.
func (p *Proto) NewConnection(core gen.Core, result gen.HandshakeResult, log gen.Log) (gen.Connection, error) {
	est, ok := result.Custom.(*established)
	if !ok {
		return nil, fmt.Errorf("node: handshake result from another handshake (%s)", result.HandshakeVersion)
	}
	c := newConn(core, log, est.conn, est.peer, p.opts)
	c.rawNet = est.raw
	for _, w := range est.warnings {
		log.Warning("node: connection with %s: %v", est.peer.name, w)
	}
	return c, nil
}

// Serve runs the connection until it ends.
func (p *Proto) Serve(conn gen.Connection, _ gen.NetworkDial) error {
	c, ok := conn.(*Conn)
	if !ok {
		return fmt.Errorf("node: Serve given a %T", conn)
	}
	p.conns.Store(c.Peer(), c)
	p.count.Add(1)
	defer func() {
		p.conns.CompareAndDelete(c.Peer(), c)
		p.count.Add(-1)
	}()
	return c.serve()
}

// connectedTo reports whether a live connection's socket goes to the address remote.
func (p *Proto) connectedTo(remote string) bool {
	found := false
	p.conns.Range(func(_, v any) bool {
		c := v.(*Conn) // a TLS connection reports its socket's address
		if c.Err() == nil && c.net.RemoteAddr().String() == remote {
			found = true
		}
		return !found
	})
	return found
}

// Conn returns the live connection with peer, if any.
func (p *Proto) Conn(peer gen.Atom) (*Conn, bool) {
	v, ok := p.conns.Load(peer)
	if !ok {
		return nil, false
	}
	return v.(*Conn), true
}

// remoteNode is the peer as a gen.RemoteNode.
type remoteNode struct{ conn *Conn }

var _ gen.RemoteNode = (*remoteNode)(nil)

func (r *remoteNode) Name() gen.Atom { return r.conn.Peer() }
func (r *remoteNode) Uptime() int64  { return 0 }
func (r *remoteNode) ConnectionUptime() int64 {
	return int64(r.conn.opts.now().Sub(r.conn.started).Seconds())
}
func (r *remoteNode) Version() gen.Version { return gen.Version{Name: "erlang"} }
func (r *remoteNode) Info() gen.RemoteNodeInfo {
	s := r.conn.Stats()
	return gen.RemoteNodeInfo{
		Node:             r.conn.Peer(),
		ConnectionUptime: r.ConnectionUptime(),
		Version:          r.Version(),
		HandshakeVersion: protocolVersion,
		ProtoVersion:     protocolVersion,
		PoolSize:         1,
		MaxMessageSize:   r.conn.opts.maxFrame,
		MessagesIn:       s.MessagesIn,
		MessagesOut:      s.MessagesOut,
		BytesIn:          s.BytesIn,
		BytesOut:         s.BytesOut,
	}
}
func (r *remoteNode) Spawn(gen.Atom, gen.ProcessOptions, ...any) (gen.PID, error) {
	return gen.PID{}, ErrNoErlangEquivalent
}
func (r *remoteNode) SpawnRegister(gen.Atom, gen.Atom, gen.ProcessOptions, ...any) (gen.PID, error) {
	return gen.PID{}, ErrNoErlangEquivalent
}
func (r *remoteNode) ApplicationStart(gen.Atom, gen.ApplicationOptions) error {
	return ErrNoErlangEquivalent
}
func (r *remoteNode) ApplicationStartTemporary(gen.Atom, gen.ApplicationOptions) error {
	return ErrNoErlangEquivalent
}
func (r *remoteNode) ApplicationStartTransient(gen.Atom, gen.ApplicationOptions) error {
	return ErrNoErlangEquivalent
}
func (r *remoteNode) ApplicationStartPermanent(gen.Atom, gen.ApplicationOptions) error {
	return ErrNoErlangEquivalent
}
func (r *remoteNode) Creation() int64 { return int64(r.conn.peer.creation) }
func (r *remoteNode) Disconnect()     { r.conn.Terminate(gen.TerminateReasonNormal) }
