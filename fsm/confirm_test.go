package fsm

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/pharos-node/pharos-node/tier"
)

// confirmNet is a Transport and Confirmer with the network and the peer's
// mailbox modelled: delivered records and round trips travel on one wire,
// in order; arrive moves them into the mailbox (a round trip's arrival
// queues its answer, as the Brain's runtime answers UNLINK_ID once every
// signal before it is handled); answersArrive hands answers to the
// manager; drop loses what is still on the wire and the answers not yet
// back, as a broken connection does.
type confirmNet struct {
	up, connected bool
	epoch, sentOn int      // connections made so far; the one the last send went out on
	failN         int      // fail the next N sends (record or round trip)
	wire          []string // records, and "#<id>" for a round trip
	mailbox       []string
	answers       []uint64
}

type confirmAnswer uint64

func (n *confirmNet) Connect(context.Context) error {
	if !n.up {
		return errDown
	}
	if !n.connected {
		n.epoch++
	}
	n.connected = true
	return nil
}

// Lost: the connection the last send went out on is gone.
func (n *confirmNet) Lost() bool { return n.sentOn != 0 && (!n.connected || n.sentOn != n.epoch) }

func (n *confirmNet) send(item string) error {
	if !n.up || !n.connected {
		return errDown
	}
	if n.failN > 0 {
		n.failN--
		return errInjected
	}
	n.wire = append(n.wire, item)
	n.sentOn = n.epoch
	return nil
}

func (n *confirmNet) Deliver(_ context.Context, rec []byte) error { return n.send(string(rec)) }

func (n *confirmNet) Confirm(_ context.Context, id uint64) error {
	return n.send(fmt.Sprintf("#%d", id))
}

func (n *confirmNet) Confirmation(message any) (uint64, bool) {
	a, ok := message.(confirmAnswer)
	return uint64(a), ok
}

// arrive lets k items off the wire (k < 0: all).
func (n *confirmNet) arrive(k int) {
	if k < 0 || k > len(n.wire) {
		k = len(n.wire)
	}
	for _, item := range n.wire[:k] {
		var id uint64
		if _, err := fmt.Sscanf(item, "#%d", &id); err == nil {
			n.answers = append(n.answers, id)
			continue
		}
		n.mailbox = append(n.mailbox, item)
	}
	n.wire = n.wire[k:]
}

// answersArrive hands k answers to the manager (k < 0: all).
func (n *confirmNet) answersArrive(m *Manager, k int) {
	if k < 0 || k > len(n.answers) {
		k = len(n.answers)
	}
	answers := n.answers[:k]
	n.answers = n.answers[k:]
	for _, id := range answers {
		m.intercept(confirmAnswer(id), nopLogger)
	}
}

// drop breaks the connection: the first keep items on the wire arrive, the
// rest and the answers not yet back are lost.
func (n *confirmNet) drop(keep int) {
	n.arrive(keep)
	n.wire, n.answers = nil, nil
	n.connected = false
}

type confirmHarness struct {
	t       fatalfer
	cfg     Config
	clock   *fakeClock
	net     *confirmNet
	ring    *fakeRing
	spill   *fakeSpill
	pending *tier.Unconfirmed
	manager *Manager
}

func confirmConfig(resend bool) Config {
	cfg := testConfig()
	cfg.Confirm = ConfirmConfig{Interval: 20 * time.Millisecond, Records: 3, MaxUnconfirmed: 8, Timeout: time.Second, ResendUnconfirmed: resend}
	return cfg
}

func newConfirmHarness(t fatalfer, cfg Config, spill *fakeSpill) *confirmHarness {
	h := &confirmHarness{t: t, cfg: cfg, clock: newFakeClock(), net: &confirmNet{up: true}, ring: newFakeRing(64),
		spill: spill, pending: &tier.Unconfirmed{}}
	h.manager = h.build()
	return h
}

