package erltest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	Nodes int      // Brain nodes started at once (default 3)
	Names []string // Brain processes on each node (default ["pharos_brain"])
	// Store is the acked mode's store: "mnesia" (the default: one schema, disc_copies on every
	// node) or "local" (each node its own).
	Store string
	// NoPG leaves pg out (by default every node starts the scope "pharos" and its Brain
	// processes join the group "pharos_brains").
	NoPG bool
	// NoStateDir starts the nodes of Store "local" without a state directory: the acked mode's
	// state then lives in memory only (with one, it is written to a file before every ack).
	NoStateDir bool
	ErlFlags   []string
	TickTime   time.Duration
	Env        []string
}

// Cluster is a set of reference Brain nodes on one epmd with one cookie, connected to each
// other, sharing a mnesia schema (Store "mnesia") and a pg scope. Its nodes are Brains: Kill9,
// Restart, Stats and the rest work on each.
type Cluster struct {
	Epmd   *Epmd
	Cookie string

	t     testing.TB
	opts  ClusterOptions
	mu    sync.Mutex
	nodes []*Brain
}

// StartCluster starts opts.Nodes Brain nodes, the first alone (it creates the mnesia schema)
// and then the others, which join it. Everything is stopped in t.Cleanup.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Store == "" {
		opts.Store = "mnesia"
	}
	if len(opts.Names) == 0 {
		opts.Names = []string{"pharos_brain"}
	}
	rel := FromEnv(t)
	c := &Cluster{Epmd: StartEpmd(t, rel), Cookie: "c" + randomHex(12), t: t, opts: opts}
	names := make([]string, opts.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("brain%d_%s", i+1, randomHex(3))
	}
	for i := range names {
		c.start(names[i], names)
	}
	return c
}

// AddNode starts one more Brain node that joins the running ones (their mnesia schema, their
// pg scope) and returns it.
func (c *Cluster) AddNode() *Brain {
	c.t.Helper()
	c.mu.Lock()
	n := len(c.nodes)
	var peers []string
	for _, b := range c.nodes {
		peers = append(peers, b.alive())
	}
	c.mu.Unlock()
	name := fmt.Sprintf("brain%d_%s", n+1, randomHex(3))
	return c.start(name, append(peers, name))
}

func (c *Cluster) start(alive string, peers []string) *Brain {
	c.t.Helper()
	var full []string
	for _, p := range peers {
		if p != alive {
			full = append(full, p+"@127.0.0.1")
		}
	}
	stateDir := c.t.TempDir()
	if c.opts.NoStateDir && c.opts.Store == "local" {
		stateDir = ""
	}
	b := StartBrain(c.t, BrainOptions{
		Name: c.opts.Names[0], Names: c.opts.Names, Cookie: c.Cookie, Epmd: c.Epmd,
		StateDir: stateDir, NodeName: alive, Store: c.opts.Store, Peers: full, PG: !c.opts.NoPG,
		ErlFlags: c.opts.ErlFlags, TickTime: c.opts.TickTime, Env: c.opts.Env,
	})
	c.mu.Lock()
	c.nodes = append(c.nodes, b)
	c.mu.Unlock()
	return b
}

// Nodes returns the cluster's Brain nodes, in the order they were started.
func (c *Cluster) Nodes() []*Brain {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Brain(nil), c.nodes...)
}

// ClusterStats is the cluster's view of the acknowledged mode (test/erlang/src/pharos_brain_cluster.erl):
// NextSeq per SourceId and, per source (key), the accounting of its `seq` tags.
type ClusterStats struct {
	Acked map[string]int64    `json:"acked"`
	Keys  map[string]KeyStats `json:"keys"`
	Nodes []string            `json:"nodes"` // mnesia's running nodes
}

// KeyStats is one source's accounting over the cluster: its records numbered 0..n-1 went
// through exactly once and in order iff Received = Next = n and OrderErrors = 0.
type KeyStats struct {
	Next        int64 `json:"next"`
	Received    int64 `json:"received"`
	OrderErrors int64 `json:"order_errors"`
}

// Exactly reports whether the key's records 0..n-1 were processed once each, in order.
func (k KeyStats) Exactly(n int64) bool {
	return k.Next == n && k.Received == n && k.OrderErrors == 0
}

// ClusterStats reads the cluster's tables through this node (Store "mnesia").
func (b *Brain) ClusterStats() ClusterStats {
	b.t.Helper()
	var s ClusterStats
	if err := json.Unmarshal([]byte(b.mustControl("cluster_stats")), &s); err != nil {
		b.t.Fatalf("erltest: cluster_stats: %v", err)
	}
	return s
}

// PGLeave makes the node's Brain process name leave the pg group (it keeps running).
func (b *Brain) PGLeave(name string) {
	b.t.Helper()
	if out := b.Eval(fmt.Sprintf("pg:leave(pharos, pharos_brains, whereis(%s))", name)); out != "ok" {
		b.t.Fatalf("erltest: pg:leave: %s", out)
	}
}

// Names are the node's Brain processes' registered names.
func (b *Brain) Names() []string {
	if len(b.opts.Names) > 0 {
		return b.opts.Names
	}
	return []string{b.Name}
}

func (b *Brain) alive() string {
	alive, _, _ := strings.Cut(b.Node, "@")
	return alive
}

// clusterArgs are the erl flags of the cluster settings.
func (b *Brain) clusterArgs() []string {
	o := b.opts
	var args []string
	if len(o.Names) > 0 {
		args = append(args, "-pharos_brain", "names", "["+strings.Join(o.Names, ",")+"]")
	}
	if o.Store != "" {
		args = append(args, "-pharos_brain", "store", o.Store)
	}
	if len(o.Peers) > 0 {
		quoted := make([]string, len(o.Peers))
		for i, p := range o.Peers {
			quoted[i] = "'" + p + "'"
		}
		args = append(args, "-pharos_brain", "peers", "["+strings.Join(quoted, ",")+"]")
	}
	if o.PG {
		args = append(args, "-pharos_brain", "pg", "true")
	}
	return args
}
