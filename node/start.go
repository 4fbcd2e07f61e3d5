package node

// Starting an Ergo node that speaks Erlang distribution.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"ergo.services/ergo"
	"ergo.services/ergo/gen"
)

// EnvDisableMetrics is Ergo's environment switch that stops its system application from
// reporting to the Ergo authors. Nodes built here always set it.
const EnvDisableMetrics gen.Env = "disable_metrics"

// ListenOptions switch listening on. A listening node accepts connections from Erlang nodes
// (still as a hidden node).
type ListenOptions struct {
	// Host to bind; "" means 127.0.0.1 (loopback only unless told otherwise).
	Host string
	// Port to listen on; 0 means Ergo's default (the first free port from 15000).
	Port uint16
	// Register with the local EPMD (ALIVE2) so that Erlang nodes can find this one by name.
	Register bool
}

// Names says how a node holds its name on its host.
type Names uint8

const (
	// NamesClaimed (the default): the node registers its name with the local EPMD, with port 0
	// unless it listens and registers; a name in use fails the start. When no EPMD answers on
	// this host, the node starts unclaimed (Registrar.Registered reports false).
	NamesClaimed Names = iota
	// NamesClaimRequired: as NamesClaimed, but a start without an EPMD to claim the name fails
	// with ErrEPMDUnreachable.
	NamesClaimRequired
	// NamesUnclaimed: the node does not register (two processes may then use one name and
	// knock each other off their peers).
	NamesUnclaimed
)

// Options configure a node built by NewNodeOptions or Start.
type Options struct {
	// Cookie shared with the Erlang cluster. Never logged.
	Cookie string
	// EPMDPort is the EPMD port on every host; 0 means what ERL_EPMD_PORT says, as erl reads
	// it, else DefaultEPMDPort (a malformed ERL_EPMD_PORT fails the start).
	EPMDPort int
	// Static routes: nodes reached at a known address without EPMD.
	Static map[gen.Atom]StaticRoute
	// Listen, when set, accepts incoming connections. Default: outbound only, no listener.
	Listen *ListenOptions
	// Names says whether the node claims its name in the local EPMD (127.0.0.1 at the EPMD
	// port) when it does not register a listening port: the default, NamesClaimed, registers
	// it with port 0, so that a second node of that name on this host (an erl, another Pharos
	// node) is refused while this one runs (*NameInUseError, errors.Is ErrNameInUse).
	Names Names
	// TickTime is the cluster's net_ticktime; 0 means 60 s.
	TickTime time.Duration
	// HandshakeTimeout bounds a handshake; 0 means 7 s.
	HandshakeTimeout time.Duration
	// Flags announced in the handshake; 0 means DefaultFlags.
	Flags Flags
	// ClientTLS, ServerTLS: distribution over TLS (-proto_dist inet_tls). See TLSConfig.
	ClientTLS *tls.Config
	ServerTLS *tls.Config
	// TLSAnswerTimeout: with ClientTLS, a peer silent for this long after our TLS hello is
	// probed with a plain name message; one that answers it runs no TLS distribution
	// (ErrPeerNotTLS). 0 means DefaultTLSAnswerTimeout (1 s).
	TLSAnswerTimeout time.Duration
	// HighWater: bytes pending per connection before senders wait; 0 means 1 MiB.
	HighWater int
	// MaxFrame: the largest frame (one message with its control message) accepted from a
	// peer; a larger one ends the connection with a *FrameTooLargeError. 0 means 64 MiB.
	MaxFrame int
	// Signals, when set, receives SIGINT and SIGTERM instead of Ergo, which never sees them:
	// the caller decides when the node stops. Start removes every earlier registration of
	// these two signals (os/signal cannot remove only Ergo's): register them here, not before.
	// Stop the delivery with signal.Stop(Signals). Nil (the default) leaves them to Ergo, as
	// every Ergo node does: the first one stops the node at once, without draining, and resets
	// the process's signal handling.
	Signals chan<- os.Signal
	// Rand: source of handshake challenges; nil means crypto/rand.
	Rand io.Reader
	// Log, Env and Applications are passed to Ergo (Env always gets EnvDisableMetrics).
	Log          gen.LogOptions
	Env          map[gen.Env]any
	Applications []gen.ApplicationBehavior
}

// Stack is the network stack one node uses.
type Stack struct {
	Handshake *Handshake
	Proto     *Proto
	Registrar *Registrar
	signals   chan<- os.Signal // Options.Signals
}

