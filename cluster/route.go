package cluster

import (
	"sort"

	"github.com/pharos-node/pharos-node/etf"
)

// Routing, in two steps: a record's key picks its shard (a hash of the key modulo the number of
// shards, the same on every sender), and the shard's owner is picked among the live members:
// the first in the stable order (Failover), or the one with the highest rendezvous score of
// (shard, member) (Shard), so that a member joining takes only the shards it now scores
// highest on, and a member leaving hands on only its own.

// OfMetric returns the key of a metric.
func (k Key) OfMetric(m *etf.Metric) string {
	switch k.Field {
	case KeyName:
		return m.Name
	case KeyTag:
		return tagValue(m.Tags, k.Tag)
	}
	return m.Source
}

// OfAlert returns the key of an alert.
func (k Key) OfAlert(a *etf.Alert) string {
	switch k.Field {
	case KeyName:
		return a.Name
	case KeyTag:
		return tagValue(a.Tags, k.Tag)
	}
	return a.Source
}

func tagValue(tags []etf.Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// ShardOf returns the shard of key among n shards: FNV-1a (64 bits) of the key, mixed, modulo n.
// It never allocates.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(mix64(fnv1a(key)) % uint64(n))
}

func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is splitmix64's finaliser: every input bit moves every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// score is the rendezvous weight of shard on a member (its key's hash).
func score(memberHash uint64, shard int) uint64 {
	return mix64(memberHash ^ mix64(uint64(shard)+0x9e3779b97f4a7c15))
}

// ownerOf returns the index in live of the member shard goes to, -1 with none live.
func ownerOf(routing Routing, shard int, live []*member) int {
	if len(live) == 0 {
		return -1
	}
	if routing == Failover {
		return 0 // live is in the stable order
	}
	best, bestScore := 0, uint64(0)
	for i, m := range live {
		if s := score(m.hash, shard); i == 0 || s > bestScore || (s == bestScore && m.key < live[best].key) {
			best, bestScore = i, s
		}
	}
	return best
}

// stableOrder sorts members for Failover: by their configured position, then by node and name
// (discovered members have no position).
func stableOrder(ms []*member) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].order != ms[j].order {
			return ms[i].order < ms[j].order
		}
		return ms[i].key < ms[j].key
	})
}
