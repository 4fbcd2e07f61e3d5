package ingest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/pharos-node/pharos-node/etf"
)

// statsdState is what the StatsD listener remembers between lines: the last value of each gauge
// (so that "+3" and "-3" change it, as Etsy's StatsD does) and the distinct members of each set
// in the current flush interval. A series is a name with its tags, in any order. Both are bounded:
// a line that needs a series or a member beyond the bounds is refused with ErrStatsDState, and
// what is kept is not changed.
type statsdState struct {
	maxSeries, maxMembers int

	mu      sync.Mutex
	key     []byte // scratch for series keys
	sorted  []etf.Tag
	gauges  map[string]float64
	sets    map[string]*statsdSet
	members int // in all sets
}

// statsdSet is one set of the interval: the series it counts and its distinct members.
type statsdSet struct {
	name    string
	tags    []etf.Tag
	members map[string]struct{}
}

func newStatsDState(maxSeries, maxMembers int) *statsdState {
	return &statsdState{maxSeries: maxSeries, maxMembers: maxMembers,
		gauges: map[string]float64{}, sets: map[string]*statsdSet{}}
}

// seriesKey writes the key of m's series into st.key: its name and tags, tags sorted.
func (st *statsdState) seriesKey(m *etf.Metric) []byte {
	st.sorted = append(st.sorted[:0], m.Tags...)
	slices.SortFunc(st.sorted, func(a, b etf.Tag) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	k := append(st.key[:0], m.Name...)
	for _, t := range st.sorted {
		k = append(k, 0)
		k = append(k, t.Key...)
		k = append(k, 0)
		k = append(k, t.Value...)
	}
	clear(st.sorted)
	st.key = k
	return k
}

// setGauge records m's value as its series' last one and returns the value to send: m.Value, or
// for a change (delta) the last value (0 for a series not seen yet) plus m.Value.
func (st *statsdState) setGauge(m *etf.Metric, delta bool) (float64, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	k := st.seriesKey(m)
	last, known := st.gauges[string(k)]
	v := m.Value
	if delta {
		v += last
		if math.IsInf(v, 0) {
			return 0, fmt.Errorf("%w: gauge %s: %v%+v overflows", ErrStatsDSyntax, m.Name, last, m.Value)
		}
	}
	if !known && len(st.gauges) >= st.maxSeries {
		if delta {
			return 0, fmt.Errorf("%w: %d gauges kept already; a change of %s cannot be applied", ErrStatsDState, st.maxSeries, m.Name)
		}
		return v, nil // an absolute value stands alone; it is just not kept
	}
	st.gauges[string(k)] = v
	return v, nil
}

// addMember adds member to the set of m's series.
func (st *statsdState) addMember(m *etf.Metric, member string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	k := st.seriesKey(m)
	set, ok := st.sets[string(k)]
	if !ok {
		if len(st.sets) >= st.maxSeries {
			return fmt.Errorf("%w: %d sets counted already in this interval", ErrStatsDState, st.maxSeries)
		}
		set = &statsdSet{name: string([]byte(m.Name)), tags: cloneTags(m.Tags), members: map[string]struct{}{}}
		st.sets[string(k)] = set
	}
	if _, ok := set.members[member]; ok {
		return nil
	}
	if st.members >= st.maxMembers {
		return fmt.Errorf("%w: %d set members counted already in this interval", ErrStatsDState, st.maxMembers)
	}
	set.members[string([]byte(member))] = struct{}{}
	st.members++
	return nil
}

// takeSets returns a Gauge of each set's count of members, sorted by series, and forgets the sets.
func (st *statsdState) takeSets(nowMs int64, source string) []etf.Metric {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sets) == 0 {
		return nil
	}
	keys := make([]string, 0, len(st.sets))
	for k := range st.sets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ms := make([]etf.Metric, 0, len(keys))
	for _, k := range keys {
		set := st.sets[k]
		ms = append(ms, etf.Metric{Name: set.name, Kind: etf.Gauge, Value: float64(len(set.members)),
			Tags: set.tags, TimestampMs: nowMs, Source: source})
	}
	st.sets = map[string]*statsdSet{}
	st.members = 0
	return ms
}

// cloneTags copies tags and their strings (which may be a packet's bytes).
func cloneTags(tags []etf.Tag) []etf.Tag {
	if tags == nil {
		return nil
	}
	out := make([]etf.Tag, len(tags))
	for i, t := range tags {
		out[i] = etf.Tag{Key: string([]byte(t.Key)), Value: string([]byte(t.Value))}
	}
	return out
}
