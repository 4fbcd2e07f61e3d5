// Package brain is the Brain transport: the connection manager's transports (fsm.Transport,
// fsm.BatchTransport and fsm.AckTransport) over package node's hidden-node connection to a
// registered process {Name, Node} on a BEAM Brain.
//
// # Call order
//
//	b, err := brain.NewBrain(n, brain.Target{Node: "brain@host", Name: "pharos_brain"},
//		brain.ModePayload, logger)                  // n: a *node.Node (or NewStackConnector)
//	opts.NewTransport = b.NewTransport            // fsm.ActorOptions; acked: b.NewAckTransport
//
// Each manager incarnation builds its transport from its own process. Connect makes sure of the
// connection, probes the registered name and monitors it from the manager's process: its DOWN
// (the process ends, or the node goes away) reaches the manager as a lost connection. Records
// travel on the fast path, never decoded, framed by package etf's wire functions: the payload
// mode sends term_to_binary bytes as a binary, the term mode the term itself, the subject mode
// {Name, Binary}; the acknowledged mode sends {pharos_batch, ReplyTo, SourceId, FirstSeq,
// Payloads} with the manager as ReplyTo. The atoms and fixed parts are encoded once, in NewBrain.
//
// QueueLimit adds backpressure on the Brain's mailbox, which distribution lacks: the transport
// sends while its bound on the Brain's queue (last measured length plus messages sent since) is
// below the limit, then fails with ErrBusy (wrapping fsm.ErrPeerBusy); the manager keeps the
// connection and the records and tries again at its next drain turn.
//
// # Errors
//
// A failed connection is an *Error naming the step (connect, probe, monitor, queue check) and
// wrapping node's typed error (errors.Is(err, node.ErrNoSuchProcess), node.ErrWrongCookie, ...).
//
// # Concurrency
//
// Brain is immutable and safe to share. A transport is called by its manager's goroutine only,
// one call at a time, with a deadline in ctx.
package brain
