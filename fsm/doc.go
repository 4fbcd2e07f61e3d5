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
// Manager runs a Machine with four states and seven events (EventAck only
// matters in the acknowledged mode, below; the other modes ignore it in
// every state):
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
// # The acknowledged mode
//
// With Config.Delivery = DeliveryAcked the manager speaks WIRE.md's
// "Acknowledged mode": {pharos_batch, ReplyTo, SourceId, FirstSeq,
// Payloads} out through an AckTransport, {pharos_ack, SourceId, NextSeq}
// back as EventAck (the actor translates the decoded etf.Tuple, or an Ack
// value, with ParseAck). Ring, Spill and Transport are not used; a SeqLog
// holds every record until it is acknowledged: the spill directory's
// adapter, or a MemoryLog.
//
//	records ──Deliver──▶ SeqLog.Append (numbered) ──batches of ≤ N, or after T──▶ SendBatch
//	          ◀── pharos_ack NextSeq: SeqLog.Trim(NextSeq-1), the window opens again
//
// Sequence numbers are given when a record enters the manager: Append
// returns the log's number, and that number is the record's sequence
// number on the wire (less an offset where the log's numbers have holes,
// see Holes), across resends and, with a spill directory, across restarts.
// Without a spill directory, a MemoryLog numbers from 0 under a random
// SourceID drawn when it is made.
//
// States and events in this mode (Throttled is never entered: the window is
// the flow control):
//
//	state         Deliver       Tick         Attempt             FlushTick (the one timer)      ConnectionLost  Ack
//	Disconnected  append        →Connecting  ignored             ignored                        ignored         ignored
//	Connecting    append        ignored      connect+probe       ignored                        ignored         ignored
//	              ──▶ Streaming (unsynchronised)
//	Streaming     append+send   ignored      ignored             ack timeout? batch delay?      →Disconnected   see below
//
// The probe is an empty batch with FirstSeq 0: the Brain processes nothing
// and acknowledges its NextSeq for our SourceId. Its answer (the first
// acknowledgement after a connect) synchronises: sending resumes at that
// NextSeq, from the oldest untrimmed record; records found below it were
// processed already (an ack or a trim lost in a crash) and are trimmed
// without being sent. A synchronising NextSeq below one the Brain
// acknowledged before means the Brain lost its state (acks arrive in the
// order it sent them): it is logged as an error and adopted, the records
// held are renumbered from it, and those it forgot are not resent (they are
// trimmed here). Once synchronised, an ack
//   - for another SourceId, or below the NextSeq already accepted (stale),
//     is ignored and counted (pharos_fsm_acks_ignored_total{reason});
//   - above every number this manager sent is a protocol error: logged,
//     counted, ignored;
//   - above what is in flight but not above what was sent before a
//     go-back or a reconnect is a late answer: the records it covers are
//     skipped (trimmed) and sending goes on from it;
//   - above the last accepted one trims the log through NextSeq-1 and frees
//     the window (cumulative);
//   - equal to the last accepted one while batches are in flight means the
//     Brain refused a batch that started above its NextSeq (one before it
//     was lost, say to a Brain process restart): go-back-N, the manager
//     rewinds the log and resends from NextSeq. Answers to batches sent
//     before that go-back are then not taken for new refusals.
//
// Batches: a batch leaves when it holds Acked.BatchSize records, or when its
// oldest record has waited Acked.BatchDelay, and only while fewer than
// Acked.Window batches are unacknowledged. After a (re)synchronisation or a
// go-back the backlog leaves at once, in full batches.
//
// Ack timeout: while the probe or a batch is in flight, Acked.AckTimeout
// without progress (a Brain alive but stuck, SIGSTOPped past its tick
// time) is a lost connection: Disconnected, backoff, reconnect, probe,
// resend; counted in pharos_fsm_ack_timeouts_total. A send error is a lost
// connection too. Streaming has a single state timeout for both deadlines
// (ack timeout and batch delay), armed for the earlier one.
//
// What the mode promises: every record the SeqLog accepted reaches the
// Brain, in order, and with the Brain's dedup (pharos_acked.erl) is
// processed once, across lost batches, lost acks, dropped connections, a
// restarted or stopped Brain, and restarts of the manager on the same
// log. A refused Append (log full, disk refusing) is counted as dropped:
// the log never evicts an unacknowledged record, which would leave a hole.
// What it does not cover: records still in the Inbox when the process dies
// (Deliver is fire-and-forget; the Inbox outlives a crash of the actor, not
// of the process), and what the log itself loses (for a spill directory:
// see its SyncPolicy). An owner whose actor stopped for good takes what is
// left with Inbox.Drain: the agent's Close spills it or reports it.
//
// Restarts. Give the same SeqLog to every restart of the actor
// (ActorOptions.Log) and the same Inbox: an actor crash then loses nothing
// but its mailbox (acks and timers, which the next synchronisation
// replaces).
// With a spill directory a process restart keeps the SourceID, the records
// and the numbering; the first synchronisation skips what the Brain already
// has (exactly so only if the log is a NumberingStore or numbers densely
// from 0, see Holes; agent.SeqTier, the spill-directory log the agent
// uses, does both: it presents the spill log's numbers densely from 0 and
// keeps its mapping and spans in the directory). Without one (a MemoryLog) a process restart loses every record not
// yet acknowledged (in flight or waiting), and the Brain sees a new
// SourceID whose numbering starts again at 0.
//
// Holes. pharos_acked.erl never skips a number: a batch starting above its
// NextSeq is refused for ever. So where the manager finds a hole in the
// log's numbers (a record numbered above the next expected one, or a Brain
// NextSeq below the oldest record held: a log numbered from 1, numbers a
// spill directory's sequence lease skips after a crash, records a log
// dropped) it renumbers from there on: a span (Renumbering) says that from
// that log number on, wire number = log number - Delta. The Brain always
// sees consecutive numbers; each hole is logged and counted
// (pharos_fsm_seq_gaps_total). A SeqLog that also implements
// NumberingStore keeps the spans: they are saved before any record goes
// out under a new one and loaded by NewManager, so a restarted manager
// numbers every record as before and the Brain's dedup stays exact. Without
// a store the spans live in RAM: after a restart the log's numbers are
// taken as they are, and records numbered under a span that were in flight
// or acknowledged but not yet trimmed on disk may be processed twice or
// skipped. A log with dense numbers from 0 (MemoryLog) never needs a span.
// A log that can give numbers the Brain has seen again to new records (a
// spill directory that an OS crash cut short under SeqTier) also implements
// UnsentMarker: records from the marked number on were never sent, so a
// manager, restarted or not, renumbers those it finds below the Brain's
// NextSeq instead of trimming them as processed.
//
// Metrics of the mode: pharos_fsm_acked_records_total,
// pharos_fsm_inflight_records, pharos_fsm_unacked_records and _bytes,
// pharos_fsm_batches_sent_total, pharos_fsm_batch_records_total,
// pharos_fsm_resent_records_total, pharos_fsm_ack_timeouts_total,
// pharos_fsm_acks_ignored_total{reason}, pharos_fsm_seq_gaps_total; Stats
// has the same counters.
//
// # Running it
//
// Call order, for an Ergo node:
//
//	metrics, _ := fsm.NewMetrics(registry, nil)            // once per node
//	inbox, _ := fsm.NewInbox(100_000)                       // once, like the ring
//	opts := fsm.ActorOptions{Config: cfg, NewTransport: ..., Ring: ring,
//	        Spill: spill, Logger: log, Metrics: metrics, Inbox: inbox}
//	spec, err := fsm.ChildSpec("pharos_conn", opts, gen.ProcessOptions{MailboxSize: 100_000})
//	// ... put spec in an act.Supervisor's SupervisorSpec.Children
//	conn := fsm.NewInboxHandle(node, "pharos_conn", inbox)
//	err = conn.Deliver(record)                               // from any goroutine
//	err = conn.Stop(ctx)
//
// or fsm.Spawn(node, name, opts, procOpts) without a supervisor. The
// Inbox is required: records never travel as mailbox messages, which cost
// about 0.7 µs more each and, filling the mailbox whenever producers are
// ahead, made Ergo drop what else arrived (the Brain's acks among it). In
// the acknowledged mode the options are instead
//
//	seqLog, _ := fsm.NewMemoryLog(1_000_000, nil)           // or the spill directory's adapter
//	cfg.Delivery, cfg.Acked = fsm.DeliveryAcked, fsm.DefaultAckedConfig()
//	opts := fsm.ActorOptions{Config: cfg, NewAckTransport: ..., Log: seqLog, Logger: log,
//	        Metrics: metrics, Inbox: inbox}
//
// and the transport built by NewAckTransport uses the actor's pid as
// ReplyTo, so the Brain's acks reach the actor's mailbox, which the Inbox
// keeps free for them (a dropped ack was a 30 s acknowledgement timeout at
// the default).
//
// The actor builds its Manager in Init (so a restart starts from Disconnected with a
// fresh attempt counter) and kicks off the first connection attempt at
// once. The Ring and Spill in ActorOptions outlive restarts, and so does
// their content; only the records of a flush in progress when the actor
// crashes can be lost.
//
// # Concurrency
//
// Machine and Manager are not safe for concurrent use: one goroutine, the
// actor's, calls them. Transport, AckTransport, Ring, Spill and SeqLog are
// called only from that goroutine, one call at a time, with deadlines
// (ConnectTimeout, DeliverTimeout) on the transport calls (SendBatch gets
// DeliverTimeout); MemoryLog is nevertheless safe for concurrent use, so
// that others may read its Len; while one blocks, the mailbox
// keeps accepting. Handle is a value safe to copy and to use from any
// goroutine: Deliver never blocks, it appends to the Inbox and fails with
// ErrMailboxFull when the Inbox holds its limit. With
// gen.ProcessOptions.MailboxSize = 0 the mailbox is unbounded (memory is the
// limit); with a bound, each of its queues holds that many messages. State timeouts
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
