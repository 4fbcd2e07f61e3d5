package fsm

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestInboxRAMBudget(t *testing.T) {
	if _, err := NewInboxWithOptions(InboxOptions{Limit: 10, RAMRecords: 5}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("records without bytes: %v", err)
	}
	in, err := NewInboxWithOptions(InboxOptions{Limit: 100, RAMRecords: 5, RAMBytes: 12})
	if err != nil {
		t.Fatal(err)
	}
	nop := func() error { return nil }
	n, err := in.putMany([][]byte{[]byte("aa"), []byte("bb"), []byte("cc"), []byte("dd"), []byte("ee"), []byte("ff")}, nop, false)
	if n != 5 || !errors.Is(err, ErrRAMFull) {
		t.Fatalf("put 6 with room for 5 records: %d, %v", n, err)
	}
	if n, err := in.putMany([][]byte{[]byte("x")}, nop, false); n != 0 || !errors.Is(err, ErrRAMFull) {
		t.Fatalf("put with no room: %d, %v", n, err)
	}
	taken := in.take()
	in.budget.release(taken[:3]) // three leave RAM: 2 records, 4 bytes held
	if n, err := in.putMany([][]byte{[]byte("12345"), []byte("1234"), []byte("y")}, nop, false); n != 1 || !errors.Is(err, ErrRAMFull) {
		t.Fatalf("the byte bound: %d, %v", n, err)
	}
	if r, b := in.budget.held(); r != 3 || b != 9 {
		t.Fatalf("held %d records, %d bytes; want 3, 9", r, b)
	}
	// A refused notification reserves nothing.
	in.budget.release(taken[3:])
	in.rearm()
	refuse := func() error { return ErrNotRunning }
	if n, err := in.putMany([][]byte{[]byte("z")}, refuse, false); n != 0 || !errors.Is(err, ErrNotRunning) {
		t.Fatalf("put with a failing notification: %d, %v", n, err)
	}
	if r, _ := in.budget.held(); r != 1 {
		t.Fatalf("held %d records, want 1", r)
	}
	if got := in.Close(); len(got) != 1 {
		t.Fatalf("Close took %d", len(got))
	}
	if r, b := in.budget.held(); r != 0 || b != 0 {
		t.Fatalf("after Close: held %d records, %d bytes", r, b)
	}
}

// TestPropertyRAMBudget: with the overflow policy refuse (an inbox with a RAM budget at the
// ring's bounds, no disk tier), whatever the interleaving of deliveries, drops, failures, busy
// peers, confirmations and crashes of the manager, the ring never evicts: the budget counts
// exactly the records of the inbox, the ring and the records delivered and not yet confirmed,
// and what the inbox refused is all that was not kept.
func TestPropertyRAMBudget(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		resend := rapid.Bool().Draw(rt, "resend")
		cfg := confirmConfig(resend)
		cfg.MaxPending = rapid.IntRange(1, 6).Draw(rt, "maxPending")
		cfg.DrainBatch = rapid.IntRange(1, 8).Draw(rt, "drainBatch")
		cfg.Confirm.Records = rapid.IntRange(1, 5).Draw(rt, "records")
		cfg.Confirm.MaxUnconfirmed = cfg.Confirm.Records + rapid.IntRange(0, 10).Draw(rt, "room")
		capacity := cfg.MaxPending + rapid.IntRange(1, 10).Draw(rt, "ringSlack")
		h := newConfirmHarness(rt, cfg, nil)
		h.ring.limit = capacity
		in, err := NewInboxWithOptions(InboxOptions{Limit: 1000, RAMRecords: capacity, RAMBytes: 1 << 20})
		if err != nil {
			rt.Fatal(err)
		}
		h.inbox = in
		h.manager = h.build()
		h.manager.Start()
		n, refused := 0, 0
		check := func() {
			if d := h.manager.Stats().Dropped; d != 0 {
				rt.Fatalf("the ring evicted %d records", d)
			}
			held, _ := in.budget.held()
			if want := in.Len() + h.ring.Len() + h.pending.RAMLen(); held != want {
				rt.Fatalf("budget holds %d, inbox %d + ring %d + unconfirmed %d = %d",
					held, in.Len(), h.ring.Len(), h.pending.RAMLen(), want)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"deliver": func(rt *rapid.T) {
				var burst [][]byte
				for range rapid.IntRange(1, 12).Draw(rt, "n") {
					burst = append(burst, []byte(fmt.Sprintf("r%d", n)))
					n++
				}
				k, err := in.putMany(burst, func() error { return nil }, false)
				if k < len(burst) && !errors.Is(err, ErrRAMFull) {
					rt.Fatalf("refused %d with %v", len(burst)-k, err)
				}
				refused += len(burst) - k
				if rapid.Bool().Draw(rt, "take") {
					h.manager.TakeInbox()
				}
			},
			"take":    func(rt *rapid.T) { h.manager.TakeInbox() },
			"arrive":  func(rt *rapid.T) { h.net.arrive(rapid.IntRange(0, 6).Draw(rt, "k")) },
			"answers": func(rt *rapid.T) { h.net.answersArrive(h.manager, rapid.IntRange(0, 3).Draw(rt, "k")) },
			"drop": func(rt *rapid.T) {
				h.net.drop(rapid.IntRange(0, len(h.net.wire)).Draw(rt, "keep"))
				if rapid.Bool().Draw(rt, "noticed") {
					h.manager.ConnectionLost()
				}
			},
			"down": func(rt *rapid.T) { h.net.up = false },
			"up":   func(rt *rapid.T) { h.net.up = true },
			"fail": func(rt *rapid.T) { h.net.failN = rapid.IntRange(1, 2).Draw(rt, "n") },
			"busy": func(rt *rapid.T) { h.net.busyN = rapid.IntRange(1, 3).Draw(rt, "n") },
			"clock": func(rt *rapid.T) {
				h.clock.Advance(time.Duration(rapid.IntRange(0, 300).Draw(rt, "ms")) * time.Millisecond)
			},
			"crash": func(rt *rapid.T) {
				h.net.drop(rapid.IntRange(0, len(h.net.wire)).Draw(rt, "keep"))
				h.manager.Close()
				h.manager = h.build()
				h.manager.Start()
			},
			"": func(rt *rapid.T) { check() },
		})
		h.net.up, h.net.failN, h.net.busyN = true, 0, 0
		for range 200 {
			h.manager.TakeInbox()
			h.clock.Advance(time.Second)
			h.everything()
			if in.Len() == 0 && h.manager.Held() == 0 && h.manager.State() == Streaming {
				break
			}
		}
		check()
		if held, bytes := in.budget.held(); held != 0 || bytes != 0 {
			rt.Fatalf("drained, the budget still holds %d records, %d bytes", held, bytes)
		}
		_ = refused
	})
}
