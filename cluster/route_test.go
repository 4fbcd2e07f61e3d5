package cluster

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/etf"
)

func testMember(i int) *member {
	t := brain.Target{Node: fmt.Sprintf("brain%d@host", i), Name: "pharos_brain"}
	return &member{target: t, key: memberKey(t), hash: mix64(fnv1a(memberKey(t))), order: 1 << 20}
}

func owners(routing Routing, shards int, live []*member) []string {
	stableOrder(live)
	out := make([]string, shards)
	for s := range out {
		if i := ownerOf(routing, s, live); i >= 0 {
			out[s] = live[i].key
		}
	}
	return out
}

// A member joining takes shards only from others to itself; a member leaving hands on only its
// own shards: rendezvous hashing moves nothing else.
func TestShardMovesOnlyItsShare(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shards := rapid.IntRange(1, 256).Draw(t, "shards")
		ids := rapid.SliceOfNDistinct(rapid.IntRange(0, 1000), 1, 12, rapid.ID[int]).Draw(t, "members")
		var live []*member
		for _, id := range ids {
			live = append(live, testMember(id))
		}
		before := owners(Shard, shards, live)
		joiner := testMember(2000 + rapid.IntRange(0, 100).Draw(t, "joiner"))
		after := owners(Shard, shards, append(append([]*member{}, live...), joiner))
		for s := range before {
			if after[s] != before[s] && after[s] != joiner.key {
				t.Fatalf("shard %d moved from %s to %s when %s joined", s, before[s], after[s], joiner.key)
			}
		}
		leaver := rapid.IntRange(0, len(live)-1).Draw(t, "leaver")
		rest := append(append([]*member{}, live[:leaver]...), live[leaver+1:]...)
		afterLeave := owners(Shard, shards, rest)
		for s := range before {
			if before[s] != live[leaver].key && afterLeave[s] != before[s] {
				t.Fatalf("shard %d moved from %s to %s when %s left", s, before[s], afterLeave[s], live[leaver].key)
			}
			if len(rest) == 0 && afterLeave[s] != "" {
				t.Fatalf("shard %d owned with no member live", s)
			}
		}
	})
}

// Shard routing spreads shards as a fair random draw would: over 200 sets of 4 members, the
// busiest owns on average about 19.6 of 64 (the expected maximum of 4 binomial(64, 1/4)
// draws); failover sends all to the first in order.
func TestRoutingSpread(t *testing.T) {
	total := 0
	for trial := range 200 {
		var live []*member
		for i := range 4 {
			live = append(live, testMember(trial*10+i))
		}
		count := map[string]int{}
		for _, o := range owners(Shard, 64, live) {
			count[o]++
		}
		most := 0
		for _, c := range count {
			most = max(most, c)
		}
		total += most
	}
	if mean := float64(total) / 200; mean < 18 || mean > 21.5 {
		t.Errorf("the busiest of 4 members owns %.1f of 64 shards on average; a fair draw gives about 19.6", mean)
	}
	live := []*member{testMember(1), testMember(2), testMember(3), testMember(4)}
	live[2].order, live[0].order = 0, 1
	for s, o := range owners(Failover, 8, live) {
		if o != live[0].key {
			t.Errorf("failover: shard %d to %s, want the first in order", s, o)
		}
	}
}

func TestShardOf(t *testing.T) {
	counts := make([]int, 16)
	for i := range 16_000 {
		counts[ShardOf(fmt.Sprintf("host-%d", i), 16)]++
	}
	for s, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("shard %d got %d of 16,000 keys", s, c)
		}
	}
	if x := ShardOf("x", 16); ShardOf("a", 1) != 0 || ShardOf("x", 16) != x {
		t.Error("ShardOf is not stable")
	}
	m := etf.Metric{Name: "cpu", Source: "h1", Tags: []etf.Tag{{Key: "dc", Value: "eu"}}}
	al := etf.Alert{Name: "disk", Source: "h2", Tags: []etf.Tag{{Key: "dc", Value: "us"}}}
	for key, want := range map[string][2]string{"source": {"h1", "h2"}, "name": {"cpu", "disk"}, "tag:dc": {"eu", "us"}, "tag:x": {"", ""}} {
		k, err := ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if got := [2]string{k.OfMetric(&m), k.OfAlert(&al)}; got != want || k.String() != key {
			t.Errorf("key %s: %v (%s), want %v", key, got, k, want)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]brain.Target{"b@h": {Node: "b@h", Name: "def"}, "b@h/x": {Node: "b@h", Name: "x"}} {
		got, err := ParseTarget(in, "def")
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"b", "b@h/", "b@h/a b", "@h"} {
		if _, err := ParseTarget(bad, "def"); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "tag:", "host"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	if _, err := ParseRouting("random"); err == nil {
		t.Error("ParseRouting accepted random")
	}
	if r, err := ParseReady("quorum"); err != nil || r != ReadyQuorum || r.String() != "quorum" {
		t.Errorf("ParseReady: %v %v", r, err)
	}
}

func TestConfigChecks(t *testing.T) {
	tg := []brain.Target{{Node: "b@h", Name: "n"}}
	for name, c := range map[string]Config{
		"nothing":      {},
		"both":         {Targets: tg, Discovery: &PG{Seeds: []string{"b@h"}}},
		"twice":        {Targets: append(tg, tg...)},
		"no seeds":     {Discovery: &PG{}},
		"bad seed":     {Discovery: &PG{Seeds: []string{"nohost"}}},
		"shards":       {Targets: tg, Shards: MaxShards + 1},
		"tag key":      {Targets: tg, Key: Key{Field: KeyTag}},
		"bad target":   {Targets: []brain.Target{{Node: "b", Name: "n"}}},
		"negative hi":  {Targets: tg, HealthInterval: -1},
		"bad poll":     {Discovery: &PG{Seeds: []string{"b@h"}, PollInterval: -1}},
		"routing enum": {Targets: tg, Routing: 7},
	} {
		if err := c.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := Config{Targets: tg, Routing: Shard}
	if err := c.withDefaults(); err != nil || c.Shards != DefaultShards || c.HealthInterval != DefaultHealthInterval {
		t.Errorf("defaults: %+v %v", c, err)
	}
	c = Config{Discovery: &PG{Seeds: []string{"b@h"}}}
	if err := c.withDefaults(); err != nil || c.Shards != 1 || c.Discovery.Scope != DefaultPGScope || c.Discovery.Group != DefaultPGGroup {
		t.Errorf("defaults: %+v %+v %v", c, c.Discovery, err)
	}
}

func TestKernelVersion(t *testing.T) {
	chars := func(s string) etf.List {
		var l etf.List
		for _, c := range s {
			l = append(l, int64(c))
		}
		return l
	}
	for in, want := range map[string][2]int{"8.5.3": {8, 5}, "10.2.7.1": {10, 2}, "11.0.4": {11, 0}} {
		if major, minor, ok := kernelVersion(chars(in)); !ok || [2]int{major, minor} != want {
			t.Errorf("kernelVersion(%q) = %d.%d %v", in, major, minor, ok)
		}
	}
	for _, bad := range []any{chars("eleven"), etf.List{"x"}, 11} {
		if _, _, ok := kernelVersion(bad); ok {
			t.Errorf("kernelVersion(%v) accepted", bad)
		}
	}
}
