package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"ergo.services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
)

// Sentinel errors.
var (
	// ErrInvalid is wrapped by every refusal of Config or Options.
	ErrInvalid = errors.New("cluster: invalid options")
	// ErrNoMember: no member is live; a shard waits for one.
	ErrNoMember = errors.New("cluster: no live member")
	// ErrLayout: the spill directory was laid out for another number of shards and still holds
	// records (see Config.Shards).
	ErrLayout = errors.New("cluster: spill directory layout")
)

// Routing decides which member a shard goes to.
type Routing uint8

const (
	// Failover sends every shard to the first live member, in a stable order (the configured
	// order of Config.Targets; discovered members sorted by node, then name), the next one when
	// it is lost.
	Failover Routing = iota
	// Shard spreads the shards over the live members by rendezvous hashing: a member that joins
	// takes its share from the others, a member that leaves hands only its own share on.
	Shard
)

func (r Routing) String() string {
	if r == Shard {
		return "shard"
	}
	return "failover"
}

// ParseRouting reads "failover" or "shard".
func ParseRouting(s string) (Routing, error) {
	switch s {
	case "failover":
		return Failover, nil
	case "shard":
		return Shard, nil
	}
	return 0, fmt.Errorf("%w: routing %q (want failover or shard)", ErrInvalid, s)
}

// Ready is when the cluster counts as ready (agent.Ready, /readyz).
type Ready uint8

const (
	ReadyAny    Ready = iota // at least one member reachable
	ReadyQuorum              // more than half of the members reachable
	ReadyAll                 // every member reachable
)

func (r Ready) String() string {
	switch r {
	case ReadyQuorum:
		return "quorum"
	case ReadyAll:
		return "all"
	}
	return "any"
}

// ParseReady reads "any", "quorum" or "all".
func ParseReady(s string) (Ready, error) {
	switch s {
	case "any":
		return ReadyAny, nil
	case "quorum":
		return ReadyQuorum, nil
	case "all":
		return ReadyAll, nil
	}
	return 0, fmt.Errorf("%w: ready %q (want any, quorum or all)", ErrInvalid, s)
}

// Key is what records are sharded on: their source, their name, or the value of one tag.
type Key struct {
	Field KeyField
	Tag   string // with KeyTag
}

// KeyField names the part of a record a Key reads.
type KeyField uint8

const (
	KeySource KeyField = iota // the record's source (the default)
	KeyName                   // the metric's or alert's name
	KeyTag                    // the value of the tag Key.Tag ("" when the record lacks it)
)

func (k Key) String() string {
	switch k.Field {
	case KeyName:
		return "name"
	case KeyTag:
		return "tag:" + k.Tag
	}
	return "source"
}

// ParseKey reads "source", "name" or "tag:KEY".
func ParseKey(s string) (Key, error) {
	switch {
	case s == "source":
		return Key{Field: KeySource}, nil
	case s == "name":
		return Key{Field: KeyName}, nil
	case strings.HasPrefix(s, "tag:") && len(s) > len("tag:"):
		return Key{Field: KeyTag, Tag: s[len("tag:"):]}, nil
	}
	return Key{}, fmt.Errorf("%w: key %q (want source, name or tag:KEY)", ErrInvalid, s)
}

// PG is discovery through a pg group on the Brain nodes (docs/clusters.md): this hidden node
// cannot join pg itself, so it asks a seed.
type PG struct {
	Scope string   // the pg scope's name (default DefaultPGScope)
	Group string   // the group the Brain processes join (default DefaultPGGroup)
	Seeds []string // Brain nodes to ask, in turn; required
	// PollInterval is how often the members are asked for when the seed has no pg:monitor/2
	// (OTP 25.0), or when Poll is set (default DefaultPollInterval).
	PollInterval time.Duration
	// Poll asks for the members every PollInterval instead of following pg:monitor/2.
	Poll bool
}

// Defaults.
const (
	DefaultPGScope        = "pharos"
	DefaultPGGroup        = "pharos_brains"
	DefaultPollInterval   = 5 * time.Second
	DefaultHealthInterval = time.Second
	DefaultShards         = 32 // with Shard routing; Failover uses 1
	MaxShards             = 1024
)

// Config is the cluster as a user configures it: which Brains, how records are spread over
// them, when the cluster is ready.
type Config struct {
	// Targets is a static list of Brains. Exactly one of Targets and Discovery is set.
	Targets []brain.Target
	// Discovery finds the Brains in a pg group.
	Discovery *PG
	// Routing: Failover (the default) or Shard.
	Routing Routing
	// Key is what Shard routing hashes (default: the source).
	Key Key
	// Shards is the number of virtual shards (default DefaultShards with Shard routing, 1 with
	// Failover). Each has its own connection manager and, in the acknowledged mode, its own log
	// and SourceId. It is part of the spill directory's layout: a directory laid out for another
	// number refuses to start while it holds records (ErrLayout).
	Shards int
	// Ready is when the cluster is ready (default ReadyAny).
	Ready Ready
	// HealthInterval is how often each member is probed (default DefaultHealthInterval).
	HealthInterval time.Duration
	// SpillMaxBytes and SpillSegmentBytes are the spill directory's size limit and segment size
	// (defaults spill.DefaultMaxBytes, spill.DefaultSegmentSize), for all shards together: each
	// gets SpillMaxBytes / Shards, in segments of at most a quarter of that.
	SpillMaxBytes     int64
	SpillSegmentBytes int64
}

