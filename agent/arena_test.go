package agent

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/pharos-node/pharos-node/etf"
)

func arenaMetric(i int, tagValueBytes int) etf.Metric {
	return etf.Metric{Name: "arena.test", Kind: etf.Gauge, Value: float64(i), TimestampMs: int64(i),
		Tags:   []etf.Tag{{Key: "i", Value: fmt.Sprint(i)}, {Key: "pad", Value: strings.Repeat("x", tagValueBytes)}},
		Source: "arena"}
}

func encodeInArena(t *testing.T, a *recordArena, m etf.Metric) []byte {
	t.Helper()
	rec, err := a.encode(etf.MetricSize(&m), func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &m) })
	require.NoError(t, err)
	return rec
}

// Records carved from the arena are the encoder's bytes, stay intact while later records are
// encoded (across chunks, and with records larger than a chunk's room), and cannot be appended
// to in place.
func TestRecordArenaKeepsEveryRecordIntact(t *testing.T) {
	var a recordArena
	var recs [][]byte
	var want [][]byte
	for i := range 3000 {
		pad := i % 97
		switch {
		case i%500 == 499:
			pad = arenaChunkBytes / 2 // a record of its own
		case i%50 == 49:
			pad = 3000 // near arenaMaxRecord: often more than a chunk has left
		}
		m := arenaMetric(i, pad)
		used := len(a.chunk)
		rec := encodeInArena(t, &a, m)
		if etf.MetricSize(&m) <= arenaMaxRecord && len(a.chunk) != used+len(rec) && len(a.chunk) != len(rec) {
			t.Fatalf("record %d (%d bytes) was not carved from the chunk", i, len(rec))
		}
		exp, err := etf.AppendMetric(nil, &m)
		require.NoError(t, err)
		require.Equal(t, exp, rec, "record %d", i)
		require.Equal(t, len(rec), cap(rec), "record %d has room to be appended to in place", i)
		recs, want = append(recs, rec), append(want, exp)
	}
	// Appending to a record copies it and leaves its neighbour alone.
	_ = append(recs[10], 0xFF, 0xFF, 0xFF)
	for i := range recs {
		require.Equal(t, want[i], recs[i], "record %d changed after later encodes", i)
	}
}

// A refused record takes nothing from the arena and returns the encoder's error.
func TestRecordArenaRefusedRecord(t *testing.T) {
	var a recordArena
	before := encodeInArena(t, &a, arenaMetric(1, 0))
	m := arenaMetric(2, 0)
	m.Kind = 0
	_, err := a.encode(etf.MetricSize(&m), func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &m) })
	require.ErrorIs(t, err, etf.ErrInvalidKind)
	used := len(a.chunk)
	after := encodeInArena(t, &a, arenaMetric(3, 0))
	require.Equal(t, used+len(after), len(a.chunk))
	exp, _ := etf.AppendMetric(nil, new(arenaMetric(1, 0)))
	require.Equal(t, exp, before)
}

// Concurrent deliveries each get their own bytes (run under -race as well).
func TestRecordArenaConcurrentEncodes(t *testing.T) {
	var a recordArena
	var wg sync.WaitGroup
	results := make([][][]byte, 4)
	for g := range results {
		wg.Go(func() {
			for i := range 2000 {
				m := arenaMetric(g*10_000+i, i%50)
				rec, err := a.encode(etf.MetricSize(&m), func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &m) })
				if err != nil {
					panic(err)
				}
				results[g] = append(results[g], rec)
			}
		})
	}
	wg.Wait()
	for g := range results {
		for i, rec := range results[g] {
			exp, _ := etf.AppendMetric(nil, new(arenaMetric(g*10_000+i, i%50)))
			require.Equal(t, exp, rec, "goroutine %d record %d", g, i)
		}
	}
}

