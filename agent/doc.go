// Package agent is Pharos Node for Go services that embed it, and the facade the daemon
// (`pharos-node run`) uses: records go in through DeliverMetric and DeliverAlert and out to a
// registered process {Name, Node} on a BEAM "Brain" over Erlang distribution, as a HIDDEN node
// (docs/wire.md). docs/design.md draws the data path and the manager's lifecycle.
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
//	n, err := a.DeliverMetrics(batch)                        // one locking for all
//	st := a.Stats()                                           // State, counters, restarts
//	<-a.Done()                                                // only if the manager is down for good
//	err = a.Close(ctx)                                        // deliver until ctx, then spill
//
// Options.Sink replaces the Brain with another destination through the same manager, tiers
// and guarantees, e.g. an OpenTelemetry Collector: agent.Options{Sink: otlpSink, SpillDir: dir}
// with an *otlpsink.Sink (ModePayload only; no cookie needed for an own node).
//
// Start opens the spill directory (if any), builds the tiers (package tier), the Brain
// transport (package brain) and the connection manager, a supervised fsm.Service registered as
// Options.ManagerName, which connects at once; records are accepted from the moment Start
// returns, Brain or not. With Options.Node nil, Start starts an Ergo node of its own
// (node.Start, Ergo's metrics reporting disabled, Ergo's log sent to the Logger) and Close
// stops it. Embedders' go.mod needs `replace ergo.services/ergo => github.com/ergo-services/ergo
// v1.999.310`, as this module's has.
//
// # Delivery
//
// DeliverMetric and DeliverAlert validate the record (etf's Validate), encode it once into the
// agent's record arena and push it into the manager's inbox. They never block: they fail with
// an *etf.ValidationError, ErrBusy (the inbox is full; it matches ingest.ErrSinkFull), ErrFull
// (Options.RefuseWhenFull: RAM holds the ring's bounds; it matches ingest.ErrSinkOverflow),
// ErrStopped or ErrClosed. While the manager restarts after a crash, records wait in the inbox.
// Agent is an ingest.Sink.
//
// Modes: ModePayload (the default), ModeTerm and ModeSubject have no receipt from
// distribution; what was written in the last Delivery.FlushInterval before a drop is counted
// as possibly lost (Stats.PossiblyLost). ModeAcked keeps every record (in the spill directory,
// or a RAM log of RingRecords without one) until the Brain's cumulative acknowledgement covers
// it; the spill directory then always refuses records when full (never drops its oldest, which
// would delete unacknowledged records), counted in Stats.Dropped. Options.BrainQueue pauses
// delivery while the Brain's mailbox is longer than its limit.
//
// # State and Close
//
// State and Stats read the snapshot the manager publishes after every message it handles:
// Disconnected, Connecting, Streaming or Throttled; fsm.NotRunning between a crash and the
// restart; fsm.Closed after Close. Close stops accepting, keeps delivering until everything
// accepted is delivered (ModeAcked: acknowledged) or ctx is done, then stops the manager, which
// hands its tiers back itself (RAM and inbox to the spill directory; the next Start on it
// delivers them first, in order), closes the directory and stops the agent's own node. Without a
// spill directory what is left is lost, and Close returns ErrRecordsLeft with the count. If the
// manager's supervisor gives up (Options.RestartIntensity), Done is closed and Err says why: a
// daemon should Close and exit non-zero.
//
// # Clusters
//
// Options.Cluster, in place of Brain, delivers to several Brains, a static list or a pg group,
// by failover or sharded by a key: package cluster routes each record to one of its shards, each
// a connection manager whose target follows the shard's owner (docs/clusters.md). State is then
// Streaming while enough Brains are reachable, and Stats.Cluster has each one's state.
//
// # Signals
//
// By default every Ergo node catches SIGTERM and SIGINT itself: the first one stops the node (the
// manager dies without draining). A program that wants Close to drain on SIGTERM passes a channel
// as NodeOptions.Signals: the node hands both signals to it, Ergo never sees them, and the program
// calls Close when one arrives (cmd/pharos-node's watchSignals).
//
// # Concurrency
//
// Every method of Agent is safe for concurrent use.
package agent