// build makes a manager over the harness's tiers (a restart: call Close on
// the old one first).
func (h *confirmHarness) build() *Manager {
	h.t.Helper()
	var spill Spill
	if h.spill != nil {
		spill = h.spill
	}
	var m *Manager
	m, err := NewManager(ManagerOptions{
		Config: h.cfg, Transport: h.net, Ring: h.ring, Spill: spill, Unconfirmed: h.pending,
		Clock: h.clock, Rand: fixedRand{frac: 0.5},
		Timers: func(after time.Duration, id TimeoutID) func() bool {
			return h.clock.AfterFunc(after, func() { m.Fire(id) }).Stop
		},
	})
	if err != nil {
		h.t.Fatalf("NewManager: %v", err)
	}
	return m
}

func (h *confirmHarness) deliver(recs ...string) {
	for _, r := range recs {
		h.manager.Deliver([]byte(r))
	}
}

// everything lets the wire and the answers through until nothing moves.
func (h *confirmHarness) everything() {
	for range 100 {
		h.net.arrive(-1)
		h.net.answersArrive(h.manager, -1)
		h.clock.Advance(h.cfg.Confirm.Interval)
		if len(h.net.wire) == 0 && len(h.net.answers) == 0 && h.manager.Held() == 0 {
			return
		}
	}
}

