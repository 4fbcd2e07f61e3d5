// Package tier holds the storage tiers of the connection manager (package fsm) side by side:
//
//	Ring       the RAM tier of the payload, term and subject modes (a buffer.Ring)
//	Spill      their disk tier (a spill.Log read oldest first, trimmed as delivered)
//	MemoryLog  the acknowledged mode's RAM log: numbered densely from 0, kept until acknowledged
//
// The acknowledged mode's disk log is a *spill.Log itself: package spill numbers its records
// densely and persists the numbering (renumbering, the unsent marker) in its meta file, so no
// adapter is needed. Record is the one record type of all of them.
//
// # Call order
//
//	ring := tier.NewRing(r)                 // r from buffer.New
//	disk := tier.NewSpill(l)                // l from spill.Open; closed by its owner
//	mem, err := tier.NewMemoryLog(100_000, nil)
//
// # Concurrency
//
// The connection manager's goroutine is the only one to change a tier. Len and Bytes of every
// tier, and NextSeq of MemoryLog, are safe for concurrent use (the agent's Stats read them).
// A tier outlives the manager's restarts: give the same one to every incarnation.
package tier