// NewNodeOptions builds Ergo node options that make an Ergo node speak Erlang distribution as a
// hidden node. After ergo.StartNode, call stack.Install(node) (Start does both).
func NewNodeOptions(o Options) (gen.NodeOptions, *Stack, error) {
	if o.Cookie == "" {
		return gen.NodeOptions{}, nil, errors.New("node: empty cookie")
	}
	hs, err := NewHandshake(HandshakeOptions{
		Flags: o.Flags, Timeout: o.HandshakeTimeout, Rand: o.Rand,
		ClientTLS: o.ClientTLS, ServerTLS: o.ServerTLS, TLSAnswerTimeout: o.TLSAnswerTimeout,
	})
	if err != nil {
		return gen.NodeOptions{}, nil, err
	}
	proto := NewProto(ProtoOptions{TickTime: o.TickTime, HighWater: o.HighWater, MaxFrame: o.MaxFrame})
	hs.connectedTo = proto.connectedTo
	epmdPort := o.EPMDPort
	if epmdPort == 0 {
		if epmdPort, err = EPMDPortFromEnv(os.Getenv); err != nil {
			return gen.NodeOptions{}, nil, err
		}
	}
	reg := NewRegistrar(RegistrarOptions{
		EPMD:          EPMDClient{Port: epmdPort},
		Static:        o.Static,
		Register:      o.Listen != nil && o.Listen.Register,
		Claim:         o.Names != NamesUnclaimed,
		ClaimRequired: o.Names == NamesClaimRequired,
	})
	hs.dialled = reg.nodeAt
	env := map[gen.Env]any{EnvDisableMetrics: true}
	for k, v := range o.Env {
		env[k] = v
	}
	nopts := gen.NodeOptions{
		Applications: o.Applications,
		Env:          env,
		Log:          o.Log,
		Network: gen.NetworkOptions{
			Mode:      gen.NetworkModeHidden,
			Cookie:    o.Cookie,
			Registrar: reg,
			Handshake: hs,
			Proto:     proto,
		},
	}
	if o.Listen != nil {
		host := o.Listen.Host
		if host == "" {
			host = "127.0.0.1"
		}
		nopts.Network.Mode = gen.NetworkModeEnabled
		nopts.Network.Acceptors = []gen.AcceptorOptions{{
			Host:      host,
			Port:      o.Listen.Port,
			TCP:       "tcp",
			Handshake: hs,
			Proto:     proto,
			Registrar: nil,
		}}
	}
	return nopts, &Stack{Handshake: hs, Proto: proto, Registrar: reg, signals: o.Signals}, nil
}

// Install registers the stack's handshake and proto with a started node, so that routes from
// the Registrar (named by ProtocolVersion) use them, and, with Options.Signals, takes SIGINT
// and SIGTERM from Ergo.
func (s *Stack) Install(n gen.Node) error {
	network := n.Network()
	if network == nil {
		return gen.ErrNetworkStopped
	}
	network.RegisterHandshake(s.Handshake)
	network.RegisterProto(s.Proto)
	if s.signals != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return takeSignals(ctx, s.signals)
	}
	return nil
}

// Node is a started Ergo node with the Erlang stack: every gen.Node method, plus Connect and
// the fast path.
type Node struct {
	gen.Node
	stack *Stack
}

// Start starts an Ergo node named name ("name@host") that joins Erlang clusters as a hidden
// node.
func Start(name gen.Atom, o Options) (*Node, error) {
	if o.Listen != nil && o.Listen.Register {
		// Register before Ergo opens its listener: Ergo leaves the listener open when the
		// registrar fails, so a taken name must fail first.
		listen := *o.Listen
		if listen.Host == "" {
			listen.Host = "127.0.0.1"
		}
		if listen.Port == 0 {
			port, err := freePort(listen.Host)
			if err != nil {
				return nil, err
			}
			listen.Port = port
		}
		o.Listen = &listen
	}
	opts, stack, err := NewNodeOptions(o)
	if err != nil {
		return nil, err
	}
	if registers := o.Listen != nil && o.Listen.Register; registers || o.Names != NamesUnclaimed {
		// Register before Ergo starts: Ergo leaves its listener open when the registrar fails,
		// so a taken name must fail first; and Ergo flattens the registrar's error to text.
		var port uint16
		if registers {
			port = o.Listen.Port
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := stack.Registrar.register(ctx, name, port, registers || o.Names == NamesClaimRequired)
		cancel()
		var inUse *NameInUseError
		if errors.As(err, &inUse) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("node: starting %s: %w", name, err)
		}
	}
	n, err := ergo.StartNode(name, opts)
	if err != nil {
		stack.Registrar.Terminate()
		if regErr := stack.Registrar.RegisterError(); regErr != nil {
			return nil, fmt.Errorf("node: starting %s: %w", name, regErr)
		}
		return nil, err
	}
	if err := stack.Install(n); err != nil {
		n.StopForce()
		return nil, err
	}
	if err := stack.Registrar.Unclaimed(); err != nil {
		n.Log().Warning("node: %s is not registered with an EPMD on this host, so nothing stops a second node from taking its name: %v", name, err)
	}
	return &Node{Node: n, stack: stack}, nil
}

