package main

import (
	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/internal/config"
)

// clusterConfig maps brain.targets, brain.discovery and the other cluster keys onto the
// agent's cluster (docs/clusters.md). config.Validate has checked them; the errors remain for
// safety.
func clusterConfig(cfg config.Config) (*agent.ClusterConfig, error) {
	b := cfg.Brain
	cc := &agent.ClusterConfig{Shards: b.Shard.Count, HealthInterval: b.HealthInterval.D(),
		SpillMaxBytes: int64(cfg.Spill.MaxBytes), SpillSegmentBytes: int64(cfg.Spill.SegmentBytes)}
	for _, s := range b.Targets {
		t, err := cluster.ParseTarget(s, b.Name)
		if err != nil {
			return nil, &config.KeyError{Key: "brain.targets", Reason: err.Error()}
		}
		cc.Targets = append(cc.Targets, t)
	}
	if b.Discovery == "pg" {
		cc.Discovery = &cluster.PG{Scope: b.PG.Scope, Group: b.PG.Group, Seeds: b.Seeds,
			Poll: b.PG.Poll, PollInterval: b.PG.PollInterval.D()}
	}
	var err error
	if cc.Routing, err = cluster.ParseRouting(b.Routing); err != nil {
		return nil, &config.KeyError{Key: "brain.routing", Reason: err.Error()}
	}
	if cc.Key, err = cluster.ParseKey(b.Shard.Key); err != nil {
		return nil, &config.KeyError{Key: "brain.shard.key", Reason: err.Error()}
	}
	if cc.Ready, err = cluster.ParseReady(b.Ready); err != nil {
		return nil, &config.KeyError{Key: "brain.ready", Reason: err.Error()}
	}
	return cc, nil
}