func recsN(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestConfirmHoldsUntilConfirmed: delivered records stay held until a round
// trip confirms them; a round trip leaves after Confirm.Records records, or
// after Confirm.Interval for fewer; confirmed records are counted.
func TestConfirmHoldsUntilConfirmed(t *testing.T) {
	h := newConfirmHarness(t, confirmConfig(true), nil)
	h.manager.Start()
	h.clock.Advance(0)
	h.deliver(recsN("r", 5)...)
	if got := h.net.wire; !slices.Equal(got, []string{"r0", "r1", "r2", "#1", "r3", "r4"}) {
		t.Fatalf("wire %v: a round trip after 3 records", got)
	}
	if h.manager.Held() != 5 || h.manager.Stats().Unconfirmed != 5 {
		t.Fatalf("held %d, stats %+v", h.manager.Held(), h.manager.Stats())
	}
	h.net.arrive(-1)
	h.net.answersArrive(h.manager, -1)
	if s := h.manager.Stats(); s.Confirmed != 3 || s.Unconfirmed != 2 || h.manager.Held() != 2 {
		t.Fatalf("after the first answer: %+v, held %d", s, h.manager.Held())
	}
	h.clock.Advance(20 * time.Millisecond) // the open round's interval
	if last := h.net.wire[len(h.net.wire)-1]; last != "#2" {
		t.Fatalf("wire %v: no round trip after the interval", h.net.wire)
	}
	h.everything()
	if s := h.manager.Stats(); s.Confirmed != 5 || s.ConfirmRounds != 2 || h.manager.Held() != 0 {
		t.Fatalf("at the end: %+v, held %d", s, h.manager.Held())
	}
}

// TestConfirmDropResends: at a drop, what was not confirmed is sent again
// after the reconnect, in order, ahead of the rest: every record reaches
// the mailbox, and only records that had reached it are there twice.
func TestConfirmDropResends(t *testing.T) {
	h := newConfirmHarness(t, confirmConfig(true), nil)
	h.manager.Start()
	h.clock.Advance(0)
	h.deliver(recsN("r", 7)...) // r0 r1 r2 #1 r3 r4 r5 #2 r6
	h.net.arrive(4)             // r0..r2 and #1 reach the Brain
	h.net.answersArrive(h.manager, -1)
	h.net.drop(2) // r3, r4 arrive; r5, #2, r6 are lost
	h.manager.ConnectionLost()
	h.deliver("s0")
	h.clock.Advance(time.Second)
	h.everything()
	want := []string{"r0", "r1", "r2", "r3", "r4", "r3", "r4", "r5", "r6", "s0"}
	if !slices.Equal(h.net.mailbox, want) {
		t.Fatalf("mailbox %v, want %v", h.net.mailbox, want)
	}
	if s := h.manager.Stats(); s.Resent != 4 || s.PossiblyLost != 0 || s.Confirmed != 3+4+1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestConfirmDropCounts: without ResendUnconfirmed, what a drop left
// unconfirmed is counted as possibly lost, exactly, and not sent again:
// every record missing at the Brain is counted.
func TestConfirmDropCounts(t *testing.T) {
	h := newConfirmHarness(t, confirmConfig(false), nil)
	h.manager.Start()
	h.clock.Advance(0)
	h.deliver(recsN("r", 7)...)
	h.net.arrive(4)
	h.net.answersArrive(h.manager, -1)
	h.net.drop(2)
	h.manager.ConnectionLost()
	h.deliver("s0")
	h.clock.Advance(time.Second)
	h.everything()
	if want := []string{"r0", "r1", "r2", "r3", "r4", "s0"}; !slices.Equal(h.net.mailbox, want) {
		t.Fatalf("mailbox %v, want %v", h.net.mailbox, want)
	}
	if s := h.manager.Stats(); s.PossiblyLost != 4 || s.Resent != 0 {
		t.Fatalf("stats %+v: 4 records unconfirmed at the drop (2 of them missing)", s)
	}
}

// TestConfirmDiskTrimmedWhenConfirmed: records replayed from the disk tier
// are trimmed only once confirmed; at a drop they are read again.
func TestConfirmDiskTrimmedWhenConfirmed(t *testing.T) {
	cfg := confirmConfig(true)
	cfg.MaxPending, cfg.DrainBatch = 2, 4
	spill := &fakeSpill{}
	h := newConfirmHarness(t, cfg, spill)
	h.net.up = false
	h.manager.Start()
	h.clock.Advance(0)
	h.deliver(recsN("r", 6)...) // disconnected: r0..r3 go to disk, r4 r5 wait in the ring
	if len(spill.recs) != 4 {
		t.Fatalf("disk %d records, want 4", len(spill.recs))
	}
	h.net.up = true
	h.clock.Advance(time.Second) // reconnect: r0..r3 from disk
	if len(spill.recs) != 4 || h.manager.Stats().Delivered != 4 {
		t.Fatalf("disk %d records after a delivery not yet confirmed; stats %+v", len(spill.recs), h.manager.Stats())
	}
	h.net.drop(-1) // all arrived; the answer to #1 is lost
	h.manager.ConnectionLost()
	h.clock.Advance(time.Second)
	h.everything()
	if len(spill.recs) != 0 || h.manager.Held() != 0 {
		t.Fatalf("disk %d, held %d", len(spill.recs), h.manager.Held())
	}
	want := append(recsN("r", 4), recsN("r", 6)...)
	if !slices.Equal(h.net.mailbox, want) {
		t.Fatalf("mailbox %v, want %v", h.net.mailbox, want)
	}
}

// TestConfirmBoundAndTimeout: at most MaxUnconfirmed records are delivered
// unconfirmed (the rest waits in the ring); a round trip unanswered for
// Confirm.Timeout disconnects, but with the connection still up what is on
// it is not sent again: once the peer answers, every record arrived once.
func TestConfirmBoundAndTimeout(t *testing.T) {
	cfg := confirmConfig(true)
	cfg.MaxPending = 40
	h := newConfirmHarness(t, cfg, nil)
	h.manager.Start()
	h.clock.Advance(0)
	h.deliver(recsN("r", 12)...)
	if s := h.manager.Stats(); s.Delivered != 8 || h.ring.Len() != 4 {
		t.Fatalf("delivered %d with 8 allowed unconfirmed, ring %d", s.Delivered, h.ring.Len())
	}
	h.clock.Advance(time.Second) // nothing answers
	if st := h.manager.State(); st != Disconnected {
		t.Fatalf("state %v after the round trip's timeout", st)
	}
	if s := h.manager.Stats(); s.ConfirmTimeouts != 1 || s.Resent != 0 || s.Unconfirmed != 8 {
		t.Fatalf("stats %+v", s)
	}
	h.clock.Advance(time.Second)
	h.everything()
	if !slices.Equal(h.net.mailbox, recsN("r", 12)) {
		t.Fatalf("mailbox %v", h.net.mailbox)
	}
}

// TestConfirmCrashResends: what a crashed manager left unconfirmed (in the
// Unconfirmed tier it shares with its restart) is resent by the next one.
func TestConfirmCrashResends(t *testing.T) {
	h := newConfirmHarness(t, confirmConfig(true), nil)
	h.manager.Start()
	h.clock.Advance(0)
	h.deliver(recsN("r", 4)...)
	h.net.wire, h.net.connected = nil, false // the crash takes the connection down
	h.manager.Close()
	h.manager = h.build()
	h.manager.Start()
	h.clock.Advance(0)
	h.everything()
	if !slices.Equal(h.net.mailbox, recsN("r", 4)) {
		t.Fatalf("mailbox %v", h.net.mailbox)
	}
}

// TestPropertyConfirmations: whatever the network does (records and round
// trips lost with a broken connection, answers late or lost, sends
// failing, the manager crashing), with ResendUnconfirmed every record
// reaches the mailbox, in order of first arrival, and a record is there
// twice only if it had arrived before; without it, what arrived is a
// subsequence of what was delivered and every record missing is counted as
// possibly lost.
func TestPropertyConfirmations(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		resend := rapid.Bool().Draw(rt, "resend")
		cfg := confirmConfig(resend)
		cfg.MaxPending = rapid.IntRange(1, 6).Draw(rt, "maxPending")
		cfg.DrainBatch = rapid.IntRange(1, 8).Draw(rt, "drainBatch")
		cfg.Confirm.Records = rapid.IntRange(1, 5).Draw(rt, "records")
		cfg.Confirm.MaxUnconfirmed = cfg.Confirm.Records + rapid.IntRange(0, 10).Draw(rt, "room")
		var spill *fakeSpill
		if rapid.Bool().Draw(rt, "disk") {
			spill = &fakeSpill{}
		}
		h := newConfirmHarness(rt, cfg, spill)
		h.ring.limit = 1 << 20 // nothing evicted: every record is accounted for
		h.manager.Start()
		var all []string
		possiblyLost := func() uint64 { return h.manager.Stats().PossiblyLost }
		var lostBefore uint64 // counted by crashed incarnations
		rt.Repeat(map[string]func(*rapid.T){
			"deliver": func(rt *rapid.T) {
				for range rapid.IntRange(1, 6).Draw(rt, "n") {
					rec := fmt.Sprintf("r%d", len(all))
					all = append(all, rec)
					h.deliver(rec)
				}
			},
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
			"clock": func(rt *rapid.T) {
				h.clock.Advance(time.Duration(rapid.IntRange(0, 300).Draw(rt, "ms")) * time.Millisecond)
			},
			"crash": func(rt *rapid.T) {
				lostBefore += possiblyLost()
				h.net.drop(rapid.IntRange(0, len(h.net.wire)).Draw(rt, "keep"))
				h.manager.Close()
				if spill != nil {
					spill.Rewind()
				}
				h.manager = h.build()
				h.manager.Start()
			},
		})
		h.net.up, h.net.failN = true, 0
		for range 200 {
			h.clock.Advance(time.Second)
			h.everything()
			if h.manager.Held() == 0 && h.manager.State() == Streaming {
				break
			}
		}
		if h.manager.Held() != 0 {
			rt.Fatalf("did not drain: held %d, state %v", h.manager.Held(), h.manager.State())
		}
		got := h.net.mailbox
		seen := map[string]bool{}
		var firsts []string
		for _, r := range got {
			if !seen[r] {
				seen[r] = true
				firsts = append(firsts, r)
			}
		}
		if resend {
			if !slices.Equal(firsts, all) {
				rt.Fatalf("mailbox (first arrivals) %v\nwant %v", firsts, all)
			}
			return
		}
		if len(firsts) != len(got) {
			rt.Fatalf("duplicates without ResendUnconfirmed: %v", got)
		}
		if !isSubsequence(got, all) {
			rt.Fatalf("mailbox %v not in the order of %v", got, all)
		}
		if missing := uint64(len(all) - len(got)); missing > lostBefore+possiblyLost() {
			rt.Fatalf("%d records missing, %d counted as possibly lost", missing, lostBefore+possiblyLost())
		}
	})
}
