package agent

// The agent over a cluster of Brains (Options.Cluster): package cluster routes the records over
// one connection manager per shard; the agent stays the facade. docs/clusters.md.

import (
	"context"
	"errors"
	"fmt"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/fsm"
)

// ClusterConfig is Options.Cluster: the Brains (a static list, or a pg group), how records are
// spread over them, and when the agent counts as ready.
type ClusterConfig = cluster.Config

// ClusterStats is Stats.Cluster: the members, the shards, the discovery.
type ClusterStats = cluster.Stats

// startCluster starts the router in place of the single connection manager.
func (a *Agent) startCluster(ctx context.Context, connector brain.Connector) error {
	opts := a.opts
	if opts.Mode == ModeAcked {
		a.arena.recycle = true
	}
	r, err := cluster.Start(ctx, cluster.Options{
		Config:     *opts.Cluster,
		Node:       a.node,
		Connector:  connector,
		Mode:       opts.Mode,
		BrainQueue: opts.BrainQueue,
		Delivery:   opts.Delivery,

		RestartIntensity: opts.RestartIntensity,
		RestartPeriod:    opts.RestartPeriod,
		ManagerName:      opts.ManagerName,
		MailboxSize:      opts.MailboxSize,
		RingRecords:      opts.RingRecords,
		RingBytes:        opts.RingBytes,
		RefuseWhenFull:   opts.RefuseWhenFull,
		SpillDir:         opts.SpillDir,
		SpillOptions:     opts.SpillOptions,
		Stored:           a.arena.release,
		Registerer:       opts.Registerer,
		Logger:           opts.Logger,
	})
	if err != nil {
		if errorsIsInvalid(err) {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		return fmt.Errorf("agent: %w", err)
	}
	a.cluster = r
	return nil
}

func errorsIsInvalid(err error) bool {
	return errors.Is(err, cluster.ErrInvalid) || errors.Is(err, cluster.ErrLayout)
}

// clusterState is State in cluster mode: Streaming while enough members are reachable
// (ClusterConfig.Ready), Disconnected otherwise, NotRunning once a shard's supervisor gave up.
func (a *Agent) clusterState() fsm.State {
	switch {
	case a.cluster.Err() != nil:
		return fsm.NotRunning
	case a.cluster.Ready():
		return fsm.Streaming
	default:
		return fsm.Disconnected
	}
}

// clusterStats fills s from the router's counters.
func (a *Agent) clusterStats(s *Stats) {
	cs := a.cluster.Stats()
	m := cs.Total
	s.Delivered, s.Confirmed, s.Unconfirmed, s.Acked = m.Delivered, m.Confirmed, int(m.Unconfirmed), m.Acked
	s.Dropped, s.PossiblyLost, s.Reconnects, s.Restarts = m.Dropped, m.PossiblyLost, m.Reconnects, cs.Restarts
	s.Manager = m
	for _, sh := range cs.Shards {
		s.RingRecords += sh.Ring
		s.SpillRecords += sh.Disk
	}
	s.Cluster = &cs
}

// closeCluster is Close's work in cluster mode; it returns what could not be kept.
func (a *Agent) closeCluster(ctx context.Context) (drained bool, left, spilled, lost int) {
	drained = a.cluster.WaitDrained(ctx) == nil
	left = a.cluster.Held() + a.cluster.InboxLen()
	hb, err := a.cluster.Close(ctx)
	if err != nil {
		a.log.Error().Err(err).Msg("close the cluster's shards")
	}
	return drained, left, hb.Spilled, hb.Lost
}
