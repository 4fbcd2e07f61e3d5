package cluster_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// BenchmarkClusterAcked measures, in one run, the acknowledged mode's throughput (records/s
// processed and acknowledged, from the first record handed to the agent until the last is
// acknowledged) into 1, 2 and 3 reference Brain processes, routing shard over the default 32
// shards, at most benchMaxUnacked records handed over ahead of the acknowledgements:
//
//   - p1: one Brain process (the reference of the ratios), the shards' RAM logs;
//   - single: the same Brain process through the agent's single manager (Options.Brain, no
//     cluster, one RAM log): what the shards cost;
//   - p2_node, p3_node: 2 and 3 Brain processes on one node;
//   - p2_nodes, p3_nodes: 2 and 3 Brain nodes, one process each;
//   - mnesia_p1: one Brain process whose store is pharos_acked_mnesia on a cluster of 3 nodes
//     (each batch one mnesia:sync_transaction replicated to the 3), beside p1's local store (in
//     memory): the difference of their wall time per batch is the mnesia store's cost;
//   - p1_disk, p2_nodes_disk: p1 and p2_nodes through a spill directory per shard.
//
// The records are metrics of 64 sources (the key) in runs of 256 per source. Each iteration
// sends PHAROS_BENCH_COUNT records (default 200,000) per variant. It reports each rate, the
// ratios to p1 (to p1_disk for the disk one), the share of the records the busiest Brain got
// (rendezvous hashing of 32 shards is a random split: its ceiling on the speed-up), and for each
// variant the CPU per record of this process (the sender) and of the Brain nodes; on 2 cores
// shared by both, their sum bounds the rate.
func BenchmarkClusterAcked(b *testing.B) {
	n := 200_000
	if v := os.Getenv("PHAROS_BENCH_COUNT"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("PHAROS_BENCH_COUNT=%q", v)
		}
	}
	names := []string{"pharos_brain_1", "pharos_brain_2", "pharos_brain_3"}
	one := erltest.StartCluster(b, erltest.ClusterOptions{Nodes: 1, Names: names, Store: "local", NoPG: true, NoStateDir: true})
	three := erltest.StartCluster(b, erltest.ClusterOptions{Nodes: 3, Names: names[:1], Store: "local", NoPG: true, NoStateDir: true})
	mn := erltest.StartCluster(b, erltest.ClusterOptions{Nodes: 3, Names: names[:1], Store: "mnesia", NoPG: true})
	type variant struct {
		name    string
		c       *erltest.Cluster
		targets []brain.Target
		disk    bool
	}
	at := func(c *erltest.Cluster, nodes int, names ...string) []brain.Target {
		var ts []brain.Target
		for i := range nodes {
			for _, name := range names {
				ts = append(ts, brain.Target{Node: c.Nodes()[i].Node, Name: name})
			}
		}
		return ts
	}
	variants := []variant{
		{"p1", one, at(one, 1, names[0]), false},
		{"single", one, at(one, 1, names[0]), false},
		{"p2_node", one, at(one, 1, names[:2]...), false},
		{"p3_node", one, at(one, 1, names...), false},
		{"p2_nodes", three, at(three, 2, names[0]), false},
		{"p3_nodes", three, at(three, 3, names[0]), false},
		{"mnesia_p1", mn, at(mn, 1, names[0]), false},
		{"p1_disk", one, at(one, 1, names[0]), true},
		{"p2_nodes_disk", three, at(three, 2, names[0]), true},
	}
	// Warm up, untimed: code loading, heaps and tables of fresh nodes.
	for _, v := range []variant{variants[3], variants[5], variants[6]} {
		benchClusterSend(b, v.c, v.targets, min(n, 100_000), false, false)
	}
	res := make([]clusterResult, len(variants))
	total := 0
	for b.Loop() {
		total += n
		for i, v := range variants {
			settle()
			res[i].add(benchClusterSend(b, v.c, v.targets, n, v.disk, v.name == "single"))
		}
	}
	rate := func(r clusterResult) float64 { return float64(total) / r.wall.Seconds() }
	var line strings.Builder
	for i, v := range variants {
		r, base := rate(res[i]), rate(res[0])
		if v.disk {
			base = rate(res[7])
		}
		b.ReportMetric(r, v.name+"_rec/s")
		if i != 0 && i != 7 {
			b.ReportMetric(r/base, v.name+"/p1")
		}
		b.ReportMetric(res[i].busiest/float64(res[i].rounds), v.name+"_busiest_share")
		b.ReportMetric(float64(res[i].sender.Microseconds())/float64(total), v.name+"_sender_cpu_us/rec")
		b.ReportMetric(float64(res[i].brain.Microseconds())/float64(total), v.name+"_brain_cpu_us/rec")
		fmt.Fprintf(&line, "; %s %.0f/s (%.2fx, busiest %.0f%%, cpu %.2f + %.2f µs/rec)", v.name, r, r/base,
			100*res[i].busiest/float64(res[i].rounds),
			float64(res[i].sender.Microseconds())/float64(total), float64(res[i].brain.Microseconds())/float64(total))
	}
	perBatch := func(r clusterResult) float64 { return float64(r.wall.Microseconds()) / float64(r.batches) }
	local, mnesia := perBatch(res[0]), perBatch(res[6])
	b.ReportMetric(local, "local_us/batch")
	b.ReportMetric(mnesia, "mnesia_us/batch")
	b.ReportMetric(mnesia-local, "mnesia_cost_us/batch")
	b.Logf("OTP %s, %d records per variant%s", one.Nodes()[0].Release.Version, total, line.String())
	b.Logf("one Brain process: %.0f µs per batch with the local store (%.0f records per batch), %.0f with the mnesia store on 3 nodes (%.0f): the mnesia store costs %.0f µs per batch",
		local, float64(total)/float64(res[0].batches), mnesia, float64(total)/float64(res[6].batches), mnesia-local)
}