// Stack returns the node's network stack.
func (n *Node) Stack() *Stack { return n.stack }

// ConnectError reports a failed connection attempt with the address tried.
type ConnectError struct {
	Peer gen.Atom
	Addr string
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to %s at %s: %v", e.Peer, e.Addr, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Connect returns the connection with peer, dialling it if needed. Unlike Ergo's implicit
// connect on first send (which reports every failure as gen.ErrNoRoute), it returns the typed
// cause: an *EPMDError (ErrEPMDUnreachable, ErrNodeNotRegistered), a *ConnectError wrapping
// ErrPeerUnreachable, or a *HandshakeError (ErrWrongCookie, ErrNotAllowed, *FlagError, ...).
// The wait is bounded by ctx for resolution; the dial and the handshake that follow are
// Ergo's and do not see ctx: they are bounded by Ergo's 3 s TCP dial timeout and by
// Options.HandshakeTimeout (7 s by default).
func (n *Node) Connect(ctx context.Context, peer gen.Atom) (*Conn, error) {
	return n.stack.Connect(ctx, n.Node, peer)
}

// Connect is Node.Connect for a node started with NewNodeOptions, ergo.StartNode and Install.
func (s *Stack) Connect(ctx context.Context, n gen.Node, peer gen.Atom) (*Conn, error) {
	if c, ok := s.Proto.Conn(peer); ok {
		return c, nil
	}
	route, err := s.Registrar.ResolveContext(ctx, peer)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	network := n.Network()
	if network == nil {
		return nil, gen.ErrNetworkStopped
	}
	addr := net.JoinHostPort(route.Host, fmt.Sprint(route.Port))
	if _, err := network.GetNodeWithRoute(peer, gen.NetworkRoute{Route: route}); err != nil {
		if c, ok := s.Proto.Conn(peer); ok {
			return c, nil // another dial won the race (ErrAlreadyConnected)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			err = fmt.Errorf("%w: %w", ErrPeerUnreachable, err)
		}
		return nil, &ConnectError{Peer: peer, Addr: addr, Err: err}
	}
	// Serve registers the Conn from its own goroutine: wait for it briefly.
	for i := 0; ; i++ {
		if c, ok := s.Proto.Conn(peer); ok {
			return c, nil
		}
		if i > 2000 {
			return nil, &ConnectError{Peer: peer, Addr: addr, Err: ErrConnectionClosed}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// Reachable tells, without connecting, whether peer looks reachable: connected already, or
// registered with its host's EPMD (a node registers once it listens, and EPMD forgets it when it
// stops), or, with a static route and no EPMD, accepting TCP connections at its address. It is
// the cheap check a sender makes while it waits to reconnect.
func (n *Node) Reachable(ctx context.Context, peer gen.Atom) error {
	return n.stack.Reachable(ctx, peer)
}

// Reachable is Node.Reachable for a node started with NewNodeOptions, ergo.StartNode and Install.
func (s *Stack) Reachable(ctx context.Context, peer gen.Atom) error {
	if c, ok := s.Proto.Conn(peer); ok {
		select {
		case <-c.Done():
		default:
			return nil
		}
	}
	if _, static := s.Registrar.opts.Static[peer]; !static {
		_, err := s.Registrar.ResolveContext(ctx, peer)
		return err
	}
	addr, err := s.Registrar.Addr(ctx, peer)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &ConnectError{Peer: peer, Addr: addr, Err: fmt.Errorf("%w: %w", ErrPeerUnreachable, err)}
	}
	return conn.Close()
}

func freePort(host string) (uint16, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("node: finding a free port on %s: %w", host, err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}
