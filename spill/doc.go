// Package spill is Pharos Node's cold tier: an append-only, segmented log of records in one
// directory, where records the RAM ring cannot hold wait, across restarts, until they are
// delivered.
//
// The on-disk format (file names, segment and frame layout, type values, the meta file, what
// recovery does with each kind of damage) is specified in one document,
// docs/spill-format.md, and implemented in encoder.go and decoder.go.
//
// # Call order
//
//	l, err := spill.Open(dir,
//		spill.WithSync(spill.SyncInterval), spill.WithSyncInterval(10*time.Millisecond),
//		spill.WithMaxBytes(1<<30), spill.WithOverflow(spill.DropOldest),
//		spill.WithLogger(&logger), spill.WithRegisterer(reg))
//	rec := l.Recovery()          // what a crash or damage cost, counted
//	id := l.SourceID()           // the sender identity, the same across restarts
//
//	seq, err := l.Append(record) // any goroutine; seq never goes back, across restarts too
//
//	// the one consumer: replay oldest first, trim what was delivered
//	batch, err := l.Read(batch[:0], 512)
//	if deliver(batch) == nil {
//		l.Trim(batch[len(batch)-1].Seq) // or, in acknowledged mode, the acknowledged seq
//	} else {
//		l.Rewind() // read the same records again later
//	}
//	// or, for the simple case:
//	n, err := l.Drain(ctx, 512, deliver)
//
//	err = l.Close()
//
// Records numbered while in RAM (acknowledged mode) take their numbers from Reserve and are
// spilled later with AppendSeq, so RAM and disk share one sequence.
//
// # Durability
//
// The SyncPolicy decides when an Append is durable: SyncAlways (Append returns after fsync;
// concurrent Appends share one fsync), SyncInterval (a group commit every interval, 100 ms by
// default: a process crash loses only what was still in the write buffer, an OS crash or power
// loss at most the last interval), SyncNever (the OS decides). Sequence numbers are reserved in
// the meta file a lease at a time, so they never go back, even after a crash. Trim points are
// persisted at most once per sync interval: a crash may replay records trimmed in the last
// interval again (the Brain drops duplicates by sequence number in acknowledged mode), never
// lose untrimmed ones.
//
// # Bounds and errors
//
// The directory never grows past the size cap (WithMaxBytes): at the cap, DropOldest deletes the
// oldest segments and counts the untrimmed records they held (Stats.Dropped, DroppedBytes);
// Refuse makes Append fail with ErrFull, storing nothing. A failed write (a full disk, ENOSPC)
// returns a *WriteError for which errors.Is(err, ErrNoSpace) holds; nothing already stored is
// damaged, because a write never goes anywhere but past the last good frame, and the next
// Append retries, so writing resumes once space returns.
//
// # Recovery
//
// Open never refuses a directory because of its content and never panics. It validates every
// frame (CRC-32C of header and payload), cuts a torn tail off the last segment, skips a damaged
// region and resumes at the next valid frame, and counts exactly what was lost (Recovery) from
// the dense record numbers every frame carries. A restarted process replays every record not
// yet trimmed, oldest first. Inspect, Verify and Repair do the same for the
// `pharos-node spill inspect|verify|repair` command; Repair keeps a .broken copy of everything
// it changes and every intact record.
//
// # Concurrency
//
// A Log is safe for concurrent use. Appends from many goroutines are serialized by one mutex
// held for an encode and a memory copy; writes to the OS are batched; fsyncs run outside the
// mutex. Read, Rewind, Trim and Drain share one read cursor and are meant for one consumer. One
// directory is used by one Log at a time: Open and Repair take an flock (ErrLocked otherwise).
//
// # Memory
//
// Besides its write buffer (WithFlushBytes), a Log keeps the bytes it wrote last, up to
// WithTailBytes (4 MiB by default). A consumer that reads close behind the appenders and trims
// what it read (acknowledged delivery: append, read a batch, trim it when acknowledged) is
// served from there: Read does not read the segment files back, and Trim does not scan again
// the records Read handed out. Older records (after a Rewind to them, after a restart, once the
// tail has moved on) are read from the files; the results are the same either way.
//
// # Filesystem seam
//
// All file access goes through the FS interface (WithFS), so tests inject short writes, ENOSPC
// and failed syncs.
package spill
