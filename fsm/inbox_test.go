package fsm

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestInbox(t *testing.T) {
	if _, err := NewInbox(0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("limit 0: %v", err)
	}
	in, err := NewInbox(3)
	if err != nil {
		t.Fatal(err)
	}
	notified := 0
	notify := func() error { notified++; return nil }
	for i := range 3 {
		if err := in.put([]byte{byte('a' + i)}, notify); err != nil {
			t.Fatal(err)
		}
	}
	if notified != 1 {
		t.Fatalf("%d notifications for one idle period, want 1", notified)
	}
	if err := in.put([]byte("d"), notify); !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("put into a full inbox: %v", err)
	}
	if in.Len() != 3 || in.Limit() != 3 {
		t.Fatalf("len %d limit %d", in.Len(), in.Limit())
	}
	got := in.take()
	if !slices.EqualFunc(got, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, slices.Equal) {
		t.Fatalf("take = %q", got)
	}
	in.recycle(got)
	// Taking re-arms the notification; a failed notification accepts nothing.
	refused := errors.New("not running")
	if err := in.put([]byte("e"), func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("put with a failing notification: %v", err)
	}
	if in.Len() != 0 {
		t.Fatalf("a record was kept although its notification failed")
	}
	if err := in.put([]byte("f"), notify); err != nil || notified != 2 {
		t.Fatalf("put after take: %v, %d notifications", err, notified)
	}
	// An actor that terminates re-arms it too.
	in.rearm()
	if err := in.put([]byte("g"), notify); err != nil || notified != 3 {
		t.Fatalf("put after rearm: %v, %d notifications", err, notified)
	}
}

// TestInboxPutMany: several records under one lock, as many as there is room for,
// one notification per idle period, nothing kept when the notification fails.
func TestInboxPutMany(t *testing.T) {
	in, err := NewInbox(5)
	if err != nil {
		t.Fatal(err)
	}
	notified := 0
	notify := func() error { notified++; return nil }
	refused := errors.New("not running")
	if n, err := in.putMany([][]byte{[]byte("a"), []byte("b")}, func() error { return refused }, false); n != 0 || !errors.Is(err, refused) || in.Len() != 0 {
		t.Fatalf("putMany with a failing notification: %d, %v, len %d", n, err, in.Len())
	}
	if n, err := in.putMany([][]byte{[]byte("a"), []byte("b")}, notify, false); n != 2 || err != nil {
		t.Fatalf("putMany: %d, %v", n, err)
	}
	if err := in.put([]byte("c"), notify); err != nil {
		t.Fatal(err)
	}
	n, err := in.putMany([][]byte{[]byte("d"), []byte("e"), []byte("f"), []byte("g")}, notify, false)
	if n != 2 || !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("putMany beyond the limit: %d, %v; want 2 and ErrMailboxFull", n, err)
	}
	if n, err := in.putMany([][]byte{[]byte("h")}, notify, false); n != 0 || !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("putMany into a full inbox: %d, %v", n, err)
	}
	if notified != 1 {
		t.Fatalf("%d notifications for one idle period, want 1", notified)
	}
	got := in.take()
	if !slices.EqualFunc(got, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}, slices.Equal) {
		t.Fatalf("take = %q", got)
	}
	if n, err := in.putMany([][]byte{[]byte("i")}, notify, false); n != 1 || err != nil || notified != 2 {
		t.Fatalf("putMany after take: %d, %v, %d notifications", n, err, notified)
	}
}

// TestInboxConcurrent: producers racing the taker; every record is taken
// once, each producer's in order, and every idle-to-busy turn notifies.
func TestInboxConcurrent(t *testing.T) {
	in, err := NewInbox(1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	notify := func() error {
		select {
		case wake <- struct{}{}:
		default:
		}
		return nil
	}
	const producers, each = 4, 20_000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p%2 == 1 { // these deliver 10 at a time
				for i := 0; i < each; i += 10 {
					var recs [][]byte
					for k := range 10 {
						recs = append(recs, fmt.Appendf(nil, "%d:%d", p, i+k))
					}
					if n, err := in.putMany(recs, notify, false); err != nil || n != 10 {
						t.Error(n, err)
						return
					}
				}
				return
			}
			for i := range each {
				if err := in.put(fmt.Appendf(nil, "%d:%d", p, i), notify); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, producers)
	total := 0
	deadline := time.After(10 * time.Second)
	for total < producers*each {
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("stalled after %d records: a notification was lost", total)
		}
		recs := in.take()
		for _, r := range recs {
			var p, i int
			if _, err := fmt.Sscanf(string(r), "%d:%d", &p, &i); err != nil || i != next[p] {
				t.Fatalf("record %q: producer %d expected %d", r, p, next[p])
			}
			next[p]++
		}
		total += len(recs)
		in.recycle(recs)
	}
	wg.Wait()
}

// TestManagerStartTakesInbox: records a crashed incarnation accepted but
// never took are delivered by the next one when it starts.
func TestManagerStartTakesInbox(t *testing.T) {
	in, err := NewInbox(10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs("r", 3) {
		if err := in.put([]byte(r), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	in.rearm() // what the terminating incarnation does
	sink := newFakeSink()
	ring := newFakeRing(1000)
	m, err := NewManager(ManagerOptions{Config: actorConfig(), Transport: sink, Ring: ring, Inbox: in,
		Timers: func(time.Duration, TimeoutID) func() bool { return func() bool { return true } }})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	if in.Len() != 0 {
		t.Fatalf("%d records left in the inbox", in.Len())
	}
	// Not connected yet: the records wait in the ring, in order.
	if got := ring.DrainUpTo(10); !slices.EqualFunc(got, [][]byte{[]byte("r0"), []byte("r1"), []byte("r2")}, slices.Equal) {
		t.Fatalf("ring holds %q", got)
	}
}
