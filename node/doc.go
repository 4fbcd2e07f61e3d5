// Package node makes an Ergo v3 node (ergo.services/ergo) speak Erlang distribution, so that it
// joins a BEAM cluster as a HIDDEN node: it shows in nodes(hidden) on the Erlang side, never in
// nodes(). It implements Ergo's network seams with the Erlang protocol, written from OTP's
// erl_dist_protocol.md, dist_util.erl and dist.hrl
// (https://www.erlang.org/doc/apps/erts/erl_dist_protocol.html):
//
//	epmd.go       EPMD client: PORT_PLEASE2 (find a node), ALIVE2 (register; only when listening)
//	handshake.go  the version 6 handshake, both sides, MD5 challenge both ways, typed errors
//	flags.go      the DFLAG_* capability word, each flag with its OTP status; Mandatory
//	framing.go    (private) 2/4-byte handshake frames, 4-byte connection frames, ticks
//	control.go    one Go type per control message, with its op code
//	term.go       (private) the few term encodings control messages need
//	conn.go       Conn, one connection: reader, writer, ticker; links, monitors, calls
//	connection.go Conn's gen.Connection methods: Ergo requests as control messages
//	proto.go      Handshake (gen.NetworkHandshake) and Proto (gen.NetworkProto)
//	registrar.go  Registrar (gen.Registrar, gen.Resolver): static routes, then EPMD
//	fastpath.go   sending pre-encoded terms without decoding them
//	probe.go      Probe: does a registered name exist, and the round trip
//	start.go      Options, NewNodeOptions, Start, Node.Connect
//	tls.go        TLS configuration for -proto_dist inet_tls peers
//
// # Call order
//
// The short way:
//
//	n, err := node.Start("pharos@myhost", node.Options{
//		Cookie:   cookie,                        // never logged
//		EPMDPort: port,                          // node.EPMDPortFromEnv(os.Getenv) honours ERL_EPMD_PORT
//		Static:   map[gen.Atom]node.StaticRoute{ // optional: skip EPMD for these nodes
//			"brain@10.0.0.5": {Host: "10.0.0.5", Port: 9100},
//		},
//	})
//	defer n.Stop()
//	conn, err := n.Connect(ctx, "brain@host")      // typed errors, see below
//	err = n.Send(gen.ProcessID{Name: "pharos_brain", Node: "brain@host"}, value)
//	rtt, err := conn.Probe(ctx, "pharos_brain")    // is it registered? round trip
//
// The long way, for a caller that builds its own gen.NodeOptions:
//
//	opts, stack, err := node.NewNodeOptions(o)     // Network: our Registrar, Handshake, Proto
//	n, err := ergo.StartNode(name, opts)
//	err = stack.Install(n)                         // registers Handshake and Proto with Ergo
//
// Ergo then resolves a node name through the Registrar (static route, else PORT_PLEASE2 at the
// node's host), dials, runs Handshake.Start, builds a Conn with Proto.NewConnection and serves
// it with Proto.Serve. Ergo's implicit connect on first send reports every failure as
// gen.ErrNoRoute; Node.Connect returns the typed cause instead.
//
// Inside Ergo, actors use ordinary calls: Send to gen.ProcessID{Name, Node} on the BEAM or to a
// gen.PID received from it; Call makes a gen_server:call; MonitorProcessID yields
// gen.MessageDownProcessID when the remote process ends or the node goes away
// (gen.MessageDownNode for MonitorNode). Messages from BEAM processes arrive decoded by package
// etf, with gen.Atom, gen.PID and gen.Ref for atoms, pids and references. A gen_server:call from
// the BEAM arrives as the plain message {'$gen_call', {Pid, Tag}, Request}: answer it by sending
// etf.Tuple{Tag, Reply} to Pid. A node that listens answers net_adm:ping. Ergo features with no
// Erlang meaning (events, proxies, remote spawn, remote application start, links to names)
// return ErrNoErlangEquivalent.
//
// A message already encoded (node.RawTerm, or Conn.SendAppend/SendBinary/SendRaw) goes to the
// wire as it is: the fast path for pre-encoded payloads. Its sends take a context: when the
// peer reads slower than we write, a send waits for room in the connection's buffer (1 MiB by
// default, ProtoOptions.HighWater) and gives up with ErrSendBufferFull when its context ends.
//
// # What goes on the wire
//
// The handshake always sends the 'N' name message (version 6), announces DefaultFlags (the
// OTP 25 mandatory set, FlagV4NC and FlagUnlinkID, and what this package implements) and never
// FlagPublished. No atom cache and no fragments: every frame uses the pass-through header 'p'.
// Ticks: a tick goes out after a quarter of the tick time without traffic (unless a write is
// already waiting), every tick received is answered, and a peer silent for the tick time
// (Options.TickTime, BEAM's net_ticktime, default 60 s) is dropped with a *SilentPeerError,
// also when it stopped reading and our buffer is full. Unknown or unreadable control messages are
// logged and ignored; they never end the connection. UNLINK_ID is answered with UNLINK_ID_ACK.
//
// # Errors
//
// Sentinels for errors.Is: ErrEPMDUnreachable, ErrNodeNotRegistered, ErrNameInUse (EPMD);
// ErrPeerUnreachable, ErrWrongCookie, ErrNotAllowed, ErrSimultaneousConnect (connect and
// handshake); ErrPeerSilent, ErrConnectionClosed (connection); ErrNoSuchProcess (Probe). Types
// for errors.As: *EPMDError{Op, Addr, Node}, *HandshakeError{Peer, Phase, Tag}, *FlagError
// (names the missing flags), *ConnectError{Peer, Addr}, *SilentPeerError, *ControlError,
// *ProbeError. The cookie never appears in an error or a log line.
//
// # Delivery
//
// Erlang distribution has no delivery receipt: a message written shortly before a connection
// drops may be lost without an error at the sender. Everything sent before a successful
// Conn.Probe has reached the peer node.
//
// # Lifecycle and concurrency
//
// Outbound only by default: no listener, no EPMD registration. Options.Listen switches
// listening on (loopback unless told otherwise) and, with Register, ALIVE2 registration.
// Every exported method is safe for concurrent use. Each Conn runs three goroutines (reader,
// writer, ticker) that all end when the connection ends; messages sent through one Conn from
// one goroutine reach the peer in the order they were sent. A sender waits (never fails) while
// more than Options.HighWater bytes wait for the socket, so a slow peer slows senders down
// instead of growing memory; a peer silent for the tick time unblocks them with an error.
package node
