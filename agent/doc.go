// Package agent is Pharos Node for Go services that embed it, and the Brain transport the
// daemon (`pharos-node run`) uses too: records go in through DeliverMetric and DeliverAlert,
// and out to a registered process {Name, Node} on a BEAM "Brain" over Erlang distribution, as
// a HIDDEN node (WIRE.md).
//
// # Call order
//
//	a, err := agent.Start(ctx, agent.Options{
//		NodeName:    "myservice@10.0.0.7",                      // or Node: an Ergo node you run
//		NodeOptions: node.Options{Cookie: cookie},              // never logged
//		Brain:       agent.Target{Node: "brain@10.0.0.5", Name: "pharos_brain"},
//		Mode:        agent.ModePayload,                         // or ModeTerm, ModeSubject, ModeAcked
//		SpillDir:    "/var/lib/myservice/pharos",               // optional: nothing accepted is lost
//		Registerer:  prometheus.DefaultRegisterer,              // optional
//		Logger:      logger,                                    // zerolog; the zero value discards
//	})
//	err = a.DeliverMetric(etf.Metric{Name: "cpu.load", Kind: etf.Gauge, Value: 0.42, ...})
//	err = a.DeliverAlert(etf.Alert{...})
//	n, err := a.DeliverMetrics(batch)                       // []etf.Metric, one locking for all
//	state := a.State()                                      // fsm.Disconnected ... fsm.Throttled
//	err = a.Close(ctx)                                      // deliver until ctx, then spill
//
// Start builds the tiers (a buffer.Ring in RAM, the spill.Log on disk), the Brain transport
// and the connection manager (package fsm, an Ergo actor registered as Options.ManagerName),
// which starts connecting at once; records are accepted from the moment Start returns, Brain or
// not. With Options.Node nil, Start starts an Ergo node of its own (node.Start, Ergo's
// metrics reporting disabled, Ergo's log sent to the Logger) and Close stops it. With a node
// the caller runs, the agent spawns its manager there; a node from node.Start is its own
// Connector, one built with node.NewNodeOptions needs NewStackConnector.
//
// # Delivery
//
// DeliverMetric and DeliverAlert validate the record (etf's Validate: WIRE.md's rules),
// encode it once (term_to_binary) and push it into the manager's inbox (fsm.Inbox: one
// mailbox notification per idle-to-busy turn, not one message per record). They never block:
// they fail with an *etf.ValidationError, ErrBusy (the bounded inbox is full; it matches
// ingest.ErrSinkFull) or ErrClosed. Agent is an ingest.Sink, so the ingest sources feed it
// directly. DeliverMetrics does the same for a slice of metrics with the locking paid once per
// call instead of per record, and says how many it accepted from the front; records are
// encoded into shared 64 KiB chunks rather than one allocation each.
//
// The Brain transport (Brain, NewBrain) connects with node.Node.Connect (typed errors, wrapped
// in a *BrainError naming the step), probes the Brain's registered name, and monitors it from
// the manager's process: the DOWN (the process ends or the node goes away) reaches the manager
// as a lost connection. Ergo keeps a fired monitor registered, so every Connect removes the old
// monitor first. Records travel on the fast path, never decoded: ModePayload sends the
// term_to_binary bytes as a binary, ModeTerm sends the term itself (the same bytes as a raw
// term), ModeSubject sends {Name, Binary}; the atoms and fixed parts are encoded once, in
// NewBrain. ModeAcked sends {pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads}, ReplyTo being
// the manager, which takes the Brain's pharos_ack; the spill directory holds the records until
// acknowledged and gives the SourceId (a RAM log without one).
//
// # The acknowledged mode's numbering
//
// With a spill directory the manager's log is a SeqTier: it numbers records densely from 0, one
// number per record the directory ever stored, across restarts and crashes (the spill log's own
// numbers start at 1 and jump by its lease after a crash; SeqTier maps them, keeping its spans in
// NumberingFile, written atomically, before a record that needs a new span is stored). SeqTier
// is also the manager's fsm.NumberingStore, so a renumbering the manager makes (a Brain that is
// ahead, after an OS crash lost the log's tail) survives restarts too. The Brain's deduplication
// is therefore exact across restarts of the process on the same directory; AckedNextSeq tells
// how many records the directory has stored (`pharos-node send --mode acked` resumes from it).
//
// In ModeAcked the spill directory always refuses records when full (spill.Refuse, whatever
// SpillOptions say): dropping its oldest segment would delete records the Brain has not
// acknowledged. A refused record is counted as dropped; size spill.WithMaxBytes for the longest
// outage to ride out. Without a spill directory the log is a fsm.MemoryLog of RingRecords
// records: a restart of the process loses what was not yet acknowledged, and the Brain sees a
// new SourceId.
//
// In ModePayload, ModeTerm and ModeSubject, Erlang distribution gives no receipt: records
// written shortly before a connection drops can be lost with no error here. The manager counts
// those written in the last Delivery.FlushInterval before a drop as possibly lost (Stats,
// metric pharos_fsm_possibly_lost_total). ModeAcked loses nothing and lets the Brain drop
// duplicates.
//
// Distribution has no backpressure towards a slow process either: a Brain that takes each
// message slowly lets its mailbox grow. Options.BrainQueue (QueueLimit) makes the transport
// check the Brain's message queue length (an rpc to its node's rex) while delivering; above
// the limit, delivery fails before sending, and the manager backs off and drains its backlog
// at its paced rate (Throttled) until the Brain has caught up.
//
// # Close
//
// Close stops accepting, keeps delivering until everything accepted is delivered or ctx is
// done, stops the manager, appends what is left in RAM to the spill directory (the next Start
// on it delivers it first, in order) and closes it. Without a spill directory what is left is
// lost and Close returns ErrRecordsLeft with the count.
//
// # Signals
//
// By default every Ergo node catches SIGTERM and SIGINT itself: the first one stops the node
// (the manager dies without draining) and resets the process's signal handling. A program that
// wants Close to drain on SIGTERM passes a channel as NodeOptions.Signals: the node hands both
// signals to it, Ergo never sees them, and the program calls Close when one arrives (see
// watchSignals in cmd/pharos-node/run_cmd.go).
//
// # Concurrency
//
// Every method of Agent is safe for concurrent use. The manager runs on its own actor
// goroutine; the Ring and the spill Log are safe for concurrent use, and only the manager
// touches them until Close.
package agent
