// Package cluster delivers to a cluster of Brains: a static list of {node, name} targets or the
// members of a pg group, records spread by failover or by consistent hashing, one supervised
// connection manager (package fsm) per shard whose target is the shard's current owner. The
// agent (package agent) uses it in place of its single manager; docs/clusters.md is the design.
//
// # Call order
//
//	r, err := cluster.Start(ctx, cluster.Options{Config: cluster.Config{
//		Targets: []brain.Target{{Node: "brain1@h1", Name: "pharos_brain"}, {Node: "brain2@h2", Name: "pharos_brain"}},
//		// or Discovery: &cluster.PG{Seeds: []string{"brain1@h1", "brain2@h2"}},
//		Routing: cluster.Shard, Key: cluster.Key{Field: cluster.KeySource}},
//		Node: n, Connector: n, Mode: brain.ModeAcked, MailboxSize: ..., RingRecords: ..., RingBytes: ...,
//		SpillDir: dir})
//	shard := r.ShardOf(r.Key().OfMetric(&m))       // a record's shard: its key's hash
//	n, err := r.Deliver(shard, records)            // any goroutine; never blocks
//	s := r.Stats(); ok := r.Ready()                // per member and per shard
//	err = r.WaitDrained(ctx)                       // everything delivered (acked: acknowledged)
//	hb, err := r.Close(ctx)                        // hands the shards' tiers back
//
// # Shards and owners
//
// A record's key (its source, its name, or one tag's value) hashes to one of Config.Shards
// virtual shards, the same on every sender. Each shard is one fsm.Service with its own inbox,
// tiers, window and backoff; in the acknowledged mode its own log (SpillDir/shard-NN, or a RAM
// log) numbers its records densely under its own SourceId. A shard's owner is the first live
// member in the stable order (Failover) or the live member with the highest rendezvous score
// (Shard). When the owner changes, the router tells the shard's manager its connection is lost;
// its next Connect reaches the new owner, to which it resends everything not acknowledged (or,
// in the other modes, not confirmed) and everything buffered, in order.
//
// A member is live while its node is connected and its registered name answers a probe, every
// Config.HealthInterval; a lost connection counts at once. With Discovery a process asks a seed
// node for the group (pg:monitor/2, or pg:get_members/2 polled) and moves to the next seed when
// one is lost.
//
// # Guarantees
//
// Order is kept per key: a key's records travel through one shard, whose log or ring is
// ordered. In the acknowledged mode every record a shard's log stored is processed once when
// the Brains share their deduplication state (pharos_acked_mnesia): a new owner's probe returns
// the NextSeq the old one committed, and acknowledgements of an owner the shard left are dropped
// (the batches name a proxy per owner as ReplyTo). With a store each Brain keeps for itself,
// nothing is lost but a record may be processed by two Brains. The other modes are at least
// once across a move (what was not confirmed is resent).
//
// # Concurrency
//
// Every method of Router is safe for concurrent use; Deliver never blocks.
package cluster
