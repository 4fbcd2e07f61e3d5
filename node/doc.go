// Package node makes an Ergo v3 node (ergo.services/ergo) speak Erlang distribution
// (https://www.erlang.org/doc/apps/erts/erl_dist_protocol.html), so that it joins a BEAM cluster
// as a HIDDEN node: in nodes(hidden) on the Erlang side, never in nodes(). Why it works as it
// does (names, signals, exit semantics, confirmations, TLS) is in docs/node.md.
//
// Files: epmd.go (EPMD client), handshake.go (one function per handshake message and side),
// handshake_seam.go and proto.go (Ergo's network seams), tls.go and tls_dial.go, flags.go,
// control.go (one type per control message), framing.go, term.go (private), conn*.go (one
// connection: writing, ticks, reading, links, exits, monitors, calls, confirmations),
// connection.go (Ergo's requests as control messages), registrar.go, start.go, signals.go,
// cookie.go, fastpath.go, probe.go.
//
// # Call order
//
//	cookie, err := node.ReadCookieFile("")          // ~/.erlang.cookie, mode 0400 as erl demands
//	sigs := make(chan os.Signal, 2)                 // optional: the caller owns SIGINT/SIGTERM
//	n, err := node.Start("pharos@myhost", node.Options{Cookie: cookie, Signals: sigs})
//	defer n.Stop()                                  // frees the name in EPMD
//	err = n.Reachable(ctx, "brain@host")            // registered in its EPMD? connects nothing
//	conn, err := n.Connect(ctx, "brain@host")       // typed errors, see below
//	err = n.Send(gen.ProcessID{Name: "pharos_brain", Node: "brain@host"}, value)
//	rtt, err := conn.Probe(ctx, "pharos_brain")     // is it registered? round trip
//	err = conn.ConfirmWait(ctx, from, brainPid)     // everything from sent brainPid is in its queue
//
// The long way, for a caller that builds its own gen.NodeOptions: opts, stack, err :=
// NewNodeOptions(o); n, err := ergo.StartNode(name, opts); err = stack.Install(n).
//
// Inside Ergo, actors use ordinary calls: Send to a gen.ProcessID on the BEAM or to a gen.PID
// from it, Call (a gen_server:call), Link, Monitor. BEAM terms arrive decoded by package etf.
// A gen_server:call from the BEAM arrives as {'$gen_call', {Pid, Tag}, Request}: answer with
// etf.Tuple{Tag, Reply} to Pid. Exit signals from the BEAM follow Erlang's rules (a normal one
// never ends a process; kill cannot be trapped). Ergo features with no Erlang meaning return
// ErrNoErlangEquivalent. Pre-encoded terms (RawTerm, Conn.SendRaw, SendBinary, SendAppend) go to
// the wire as they are; SendBinaries and SendAppendMany append many messages under one lock.
//
// # Lifecycle
//
// Start claims the node's name in the local EPMD (port 0 unless it listens: Options.Names) and
// fails with *NameInUseError while another node, erl or Go, holds it on this host; with
// Options.Signals it takes SIGINT and SIGTERM from Ergo before returning. The node dials
// peers when asked (Connect, or Ergo's implicit connect on a first send); it listens only
// with Options.Listen. A connection lives until the peer goes, a tick time passes in silence,
// the peer sends a frame over MaxFrame, or the node stops; Ergo then reports noconnection to
// links and monitors, and Conn.Err says why. Stop ends every connection and the EPMD
// registration.
//
// # Concurrency
//
// Every exported method is safe for concurrent use. A Conn runs three goroutines (reader,
// writer, ticker) that end with it. Messages sent through one Conn from one goroutine reach
// the peer in the order sent, and Erlang keeps that order per pair of processes, which is what
// Confirm builds on. A send waits (never fails) while more than Options.HighWater bytes wait
// for the socket; the fast path's sends give up when their context ends (ErrSendBufferFull).
// A reply to the reader's own requests never waits for room.
//
// # Errors
//
// Sentinels (errors.Is), all prefixed "node:": ErrEPMDUnreachable, ErrNodeNotRegistered,
// ErrNameInUse, ErrEPMDProtocol; ErrPeerUnreachable, ErrWrongCookie, ErrNotAllowed,
// ErrSimultaneousConnect, ErrUnexpectedMessage, ErrWrongPeer, ErrAlreadyConnected;
// ErrPeerNotTLS, ErrPeerRequiresTLS, ErrClientCertRequired; ErrPeerSilent, ErrPeerNotReading,
// ErrConnectionClosed, ErrSendBufferFull, ErrFrameTooLarge; ErrNoSuchProcess,
// ErrTooManyConfirmations, ErrCookieFileMode, ErrCookieEmpty, ErrNoErlangEquivalent. Types
// (errors.As): *EPMDError, *NameInUseError, *ConnectError, *HandshakeError{Peer, Phase, Tag},
// *FlagError, *SilentPeerError, *FrameTooLargeError, *ControlError, *ProbeError,
// *TLSFileError, *ExitReason. The cookie never appears in an error or a log line.
package node
