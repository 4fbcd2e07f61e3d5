// Package fsm is Pharos Node's connection manager: it owns the delivery of pre-encoded records
// to the Brain (or any sink behind a Transport) and degrades gracefully under partitions. It
// ports the Gleam original (shared/seed/connection.gleam) onto a small gen_statem-style layer
// run inside an Ergo v3 actor. docs/design.md explains the design, the state tables and the
// acknowledged mode's numbering; this comment is the contract.
//
// # Layers
//
// Machine[S, D, E] (statem.go) holds a state and data, routes every event to one handler and
// owns at most one state timeout, guarded by a generation counter so a late timer is dropped.
// It starts no goroutine and reads no clock: transitions are tested without Ergo, on a fake
// clock. Manager runs a Machine with the four states Disconnected, Connecting, Streaming and
// Throttled, in one of two disciplines over the same Machine: the unacknowledged modes
// (unacked.go: Ring, optional Spill, Transport) or the acknowledged mode (acked.go: a SeqLog
// and an AckTransport, pharos_batch out, pharos_ack back). The actor (actor.go) runs a Manager
// in Ergo; Service (service.go) runs the actor under a supervisor.
//
// # Call order
//
//	metrics, _ := fsm.NewMetrics(registry, nil)               // once per process
//	inbox, _ := fsm.NewInbox(100_000)                          // outlives restarts, like the tiers
//	svc, err := fsm.StartService(node, fsm.ServiceOptions{Name: "pharos_conn",
//		Actor: fsm.ActorOptions{Config: cfg, NewTransport: ..., Ring: ring, Spill: spill,
//			Inbox: inbox, Metrics: metrics, Logger: log}, // acked: NewAckTransport and Log
//		Metrics: metrics})
//	n, err := svc.Handle().DeliverMany(records)               // any goroutine; never blocks
//	snap := svc.Snapshot()                                     // state and counters
//	err = svc.WaitDrained(ctx)                                 // nothing held any more
//	handback, err := svc.Stop(ctx)                             // hands the tiers back
//
// Spawn and ChildSpec run the same actor without a Service, for a supervisor of the caller's.
//
// # Lifecycle
//
// StartService spawns a one-for-one supervisor (transient restart, ServiceOptions'
// intensity) with the manager under it. Every incarnation builds a fresh Manager in Init
// (Disconnected, attempt 0) over the same tiers and Inbox, takes what the Inbox holds and
// connects at once. A crash (a panic, a kill) loses nothing the tiers hold: the supervisor
// restarts the manager, counts it (pharos_fsm_restarts_total) and logs it at warn; deliveries
// meanwhile wait in the Inbox. Stop cancels the Service's lifetime context, which every
// transport call runs under, and stops the supervisor; the manager, in its own goroutine,
// hands its tiers back (HandBack: ring and inbox to the disk tier, the inbox to the
// acknowledged mode's log) and terminates; Stop returns once the supervisor has ended. If the
// supervisor gives up (restart intensity), it hands the tiers back itself and Done closes with
// Err wrapping ErrRestartIntensity.
//
// The actor traps exits: an exit signal from its parent terminates it; any other reaches the
// manager as a message and is ignored, unless the transport links its peer and says the signal
// is the peer's (PeerExits): that is a lost connection. A kill cannot be trapped.
//
// # Concurrency
//
// Machine and Manager are not safe for concurrent use: the actor's goroutine calls them, and
// calls the tiers and transports one call at a time (their Len and Bytes must be safe for
// concurrent use). Handle, Service, Status and Inbox are safe for concurrent use. Records travel
// through the Inbox, never as mailbox messages: one notification per idle-to-busy turn keeps
// the mailbox free for acknowledgements and timers. Snapshot is published after every mailbox
// message the manager handles (an atomic pointer), never read back from metrics.
//
// # Guarantees
//
// Unacknowledged modes: nothing is lost on a failure here (what was not sent goes back in front
// of the ring or stays on disk); records are dropped only when the ring must evict with no disk
// tier (or the disk refuses), counted. Distribution gives no receipt: what was delivered in the
// last FlushInterval before a drop is counted as possibly lost (not with a RequestTransport,
// whose sink answers every delivery). Acknowledged mode: every record
// the SeqLog stored reaches the Brain in order and, with the Brain's deduplication, is
// processed once, across lost batches and acks, dropped connections, restarts of the Brain and
// of the manager on the same log; the log's numbers are the Brain's (see SeqLog).
package fsm
