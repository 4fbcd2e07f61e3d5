// Package fsm is Pharos Node's connection manager: it owns the delivery of
// pre-encoded telemetry records to the Brain (or any other sink) and
// degrades gracefully under network partitions. It is a port of the Gleam
// original (shared/seed/connection.gleam), on a small gen_statem-style layer
// of its own, run inside an Ergo v3 actor.
//
// # The generic layer
//
// Machine[S, D, E] holds the current state S and data D and routes every
// event E to one Handler, which returns a Result: NextState(s, actions...)
// or KeepState(actions...). The only action kinds are SetStateTimeout and
// CancelStateTimeout. There is at most one state timeout; it is cancelled
// on every state change (a NextState to the current state is not a change),
// and replaced by every SetStateTimeout. Each arm or cancel bumps a
// generation counter, and the TimeoutID handed to the timer is that
// generation: a cancelled Go timer can still have delivered its message, so
// Machine.Fire drops any ID that is not the current one. An optional
// EnterFunc runs after each state change (and once on Start).
//
// The Machine never starts a goroutine and never reads the clock: timers go
// through a TimerFunc supplied by the runner. Transitions are therefore
// tested without Ergo, on a fake clock.
//
// MachineActorSpec is the thin Ergo adapter: its Factory spawns an
// act.Actor that builds the machine (any Runnable: Start, Cast, Fire,
// Close) in Init, passing it a TimerFunc whose timers send a message to the
// actor itself; Start runs from the first message in the actor's loop;
// mailbox messages go through Translate to Cast; Terminate calls Close.
// The actor traps exits: an exit signal (or Stop) first releases the
// registered name, then terminates the actor with the signal's reason, so
// its supervisor can restart it under the same name at once (Ergo tells the
// links before it frees the name; without this a restart could fail with
// the name taken and bring the supervisor down).
//
// # The connection manager
//
// Manager runs a Machine with four states and six events:
//
//	Disconnected ──Tick──▶ Connecting ──connected and flushed──▶ Streaming or Throttled
//	Connecting ──connect or flush failure──▶ Disconnected
//	Streaming ──backlog > MaxPending after a flush──▶ Throttled ──caught up──▶ Streaming
//	Streaming, Throttled ──delivery failure or ConnectionLost──▶ Disconnected
//
//	state         Deliver     Tick         Attempt        DrainTick  FlushTick     ConnectionLost
//	Disconnected  buffer      →Connecting  ignored        ignored    ignored       ignored
//	Connecting    buffer      ignored      connect+flush  ignored    ignored       ignored
//	Streaming     push+flush  ignored      ignored        ignored    flush+re-arm  →Disconnected
//	Throttled     buffer      ignored      ignored        flush      ignored       →Disconnected
//
// "buffer": with a disk tier, once the ring holds MaxPending records its
// whole content is appended to disk before the push could evict anything;
// then the record goes to RAM (the ring's capacity must exceed MaxPending,
// which NewManager checks, so that no push evicts while a disk tier
// exists). "flush": up to DrainBatch records, the disk
// tier first (oldest first, trimmed as delivered), then the ring. After a
// successful flush the manager goes to Throttled if ring plus disk still
// exceed MaxPending, else to Streaming. Any connect or delivery failure goes
// to Disconnected with a retry timer drawn uniformly from
// [0, min(MaxBackoff, BaseBackoff·2^min(attempt,16))) (full jitter), and
// bumps the attempt counter, which a successful connect-and-flush resets.
// Timer events that arrive in another state are ignored (they are stale).
//
// Nothing is lost on failure: what a failed replay did not send stays on
// disk (simply not trimmed); a failed RAM delivery puts the remainder back
// in front of the ring. Records are lost only to ring evictions, when there
// is no disk tier or the disk refuses them; they are counted as dropped
// (metric and Stats) and logged at most once per DropLogInterval.
//
// Where the original is silent, this package adds: paced draining
// (DrainBatch, DrainInterval) so Throttled does drain at a pace; a
// ConnectionLost event (the Brain's monitor DOWN); the possibly-lost count
// of WIRE.md (records delivered in the last FlushInterval before a drop: in
// the payload, term and subject modes distribution gives no receipt, so
// those may be gone without any error here); validation of every setting.
//
// # Running it
//
// Call order, for an Ergo node:
//
//	metrics, _ := fsm.NewMetrics(registry, nil)            // once per node
//	opts := fsm.ActorOptions{Config: cfg, NewTransport: ..., Ring: ring,
//	        Spill: spill, Logger: log, Metrics: metrics}
//	spec, err := fsm.ChildSpec("pharos_conn", opts, gen.ProcessOptions{MailboxSize: 100_000})
//	// ... put spec in an act.Supervisor's SupervisorSpec.Children
//	conn := fsm.NewHandle(node, "pharos_conn")
//	err = conn.Deliver(record)                               // from any goroutine
//	err = conn.Stop(ctx)
//
// or fsm.Spawn(node, name, opts, procOpts) without a supervisor. The actor
// builds its Manager in Init (so a restart starts from Disconnected with a
// fresh attempt counter) and kicks off the first connection attempt at
// once. The Ring and Spill in ActorOptions outlive restarts, and so does
// their content; only the records of a flush in progress when the actor
// crashes can be lost.
//
// # Concurrency
//
// Machine and Manager are not safe for concurrent use: one goroutine, the
// actor's, calls them. Transport, Ring and Spill are called only from that
// goroutine, one call at a time, with deadlines (ConnectTimeout,
// DeliverTimeout) on the transport calls; while one blocks, the mailbox
// keeps accepting. Handle is a value safe to copy and to use from any
// goroutine: Deliver never blocks, it pushes into the actor's mailbox. With
// gen.ProcessOptions.MailboxSize = 0 the mailbox is unbounded (memory is the
// limit); with a bound, each of its queues holds that many messages and
// Deliver returns ErrMailboxFull when the Main queue is full. State timeouts
// travel in the System queue (high priority), so they are processed ahead
// of queued records and are not refused for a full Main queue. Deliver
// returns ErrNotRunning between a crash and the supervisor's restart.
//
// # Transports
//
// Transport is Connect plus Deliver; BatchTransport adds DeliverBatch.
// ActorOptions.NewTransport builds it from the actor's gen.Process, so a
// transport can monitor its peer from the actor: gen.MessageDownProcessID,
// MessageDownPID and MessageDownNode reaching the actor become
// ConnectionLost.
package fsm