// encodeEach stops at the first refusal and returns the records before it.
func TestRecordArenaEncodeEachStopsAtARefusal(t *testing.T) {
	var a recordArena
	ms := []etf.Metric{arenaMetric(0, 0), arenaMetric(1, 0), arenaMetric(2, 0)}
	ms[1].Kind = 0
	recs, err := a.encodeEach(len(ms), nil,
		func(i int) int { return etf.MetricSize(&ms[i]) },
		func(i int, dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &ms[i]) })
	require.ErrorIs(t, err, etf.ErrInvalidKind)
	require.Len(t, recs, 1)
	exp, _ := etf.AppendMetric(nil, &ms[0])
	require.Equal(t, exp, recs[0])
}

// A recycling arena's stream (encode, hand over, release once copied, as the acknowledged mode
// runs) carves every record from the same few chunks however long it runs, and each record keeps
// its bytes until it is released.
func TestRecordArenaRecyclesReleasedChunks(t *testing.T) {
	a := recordArena{recycle: true}
	chunks := map[*byte]bool{}
	var pending, want [][]byte
	for i := range 50_000 {
		m := arenaMetric(i, i%40)
		rec := encodeInArena(t, &a, m)
		chunks[unsafe.SliceData(a.chunk[:cap(a.chunk)])] = true
		exp, err := etf.AppendMetric(nil, &m)
		require.NoError(t, err)
		pending, want = append(pending, rec), append(want, exp)
		if len(pending) == 256 { // a take of the manager's
			for k := range pending {
				require.Equal(t, want[k], pending[k], "record %d of the take changed before its release", k)
			}
			a.release(pending)
			pending, want = pending[:0], want[:0]
		}
	}
	require.LessOrEqual(t, len(chunks), 3, "chunks carved in a stream of 50,000 records")

	// Without recycle (the unacknowledged modes, whose ring keeps the records), release is a
	// no-op: nothing is ever written again.
	var b recordArena
	first := encodeInArena(t, &b, arenaMetric(0, 0))
	exp := append([]byte(nil), first...)
	b.release([][]byte{first})
	for i := range 2000 {
		encodeInArena(t, &b, arenaMetric(i+1, 30))
	}
	require.Equal(t, exp, first)
}

// Property: whatever the order records are released in, and whether they ever are, a record not
// released keeps its bytes, and a released chunk is carved again only once all its records are
// back. Records larger than arenaMaxRecord and slices not from the arena are ignored by release.
func TestRecordArenaRecycleProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := recordArena{recycle: true}
		type live struct {
			rec, want []byte
		}
		var held []live // handed out, not released
		check := func() {
			for k, l := range held {
				if !bytes.Equal(l.rec, l.want) {
					rt.Fatalf("record %d not released, but its bytes changed", k)
				}
			}
		}
		n := 0
		rt.Repeat(map[string]func(*rapid.T){
			"encode": func(rt *rapid.T) {
				k := rapid.IntRange(1, 40).Draw(rt, "records")
				pad := rapid.SampledFrom([]int{0, 30, 900, 3000, arenaMaxRecord}).Draw(rt, "pad")
				for range k {
					m := arenaMetric(n, pad)
					n++
					rec, err := a.encode(etf.MetricSize(&m), func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, &m) })
					if err != nil {
						rt.Fatal(err)
					}
					held = append(held, live{rec, append([]byte(nil), rec...)})
				}
			},
			"release": func(rt *rapid.T) {
				if len(held) == 0 {
					rt.Skip("nothing held")
				}
				// Any subset, in any order; the rest stays held (some forever).
				k := rapid.IntRange(1, len(held)).Draw(rt, "released")
				perm := rapid.Permutation(held).Draw(rt, "order")
				out := make([][]byte, 0, k+1)
				for _, l := range perm[:k] {
					out = append(out, l.rec)
				}
				out = append(out, []byte("not from the arena"))
				a.release(out)
				held = perm[k:]
			},
			"": func(rt *rapid.T) { check() },
		})
	})
}