// benchMaxUnacked bounds the records handed over ahead of the acknowledgements, as `send
// --max-unacked` in cmd/pharos-node's benchmark: the generator must not outrun the Brains by
// millions. Spread over 32 shards it is 5,000 records each, five full batches: with the single
// manager's 20,000 each shard would get 625, and every batch would leave partial, after the
// batch delay, making the rate the lead divided by that delay rather than what the Brains take.
const benchMaxUnacked = 160_000

type clusterResult struct {
	wall, sender, brain time.Duration
	batches             uint64
	busiest             float64 // the busiest member's share of the records, summed over rounds
	rounds              int
}

func (r *clusterResult) add(o clusterResult) {
	r.wall += o.wall
	r.sender += o.sender
	r.brain += o.brain
	r.batches += o.batches
	r.busiest += o.busiest
	r.rounds++
}

// benchClusterSend sends n records with a fresh agent (its own node and spill directory) to
// targets, routing shard, and returns the time until every record is acknowledged.
// With single, it goes through the agent's single manager to targets[0] instead.
func benchClusterSend(b *testing.B, c *erltest.Cluster, targets []brain.Target, n int, disk, single bool) clusterResult {
	b.Helper()
	opts := agent.Options{
		NodeName:    "pharos_bench_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "@127.0.0.1",
		NodeOptions: node.Options{Cookie: c.Cookie, EPMDPort: c.Epmd.Port},
		Cluster:     &agent.ClusterConfig{Targets: targets, Routing: cluster.Shard, HealthInterval: 100 * time.Millisecond},
		Mode:        agent.ModeAcked,
		// Each shard's RAM log holds RingRecords / shards: room for the whole lead on any one.
		RingRecords: benchMaxUnacked * cluster.DefaultShards,
		MailboxSize: benchMaxUnacked,
		Logger:      zerolog.Nop(),
	}
	if disk {
		opts.SpillDir = b.TempDir()
	}
	if single {
		opts.Cluster, opts.Brain, opts.RingRecords = nil, targets[0], benchMaxUnacked*2
	}
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			b.Errorf("close: %v", err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !ready(a, len(targets)); {
		if time.Now().After(deadline) {
			b.Fatalf("the agent did not reach its %d Brains: %+v", len(targets), a.Stats().Cluster)
		}
		time.Sleep(5 * time.Millisecond)
	}
	batch := make([]etf.Metric, 512)
	sources := make([]string, 64)
	for k := range sources {
		sources[k] = fmt.Sprintf("src-%d-%d", k, time.Now().UnixNano()) // a fresh sequence per round
	}
	brain0 := clusterCPU(b, c)
	cpu0 := processCPU()
	start := time.Now()
	for sent := 0; sent < n; {
		// At most benchMaxUnacked records ahead of the acknowledgements, as `send --max-unacked`
		// (cmd/pharos-node's benchmark): the generator must not outrun the Brains by millions.
		for deadline := time.Now().Add(2 * time.Minute); a.Unacknowledged() > benchMaxUnacked; {
			if time.Now().After(deadline) {
				b.Fatalf("%d held after 2 min: %+v", a.Unacknowledged(), a.Stats())
			}
			time.Sleep(50 * time.Microsecond)
		}
		k := min(len(batch), n-sent)
		for j := range k {
			i := sent + j
			// Source (i/256)%64, numbered densely per source in its seq tag (the reference
			// Brain tracks each source's numbers, in one step for a run that follows on).
			seq := (i/(256*64))*256 + i%256
			batch[j] = etf.Metric{Name: "bench.cluster", Kind: etf.Gauge, Value: float64(i),
				Tags: []etf.Tag{{Key: "seq", Value: strconv.Itoa(seq)}}, TimestampMs: 1_700_000_000_000 + int64(i),
				Source: sources[(i/256)%64]}
		}
		for off := 0; off < k; {
			d, err := a.DeliverMetrics(batch[off:k])
			off += d
			if err != nil {
				time.Sleep(100 * time.Microsecond)
			}
		}
		sent += k
	}
	for deadline := time.Now().Add(2 * time.Minute); a.Stats().Acked < uint64(n); {
		if time.Now().After(deadline) {
			st := a.Stats()
			b.Fatalf("%d of %d records acknowledged after 2 min (dropped %d): %+v", st.Acked, n, st.Dropped, st.Cluster.Members)
		}
		time.Sleep(2 * time.Millisecond)
	}
	r := clusterResult{wall: time.Since(start), sender: processCPU() - cpu0, brain: clusterCPU(b, c) - brain0}
	st := a.Stats()
	r.batches = st.Manager.BatchesSent
	var most uint64
	if st.Cluster == nil {
		most = uint64(n)
	} else {
		for _, m := range st.Cluster.Members {
			most = max(most, m.Acked)
		}
	}
	r.busiest = float64(most) / float64(n)
	return r
}

// ready reports whether the agent reaches its n Brains (streaming, without a cluster).
func ready(a *agent.Agent, n int) bool {
	st := a.Stats()
	if st.Cluster == nil {
		return st.State.String() == "streaming"
	}
	up := 0
	for _, m := range st.Cluster.Members {
		if m.Up {
			up++
		}
	}
	return a.Ready() && up == n
}

func clusterCPU(b *testing.B, c *erltest.Cluster) time.Duration {
	var d time.Duration
	for _, n := range c.Nodes() {
		d += n.CPUTime()
	}
	return d
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle starts a variant on a quiet machine: dirty pages written back, the heap collected.
func settle() {
	syscall.Sync()
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
}
