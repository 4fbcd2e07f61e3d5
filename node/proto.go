package node

// Ergo's network seams: Handshake is a gen.NetworkHandshake, Proto a gen.NetworkProto. Ergo
// calls Handshake.Start (dialling) or Handshake.Accept (listening) on a fresh socket, passes the
// gen.HandshakeResult to Proto.NewConnection, calls Conn.Join with the socket, then runs
// Proto.Serve in a goroutine of its own until the connection ends.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
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

// HandshakeOptions configure a Handshake.
type HandshakeOptions struct {
	// Flags to announce; 0 means DefaultFlags. FlagPublished and unimplemented flags are refused.
	Flags Flags
	// Timeout bounds the whole handshake (TLS included); 0 means 7 s, as net_kernel's setup timer.
	Timeout time.Duration
	// Rand is the source of challenges; nil means crypto/rand.
	Rand io.Reader
	// ClientTLS, when set, runs the handshake and the connection inside TLS when dialling
	// (interoperates with -proto_dist inet_tls). ServerName defaults to the peer's address.
	ClientTLS *tls.Config
	// ServerTLS, when set, requires TLS on accepted connections.
	ServerTLS *tls.Config
}

// Handshake is the Erlang distribution handshake as a gen.NetworkHandshake.
type Handshake struct {
	opts HandshakeOptions
	// connectedTo reports whether a live connection to the remote address exists (set by
	// NewNodeOptions from the Proto); nil means never.
	connectedTo func(remote string) bool
}

var _ gen.NetworkHandshake = (*Handshake)(nil)

// NewHandshake returns a Handshake; see HandshakeOptions for defaults.
func NewHandshake(opts HandshakeOptions) (*Handshake, error) {
	if opts.Flags == 0 {
		opts.Flags = DefaultFlags
	}
	if opts.Flags&FlagPublished != 0 {
		return nil, fmt.Errorf("node: FlagPublished is refused: a Pharos node is hidden")
	}
	if bad := opts.Flags & unsupported; bad != 0 {
		return nil, fmt.Errorf("node: flags %s are not implemented", bad)
	}
	if missing := opts.Flags.Missing(Mandatory); missing != 0 {
		return nil, fmt.Errorf("node: flags lack the mandatory %s", missing)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 7 * time.Second
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &Handshake{opts: opts}, nil
}

// established is what a successful handshake hands to Proto.NewConnection.
type established struct {
	conn net.Conn // the socket, or the TLS session over it
	raw  net.Conn // the socket Ergo knows
	peer peerInfo
}

// NetworkFlags returns Ergo's flags (Ergo's own feature set does not apply to Erlang peers).
func (h *Handshake) NetworkFlags() gen.NetworkFlags { return gen.NetworkFlags{Enable: true} }

// Version names the protocol: "erlang-dist:6".
func (h *Handshake) Version() gen.Version { return protocolVersion }

func (h *Handshake) params(node gen.NodeHandshake, opts gen.HandshakeOptions, lenSize int) handshakeParams {
	return handshakeParams{
		name:     string(node.Name()),
		creation: uint32(node.Creation()),
		flags:    h.opts.Flags,
		require:  Mandatory,
		cookie:   opts.Cookie,
		lenSize:  lenSize,
		timeout:  h.opts.Timeout,
		rand:     h.opts.Rand,
	}
}

func (h *Handshake) tlsWrap(conn net.Conn, client bool) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	var tc *tls.Conn
	if client {
		cfg := h.opts.ClientTLS.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			cfg.ServerName = host
		}
		tc = tls.Client(conn, cfg)
	} else {
		tc = tls.Server(conn, h.opts.ServerTLS)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &HandshakeError{Peer: conn.RemoteAddr().String(), Phase: "tls", Err: err}
	}
	return tc, nil
}

func (h *Handshake) result(peer peerInfo, conn, raw net.Conn) gen.HandshakeResult {
	return gen.HandshakeResult{
		HandshakeVersion: protocolVersion,
		ConnectionID:     peer.name + "/" + strconv.FormatUint(uint64(peer.creation), 10),
		Peer:             gen.Atom(peer.name),
		PeerCreation:     int64(peer.creation),
		PeerVersion:      gen.Version{Name: "erlang"},
		PeerFlags:        gen.NetworkFlags{Enable: true},
		Custom:           &established{conn: conn, raw: raw, peer: peer},
	}
}

// Start runs the dialling side of the handshake on conn.
func (h *Handshake) Start(node gen.NodeHandshake, conn net.Conn, opts gen.HandshakeOptions) (gen.HandshakeResult, error) {
	c, lenSize := conn, 2
	if h.opts.ClientTLS != nil {
		tc, err := h.tlsWrap(conn, true)
		if err != nil {
			return gen.HandshakeResult{}, err
		}
		c, lenSize = tc, 4
	}
	p := h.params(node, opts, lenSize)
	if h.connectedTo != nil {
		remote := conn.RemoteAddr().String()
		p.connected = func() bool { return h.connectedTo(remote) }
	}
	peer, err := dialHandshake(c, p)
	if err != nil {
		return gen.HandshakeResult{}, err
	}
	return h.result(peer, c, conn), nil
}

// Accept runs the accepting side of the handshake on conn.
func (h *Handshake) Accept(node gen.NodeHandshake, conn net.Conn, opts gen.HandshakeOptions) (gen.HandshakeResult, error) {
	c, lenSize := conn, 2
	if h.opts.ServerTLS != nil {
		tc, err := h.tlsWrap(conn, false)
		if err != nil {
			return gen.HandshakeResult{}, err
		}
		c, lenSize = tc, 4
	}
	peer, err := acceptHandshake(c, h.params(node, opts, lenSize))
	if err != nil {
		return gen.HandshakeResult{}, err
	}
	return h.result(peer, c, conn), nil
}

// Join: Erlang has one socket per peer; Ergo's extra-socket join is not supported.
func (h *Handshake) Join(gen.NodeHandshake, net.Conn, string, gen.HandshakeOptions) ([]byte, error) {
	return nil, ErrNoErlangEquivalent
}

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
