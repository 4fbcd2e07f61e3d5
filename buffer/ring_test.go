package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRejectsBadBounds(t *testing.T) {
	for _, c := range [][2]int{{0, 1}, {1, 0}, {-1, 10}} {
		if _, err := New(c[0], c[1]); !errors.Is(err, ErrBounds) {
			t.Errorf("New(%d, %d): err = %v, want ErrBounds", c[0], c[1], err)
		}
	}
}

func TestPushEvictsOldestByCountAndBytes(t *testing.T) {
	r, _ := New(3, 10)
	var ev [][]byte
	for _, s := range []string{"a", "bb", "ccc"} {
		ev = r.Push([]byte(s), ev[:0])
		if len(ev) != 0 {
			t.Fatalf("push %q evicted %q", s, ev)
		}
	}
	ev = r.Push([]byte("d"), ev[:0]) // count bound: evicts "a"
	if got := join(ev); got != "a" {
		t.Fatalf("count eviction = %q, want a", got)
	}
	ev = r.Push([]byte("eeeeeee"), ev[:0]) // 2+3+1+7 > 10: evicts "bb", then "ccc"
	if got := join(ev); got != "bb|ccc" {
		t.Fatalf("byte eviction = %q, want bb|ccc", got)
	}
	ev = r.Push(bytes.Repeat([]byte("x"), 11), ev[:0]) // longer than the byte bound
	if len(ev) != 1 || len(ev[0]) != 11 || r.Len() != 2 || r.Bytes() != 8 {
		t.Fatalf("oversized record: evicted %q, len %d", ev, r.Len())
	}
	if got := join(r.Drain(nil)); got != "d|eeeeeee" {
		t.Fatalf("drain = %q", got)
	}
	st := r.Stats()
	if st.Pushed != 5 || st.Evicted != 4 || st.EvictedBytes != 1+2+3+11 || st.Drained != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestPutBackKeepsOrderAndReturnsOldest(t *testing.T) {
	r, _ := New(4, 100)
	for _, s := range []string{"1", "2", "3"} {
		r.Push([]byte(s), nil)
	}
	batch := r.DrainN(nil, 2) // 1, 2
	r.Push([]byte("4"), nil)
	r.Push([]byte("5"), nil)
	r.Push([]byte("6"), nil) // ring: 3 4 5 6 (full)
	lost := r.PutBack(batch)
	if got := join(lost); got != "1|2" {
		t.Fatalf("put back into a full ring lost %q, want 1|2", got)
	}
	r.DrainN(nil, 1) // 3
	lost = r.PutBack([][]byte{[]byte("x"), []byte("y")})
	if got := join(lost); got != "x" {
		t.Fatalf("lost %q, want x", got)
	}
	if got := join(r.Drain(nil)); got != "y|4|5|6" {
		t.Fatalf("order after put back = %q", got)
	}
}

func TestReadySignalsAfterPushIntoEmpty(t *testing.T) {
	r, _ := New(8, 100)
	select {
	case <-r.Ready():
		t.Fatal("ready before any push")
	default:
	}
	r.Push([]byte("a"), nil)
	r.Push([]byte("b"), nil)
	<-r.Ready()
	select {
	case <-r.Ready():
		t.Fatal("ready fired twice for one empty-to-nonempty transition")
	default:
	}
	r.Drain(nil)
	r.PutBack([][]byte{[]byte("c")})
	<-r.Ready()
}

func TestGrowKeepsOrder(t *testing.T) {
	r, _ := New(5000, 1<<30)
	for i := range 3000 {
		if i%7 == 0 {
			r.DrainN(nil, 1)
		}
		r.Push(fmt.Appendf(nil, "%d", i), nil)
	}
	got := r.Drain(nil)
	first := 3000 - len(got)
	for i, rec := range got {
		if want := fmt.Sprint(first + i); string(rec) != want {
			t.Fatalf("record %d = %s, want %s", i, rec, want)
		}
	}
}

// TestConcurrentProducers runs many producers against one consumer and checks that every record
// is accounted for exactly once (drained or evicted) and that each producer's records come out in
// the order it pushed them.
func TestConcurrentProducers(t *testing.T) {
	const producers, perProducer = 8, 20000
	r, _ := New(1000, 1<<20)
	var wg sync.WaitGroup
	evictedBy := make([][][]byte, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ev [][]byte
			for i := range perProducer {
				ev = r.Push([]byte(fmt.Sprintf("%d:%d", p, i)), ev)
			}
			evictedBy[p] = ev
		}()
	}
	done := make(chan struct{})
	var drained [][]byte
	go func() {
		defer close(done)
		for {
			batch := r.DrainN(nil, 100)
			drained = append(drained, batch...)
			if len(batch) == 0 {
				select {
				case <-r.Ready():
				case <-stop(&wg):
					drained = r.Drain(drained)
					return
				}
			}
		}
	}()
	<-done
	seen := map[string]int{}
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	for _, rec := range drained {
		seen[string(rec)]++
		var p, i int
		fmt.Sscanf(string(rec), "%d:%d", &p, &i)
		if i <= last[p] {
			t.Fatalf("producer %d: record %d after %d", p, i, last[p])
		}
		last[p] = i
	}
	for _, ev := range evictedBy {
		for _, rec := range ev {
			seen[string(rec)]++
		}
	}
	if len(seen) != producers*perProducer {
		t.Fatalf("accounted for %d distinct records, want %d", len(seen), producers*perProducer)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("record %s seen %d times", k, n)
		}
	}
}

