// Package spill is Pharos Node's cold tier: an append-only, segmented log of records in one
// directory, where records wait, across restarts, until they are delivered or acknowledged. It
// also owns their numbers: dense from 0 for a new directory, across restarts and crashes.
//
// The on-disk format is specified in docs/spill-format.md; the reasoning behind the design is in
// docs/spill.md.
//
// # Call order
//
//	l, err := spill.Open(dir, spill.WithSync(spill.SyncInterval), spill.WithMaxBytes(1<<30),
//		spill.WithLogger(&logger), spill.WithRegisterer(reg))
//	rec, id := l.Recovery(), l.SourceID() // what a crash cost; the identity kept across restarts
//
//	seq, err := l.Append(record) // any goroutine: seq is NextSeq() before the call
//
//	// the one consumer: replay oldest first, trim what was delivered
//	batch, err := l.Read(batch[:0], 512)
//	if deliver(batch) == nil {
//		l.Trim(batch[len(batch)-1].Seq) // or, in acknowledged mode, the acknowledged number
//	} else {
//		l.Rewind() // read the same records again later
//	}
//	n, err := l.Drain(ctx, 512, deliver) // or all of that in a loop
//
//	// acknowledged mode: numbers the Brain does not expect (a hole, a Brain ahead or reset)
//	err = l.Renumber(from, to) // then Rewind and read again under the new numbers
//	u, ok := l.UnsentFrom()    // set by Open after a crash; ClearUnsent before sending past it
//
//	err = l.Close()
//
// # Lifecycle
//
// Open never refuses a directory because of its content (damage is cut, skipped and counted in
// Recovery; a version-1 directory is converted) and never panics; it fails only when the
// directory cannot be used at all (created, listed, locked, its meta file written) or when a
// version-1 numbering file cannot be converted (ErrNumberingFile). Open records durably that the
// directory is open and Close that it was closed cleanly; after an unclean close Open sets the
// unsent marker (see UnsentFrom). Inspect, Verify and Repair serve the `pharos-node spill`
// command; Repair keeps a .broken copy of everything it changes and every intact record.
//
// # Numbers
//
// Append numbers records densely; after a crash numbering resumes right after the last record
// stored or trimmed (records lost with the write buffer were never read, so their numbers are
// given again). Renumber changes the numbers from a record on; Read, Trim, Stats and Inspect
// speak the current numbers. Numbers grow along the untrimmed records: Trim(n) trims every
// untrimmed record numbered up to n.
//
// # Durability
//
// The SyncPolicy decides when an Append is durable: SyncAlways (Append returns after fsync;
// concurrent Appends share one fsync), SyncInterval (a group commit every interval, 100 ms by
// default), SyncNever (the OS decides). Trim points reach the meta file at most once per
// interval: a crash may replay records trimmed just before it, never lose untrimmed ones.
// Renumber and ClearUnsent are durable when they return.
//
// # Bounds and errors
//
// The directory never grows past WithMaxBytes: DropOldest deletes the oldest segments and counts
// the untrimmed records they held (Stats.Dropped); Refuse makes Append fail with ErrFull. A
// failed write returns a *WriteError (errors.Is(err, ErrNoSpace) for a full disk) and damages
// nothing stored; the next Append retries. Renumber keeps at most WithMaxSpans renumberings
// whose records are not all trimmed (ErrTooManySpans).
//
// # Concurrency
//
// A Log is safe for concurrent use. Appends from many goroutines are serialized by one mutex
// held for an encode and a memory copy; writes to the OS are batched; fsyncs run outside the
// mutex. Read, Rewind, Trim, Drain, Renumber and ClearUnsent are for one consumer. NextSeq,
// UnsentFrom, Stats, Len and Bytes may be called from anywhere. One directory is used by one Log
// at a time: Open and Repair take an flock (ErrLocked otherwise).
//
// # Filesystem seam
//
// All file access goes through the FS interface (WithFS), so tests inject short writes, ENOSPC
// and failed syncs.
package spill
