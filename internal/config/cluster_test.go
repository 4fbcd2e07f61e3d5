package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClusterKeys(t *testing.T) {
	cfg, err := Load([]string{"--config", "c.yaml"}, nil, files(map[string]string{"c.yaml": `brain:
  mode: acked
  targets: [b1@h1, b2@h2/other]
  routing: shard
  shard: {key: "tag:host", count: 32}
  ready: quorum
`}))
	require.NoError(t, err)
	assert.True(t, cfg.Clustered())
	assert.Equal(t, []string{"b1@h1", "b2@h2/other"}, cfg.Brain.Targets)
	assert.Equal(t, "tag:host", cfg.Brain.Shard.Key)

	cfg, err = Load([]string{"--brain.discovery", "pg", "--brain.seeds", "b1@h1,b2@h2"}, nil, files(nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"b1@h1", "b2@h2"}, cfg.Brain.Seeds)
	assert.Equal(t, "pharos", cfg.Brain.PG.Scope)
	assert.Equal(t, "pharos_brains", cfg.Brain.PG.Group)
	assert.Equal(t, "failover", cfg.Brain.Routing)

	cases := map[string]struct {
		args    []string
		wantKey string
	}{
		"node and targets":    {[]string{"--brain.node", "b@h", "--brain.targets", "b1@h1"}, "brain.node"},
		"addr with a cluster": {[]string{"--brain.targets", "b1@h1", "--brain.addr", "127.0.0.1:4370"}, "brain.addr"},
		"target without host": {[]string{"--brain.targets", "b1"}, "brain.targets"},
		"target bad name":     {[]string{"--brain.targets", "b1@h1/"}, "brain.targets"},
		"target twice":        {[]string{"--brain.targets", "b1@h1,b1@h1/pharos_brain"}, "brain.targets"},
		"both":                {[]string{"--brain.targets", "b1@h1", "--brain.discovery", "pg", "--brain.seeds", "b1@h1"}, "brain.targets"},
		"discovery unknown":   {[]string{"--brain.discovery", "dns", "--brain.seeds", "b1@h1"}, "brain.discovery"},
		"pg without seeds":    {[]string{"--brain.discovery", "pg"}, "brain.seeds"},
		"bad seed":            {[]string{"--brain.discovery", "pg", "--brain.seeds", "nohost"}, "brain.seeds"},
		"zero poll":           {[]string{"--brain.discovery", "pg", "--brain.seeds", "b@h", "--brain.pg.poll_interval", "0s"}, "brain.pg.poll_interval"},
		"bad routing":         {[]string{"--brain.targets", "b1@h1", "--brain.routing", "random"}, "brain.routing"},
		"bad key":             {[]string{"--brain.targets", "b1@h1", "--brain.shard.key", "tag:"}, "brain.shard.key"},
		"too many shards":     {[]string{"--brain.targets", "b1@h1", "--brain.shard.count", "5000"}, "brain.shard.count"},
		"bad ready":           {[]string{"--brain.targets", "b1@h1", "--brain.ready", "most"}, "brain.ready"},
		"zero health":         {[]string{"--brain.targets", "b1@h1", "--brain.health_interval", "0s"}, "brain.health_interval"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(tc.args, nil, files(nil))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid))
			keys := []string{}
			for _, ke := range KeyErrors(err) {
				keys = append(keys, ke.Key)
			}
			assert.Contains(t, keys, tc.wantKey, "%v", err)
		})
	}
}
