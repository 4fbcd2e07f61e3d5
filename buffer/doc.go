// Package buffer is Pharos Node's hot tier: a bounded ring of encoded records held in RAM, in
// arrival order, between the ingest side and the connection manager.
//
// # Call order
//
//	r, err := buffer.New(100_000, 64<<20) // at most 100k records and 64 MiB of record bytes
//	...
//	// ingest goroutines, any number at once:
//	evicted = r.Push(rec, evicted[:0]) // spill or count what came back
//	...
//	// the one consumer (the connection manager):
//	<-r.Ready()                         // or poll Len
//	batch = r.DrainN(batch[:0], 512)    // oldest first
//	sent, err := deliver(batch)
//	if err != nil {
//		lost := r.PutBack(batch[sent:]) // the failed remainder goes back in front
//		...                             // lost: what no longer fits; spill or count it
//	}
//
// # Bounds and eviction
//
// A Ring is bounded twice: by the number of records and by the sum of their lengths. When a Push
// would exceed either bound, the oldest records are evicted until the new one fits, and Push hands
// them back to the caller, who spills them to disk or counts them as dropped: nothing is evicted
// silently. A record longer than the byte bound can never be held; Push returns it as the only
// evicted record and leaves the ring unchanged. PutBack puts records at the front; what does not
// fit is, again, the oldest, and PutBack returns it.
//
// # Concurrency
//
// Every method is safe for concurrent use. The intended use is many producers calling Push at
// once and one consumer draining; the ring is guarded by one mutex held for a handful of
// instructions per call, which is cheaper under contention than a lock-free queue that must also
// evict (see the benchmarks). Records are stored by reference: the Ring never copies or modifies
// them, and a caller must not modify a record after pushing it.
//
// # Cost
//
// Push, Len, Bytes, and each record moved by Drain, DrainN and PutBack are O(1). The slot array
// grows by doubling up to the record bound, so after warm-up a Push allocates nothing; evicted
// records are appended to a slice the caller passes in, so a caller that reuses it allocates
// nothing either. Each held record costs its own allocation plus one 24-byte slot.
package buffer