// stop returns a channel closed once wg is done.
func stop(wg *sync.WaitGroup) <-chan struct{} {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	return c
}

func join(recs [][]byte) string { return string(bytes.Join(recs, []byte("|"))) }

// ringModel is the simple model: a slice, oldest first, and the same two bounds.
type ringModel struct {
	recs       [][]byte
	maxRecords int
	maxBytes   int
}

func (m *ringModel) bytes() int {
	n := 0
	for _, r := range m.recs {
		n += len(r)
	}
	return n
}

func (m *ringModel) push(rec []byte) (evicted [][]byte) {
	if len(rec) > m.maxBytes {
		return [][]byte{rec}
	}
	for len(m.recs) >= m.maxRecords || m.bytes()+len(rec) > m.maxBytes {
		evicted = append(evicted, m.recs[0])
		m.recs = m.recs[1:]
	}
	m.recs = append(m.recs, rec)
	return evicted
}

// TestRingModel checks the Ring against ringModel with a rapid state machine.
func TestRingModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		maxRecords := rapid.IntRange(1, 40).Draw(t, "maxRecords")
		maxBytes := rapid.IntRange(1, 200).Draw(t, "maxBytes")
		r, err := New(maxRecords, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		m := &ringModel{maxRecords: maxRecords, maxBytes: maxBytes}
		var out [][]byte // drained, not yet put back
		next := 0
		newRec := func(t *rapid.T) []byte {
			// Unique where the size allows: the record's number, padded to size.
			size := rapid.IntRange(0, maxBytes+5).Draw(t, "size")
			id := fmt.Appendf(nil, "%d", next)
			next++
			rec := bytes.Repeat([]byte{'.'}, size)
			copy(rec, id)
			return rec
		}
		t.Repeat(map[string]func(*rapid.T){
			"push": func(t *rapid.T) {
				rec := newRec(t)
				got := r.Push(rec, nil)
				want := m.push(rec)
				if !equal(got, want) {
					t.Fatalf("Push evicted %q, model %q", got, want)
				}
			},
			"drain": func(t *rapid.T) {
				got := r.Drain(nil)
				if !equal(got, m.recs) {
					t.Fatalf("Drain = %q, model %q", got, m.recs)
				}
				out = append(out, got...)
				m.recs = nil
			},
			"drainN": func(t *rapid.T) {
				n := rapid.IntRange(0, maxRecords+2).Draw(t, "n")
				got := r.DrainN(nil, n)
				k := min(n, len(m.recs))
				if !equal(got, m.recs[:k]) {
					t.Fatalf("DrainN(%d) = %q, model %q", n, got, m.recs[:k])
				}
				out = append(out, got...)
				m.recs = m.recs[k:]
			},
			"putBack": func(t *rapid.T) {
				if len(out) == 0 {
					t.Skip("nothing drained")
				}
				k := rapid.IntRange(1, len(out)).Draw(t, "k")
				back := out[len(out)-k:]
				out = out[:len(out)-k]
				// Model: the put-back records go in front; while over a bound, the
				// oldest of them go, never a record already held.
				i := len(back)
				held := m.bytes()
				n := len(m.recs)
				for i > 0 && n < maxRecords && held+len(back[i-1]) <= maxBytes {
					held += len(back[i-1])
					n++
					i--
				}
				wantLost := append([][]byte(nil), back[:i]...)
				m.recs = append(append([][]byte(nil), back[i:]...), m.recs...)
				got := r.PutBack(append([][]byte(nil), back...))
				if !equal(got, wantLost) {
					t.Fatalf("PutBack lost %q, model %q", got, wantLost)
				}
			},
		})
		if r.Len() != len(m.recs) || r.Bytes() != m.bytes() {
			t.Fatalf("Len/Bytes = %d/%d, model %d/%d", r.Len(), r.Bytes(), len(m.recs), m.bytes())
		}
		if r.Len() > maxRecords || r.Bytes() > maxBytes {
			t.Fatalf("bounds exceeded: %d records, %d bytes", r.Len(), r.Bytes())
		}
		if got := r.Drain(nil); !equal(got, m.recs) {
			t.Fatalf("final content %q, model %q", got, m.recs)
		}
	})
}

func equal(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