// Options configure Start: the Config and what the agent provides.
type Options struct {
	Config

	// Node runs the connection managers; Connector reaches the Brains from it.
	Node      gen.Node
	Connector brain.Connector
	// Mode is the delivery mode; BrainQueue the backpressure on each Brain's mailbox.
	Mode       brain.Mode
	BrainQueue brain.QueueLimit
	// Delivery tunes every shard's connection manager (its Delivery field is set from Mode).
	// MaxPending is divided among the shards.
	Delivery fsm.Config
	// RestartIntensity and RestartPeriod of each shard's supervisor (fsm.ServiceOptions).
	RestartIntensity int
	RestartPeriod    time.Duration
	// ManagerName prefixes the shards' registered names (ManagerName_07); MailboxSize,
	// RingRecords and RingBytes are divided among the shards (each gets at least 1,000 records
	// of inbox and ring; a RAM log of the acknowledged mode, RingRecords / Shards).
	ManagerName string
	MailboxSize int
	RingRecords int
	RingBytes   int
	// RefuseWhenFull (not acked, no SpillDir): each shard's inbox keeps a RAM budget at its
	// ring's bounds and refuses deliveries past it with fsm.ErrRAMFull instead of the ring
	// dropping its oldest records (fsm.NewInboxWithOptions).
	RefuseWhenFull bool
	// SpillDir holds one directory per shard (shard-07) and the layout file; SpillOptions go to
	// each (their size limit divided among the shards).
	SpillDir     string
	SpillOptions []spill.Option

	// Stored is fsm.ActorOptions.Stored of every shard (the acknowledged mode's arena).
	Stored func([][]byte)
	// Registerer receives each shard's fsm metrics (const label shard) and the members' metrics
	// (label brain); nil: not exported.
	Registerer prometheus.Registerer
	Logger     zerolog.Logger
}

// withDefaults checks the Config and fills in its defaults.
func (c *Config) withDefaults() error {
	if (len(c.Targets) > 0) == (c.Discovery != nil) {
		return fmt.Errorf("%w: set either Targets or Discovery", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if _, _, err := node.SplitNodeName(t.Node); err != nil || t.Name == "" {
			return fmt.Errorf("%w: target %q/%q: want name@host and a registered name", ErrInvalid, t.Node, t.Name)
		}
		if seen[memberKey(t)] {
			return fmt.Errorf("%w: target %s listed twice", ErrInvalid, memberKey(t))
		}
		seen[memberKey(t)] = true
	}
	if d := c.Discovery; d != nil {
		if len(d.Seeds) == 0 {
			return fmt.Errorf("%w: pg discovery needs seeds", ErrInvalid)
		}
		for _, s := range d.Seeds {
			if _, _, err := node.SplitNodeName(s); err != nil {
				return fmt.Errorf("%w: seed %q: %w", ErrInvalid, s, err)
			}
		}
		if d.Scope == "" {
			d.Scope = DefaultPGScope
		}
		if d.Group == "" {
			d.Group = DefaultPGGroup
		}
		if d.PollInterval == 0 {
			d.PollInterval = DefaultPollInterval
		}
		if d.PollInterval < 0 {
			return fmt.Errorf("%w: pg poll interval %v", ErrInvalid, d.PollInterval)
		}
	}
	if c.Routing > Shard || c.Ready > ReadyAll || c.Key.Field > KeyTag || (c.Key.Field == KeyTag && c.Key.Tag == "") {
		return fmt.Errorf("%w: routing %d, ready %d, key %+v", ErrInvalid, c.Routing, c.Ready, c.Key)
	}
	if c.Shards == 0 {
		c.Shards = 1
		if c.Routing == Shard {
			c.Shards = DefaultShards
		}
	}
	if c.Shards < 1 || c.Shards > MaxShards {
		return fmt.Errorf("%w: shards %d (want 1..%d)", ErrInvalid, c.Shards, MaxShards)
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	if c.HealthInterval < 0 {
		return fmt.Errorf("%w: health interval %v", ErrInvalid, c.HealthInterval)
	}
	return nil
}

// memberKey names a member: node/name, as in configuration files and the brain label.
func memberKey(t brain.Target) string { return t.Node + "/" + t.Name }

// ParseTarget reads NODE or NODE/NAME (NAME defaulting to defaultName).
func ParseTarget(s, defaultName string) (brain.Target, error) {
	nodeName, name, found := strings.Cut(s, "/")
	if !found {
		name = defaultName
	}
	if _, _, err := node.SplitNodeName(nodeName); err != nil {
		return brain.Target{}, fmt.Errorf("%w: target %q: %w", ErrInvalid, s, err)
	}
	if name == "" || strings.ContainsAny(name, " @'\"/") {
		return brain.Target{}, fmt.Errorf("%w: target %q: the registered name must be an atom such as pharos_brain", ErrInvalid, s)
	}
	return brain.Target{Node: nodeName, Name: name}, nil
}
