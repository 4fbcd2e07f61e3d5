package node

// Handshake, Ergo's gen.NetworkHandshake: Ergo calls Start (dialling) or Accept (listening) on a
// fresh socket. Inside TLS when configured (tls_dial.go), it runs the distribution handshake
// (handshake.go) and hands what it learnt to Proto.NewConnection.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"ergo.services/ergo/gen"
)

// HandshakeOptions configure a Handshake.
type HandshakeOptions struct {
	// Flags to announce; 0 means DefaultFlags. FlagPublished and unimplemented flags are refused.
	Flags Flags
	// Timeout bounds the whole handshake (TLS included); 0 means 7 s, as net_kernel's setup timer.
	Timeout time.Duration
	// Rand is the source of challenges; nil means crypto/rand.
	Rand io.Reader
	// ClientTLS, when set, runs the handshake and the connection inside TLS when dialling
	// (interoperates with -proto_dist inet_tls). ServerName defaults to the host of the node
	// dialled (brain@localhost: localhost), else the address dialled.
	ClientTLS *tls.Config
	// TLSAnswerTimeout: a peer that sends nothing back to our TLS hello for this long is
	// probed with a plain name message; one that answers it runs no TLS distribution
	// (ErrPeerNotTLS). 0 means DefaultTLSAnswerTimeout.
	TLSAnswerTimeout time.Duration
	// ServerTLS, when set, requires TLS on accepted connections.
	ServerTLS *tls.Config
}

// Handshake is the Erlang distribution handshake as a gen.NetworkHandshake.
type Handshake struct {
	opts HandshakeOptions
	// connectedTo reports whether a live connection to the remote address exists (set by
	// NewNodeOptions from the Proto); nil means never.
	connectedTo func(remote string) bool
	// dialled names the node a dialled address belongs to (set by NewNodeOptions from the
	// Registrar); nil or "" means unknown.
	dialled func(remote net.Addr) gen.Atom
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
	if opts.TLSAnswerTimeout <= 0 {
		opts.TLSAnswerTimeout = DefaultTLSAnswerTimeout
	}
	return &Handshake{opts: opts}, nil
}

// established is what a successful handshake hands to Proto.NewConnection.
type established struct {
	conn     net.Conn // the socket, or the TLS session over it
	raw      net.Conn // the socket Ergo knows
	peer     peerInfo
	warnings []error // logged by the connection
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

func (h *Handshake) acceptTLS(conn net.Conn) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	tc := tls.Server(conn, h.opts.ServerTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &HandshakeError{Peer: conn.RemoteAddr().String(), Phase: PhaseTLS, Err: err}
	}
	return tc, nil
}

func (h *Handshake) result(peer peerInfo, conn, raw net.Conn, warnings []error) gen.HandshakeResult {
	return gen.HandshakeResult{
		HandshakeVersion: protocolVersion,
		ConnectionID:     peer.name + "/" + strconv.FormatUint(uint64(peer.creation), 10),
		Peer:             gen.Atom(peer.name),
		PeerCreation:     int64(peer.creation),
		PeerVersion:      gen.Version{Name: "erlang"},
		PeerFlags:        gen.NetworkFlags{Enable: true},
		Custom:           &established{conn: conn, raw: raw, peer: peer, warnings: warnings},
	}
}

// Start runs the dialling side of the handshake on conn.
func (h *Handshake) Start(node gen.NodeHandshake, conn net.Conn, opts gen.HandshakeOptions) (gen.HandshakeResult, error) {
	var peerNode gen.Atom
	if h.dialled != nil {
		peerNode = h.dialled(conn.RemoteAddr())
	}
	c, lenSize := conn, 2
	var tlsd *tlsDial
	if h.opts.ClientTLS != nil {
		tc, d, err := h.dialTLS(conn, peerNode, string(node.Name()))
		if err != nil {
			return gen.HandshakeResult{}, err
		}
		c, lenSize, tlsd = tc, 4, d
	}
	p := h.params(node, opts, lenSize)
	p.explain = tlsd.explain
	if h.connectedTo != nil {
		remote := conn.RemoteAddr().String()
		p.connected = func() bool { return h.connectedTo(remote) }
	}
	peer, err := dialHandshake(c, p)
	if err != nil {
		return gen.HandshakeResult{}, err
	}
	var warnings []error
	if tlsd != nil && tlsd.withheld != nil {
		warnings = append(warnings, tlsd.withheld)
	}
	return h.result(peer, c, conn, warnings), nil
}

// Accept runs the accepting side of the handshake on conn.
func (h *Handshake) Accept(node gen.NodeHandshake, conn net.Conn, opts gen.HandshakeOptions) (gen.HandshakeResult, error) {
	c, lenSize := conn, 2
	if h.opts.ServerTLS != nil {
		tc, err := h.acceptTLS(conn)
		if err != nil {
			return gen.HandshakeResult{}, err
		}
		c, lenSize = tc, 4
	}
	peer, err := acceptHandshake(c, h.params(node, opts, lenSize))
	if err != nil {
		return gen.HandshakeResult{}, err
	}
	return h.result(peer, c, conn, nil), nil
}

// Join: Erlang has one socket per peer; Ergo's extra-socket join is not supported.
func (h *Handshake) Join(gen.NodeHandshake, net.Conn, string, gen.HandshakeOptions) ([]byte, error) {
	return nil, ErrNoErlangEquivalent
}
