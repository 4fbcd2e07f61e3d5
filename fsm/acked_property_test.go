package fsm

import (
	"github.com/pharos-node/pharos-node/tier"

	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPropertyAckedExactlyOnce: whatever the network, the Brain and the
// manager's process do (batches and acks lost, connections dropped with
// part of the traffic through, the Brain's process restarted, send
// failures, timers early or late, the manager killed and restarted over
// the same disk with a trim point not yet persisted; a disk whose numbers
// start at 1 and jump after each crash, which the manager renumbers
// through the log), the Brain processes
// every record exactly once, in order: at every step what it processed is
// a prefix of what was delivered, and after healing it is all of it.
func TestPropertyAckedExactlyOnce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { checkAckedExactlyOnce(rt, diskLog) })
}

// TestPropertyAckedExactlyOnceInRAM: the same with a MemoryLog; a restart
// is then a crash of the actor only (the log outlives it, as
// ActorOptions.Log does).
func TestPropertyAckedExactlyOnceInRAM(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { checkAckedExactlyOnce(rt, ramLog) })
}

// TestPropertyAckedNoUseAfterTrim: the same over a disk log whose Read
// lends memory that Trim overwrites (poisonLog, as
// spill.WithReadsReleasedByTrim reuses it): the manager never sends a
// payload whose record it trimmed.
func TestPropertyAckedNoUseAfterTrim(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { checkAckedExactlyOnce(rt, poisonedDiskLog) })
}

// TestPropertyAckedMachineCrash: the same over a disk numbered densely, as
// SeqTier numbers a spill directory, that crashes of the machine cut short of
// what was not yet fsynced, acknowledged records included, and that marks
// the next number unsent (SeqLog.UnsentFrom). Records lost that way may be
// missing (they were never durable); every other record is processed, once,
// in order: records stored after such a crash, with numbers the Brain had
// processed, are delivered too, whether the manager that stored them or a
// later one synchronises.
func TestPropertyAckedMachineCrash(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { checkAckedExactlyOnce(rt, machineCrashDiskLog) })
}

// logKind is the SeqLog checkAckedExactlyOnce runs over.
type logKind int

const (
	ramLog              logKind = iota // a MemoryLog
	diskLog                            // a fakeDiskLog, sometimes numbered like a spill directory
	poisonedDiskLog                    // a fakeDiskLog whose lent memory Trim overwrites
	machineCrashDiskLog                // a fakeDiskLog whose crashes of the machine lose what was not fsynced
)

func checkAckedExactlyOnce(rt *rapid.T, kind logKind) {
	cfg := ackedTestConfig()
	cfg.Acked.BatchSize = rapid.IntRange(1, 6).Draw(rt, "batchSize")
	cfg.Acked.Window = rapid.IntRange(1, 4).Draw(rt, "window")
	var log SeqLog
	var dlog *fakeDiskLog
	var olog *fakeDiskLog // set when crashes of the machine are in play
	holes := false
	switch kind {
	case machineCrashDiskLog:
		olog = newFakeDiskLog("disk-source")
		dlog, log, holes = olog, olog, true
	case poisonedDiskLog:
		dlog = newFakeDiskLog("disk-source")
		log = &poisonLog{fakeDiskLog: dlog}
	case diskLog:
		dlog = newFakeDiskLog("disk-source")
		log = dlog
		if rapid.Bool().Draw(rt, "holes") {
			// Numbers with holes: the log starts at 1, and jumps after a
			// crash; the manager renumbers through the log, durably.
			dlog.nextSeq = rapid.Uint64Range(0, 1).Draw(rt, "firstSeq")
			dlog.jumpOnCrash = rapid.SampledFrom([]uint64{0, 1, 1 << 20}).Draw(rt, "jumpOnCrash")
			holes = dlog.nextSeq != 0 || dlog.jumpOnCrash != 0
		}
	default:
		mem, err := tier.NewMemoryLog(1<<20, nil)
		if err != nil {
			rt.Fatal(err)
		}
		log = mem
	}
	net := newFakeNet()
	h := newAckHarness(rt, cfg, log, net, newFakeClock(), nil)
	h.manager.Start()
	src := log.SourceID()
	var all []string
	restarted := false        // Stats are one manager's: without a restart they cover every record
	lost := map[string]bool{} // records a crash of the machine took before they were fsynced
	index := map[string]int{} // of each record in all
	check := func() {
		got := net.processed(src)
		if olog == nil {
			if len(got) > len(all) || !slices.Equal(got, all[:len(got)]) {
				rt.Fatalf("processed %v\nnot a prefix of %v", got, all)
			}
		} else {
			// In order and once each; a record is missing only if lost.
			next := 0
			for _, r := range got {
				i, ok := index[r]
				if !ok || i < next {
					rt.Fatalf("processed %v\nnot in the order of %v, or twice", got, all)
				}
				for _, skipped := range all[next:i] {
					if !lost[skipped] {
						rt.Fatalf("processed %v\nwithout %s, which was not lost; all %v", got, skipped, all)
					}
				}
				next = i + 1
			}
		}
		for _, b := range net.sent { // records are "r<n>": 'X' is poisonLog's trimmed memory
			for _, p := range b.payloads {
				if len(p) > 0 && p[0] == 'X' {
					rt.Fatalf("batch from %d carried a trimmed record's bytes: %q", b.firstSeq, b.payloads)
				}
			}
		}
	}
	actions := map[string]func(*rapid.T){
		"deliver": func(rt *rapid.T) {
			var burst []string
			for range rapid.IntRange(1, 10).Draw(rt, "burst") {
				rec := fmt.Sprintf("r%d", len(all))
				index[rec] = len(all)
				all = append(all, rec)
				burst = append(burst, rec)
			}
			switch rapid.IntRange(0, 2).Draw(rt, "how") {
			case 0:
				h.manager.TakeInbox() // those waiting first, as their order is
				h.deliver(burst...)
			case 1:
				h.deliverTaken(burst...) // one event for the burst (and those waiting)
			default:
				h.put(burst...) // waits in the inbox for a take or a restart
			}
		},
		"take":       func(rt *rapid.T) { h.manager.TakeInbox() },
		"settle":     func(rt *rapid.T) { net.exchange(h.manager) },
		"brainTakes": func(rt *rapid.T) { net.brainTakes(rapid.IntRange(1, 4).Draw(rt, "k")) },
		"acksArrive": func(rt *rapid.T) { net.acksArrive(h.manager, rapid.IntRange(1, 4).Draw(rt, "k")) },
		"loseBatch": func(rt *rapid.T) {
			if len(net.toBrain) > 0 {
				i := rapid.IntRange(0, len(net.toBrain)-1).Draw(rt, "i")
				net.toBrain = slices.Delete(net.toBrain, i, i+1)
			}
		},
		"loseAck": func(rt *rapid.T) {
			if len(net.toSender) > 0 {
				i := rapid.IntRange(0, len(net.toSender)-1).Draw(rt, "i")
				net.toSender = slices.Delete(net.toSender, i, i+1)
			}
		},
		"brainRestart": func(rt *rapid.T) {
			// The Brain's process dies with its mailbox; its state is saved.
			net.toBrain = nil
			if rapid.Bool().Draw(rt, "monitorDown") {
				h.manager.ConnectionLost()
			}
		},
		"dropConnection": func(rt *rapid.T) {
			net.drop(rapid.IntRange(0, len(net.toBrain)).Draw(rt, "keepToBrain"),
				rapid.IntRange(0, len(net.toSender)).Draw(rt, "keepToSender"))
			if rapid.Bool().Draw(rt, "nodeDown") {
				h.manager.ConnectionLost()
			}
		},
		"netDown":  func(rt *rapid.T) { net.up = false },
		"netUp":    func(rt *rapid.T) { net.up = true },
		"failSend": func(rt *rapid.T) { net.failSendN = rapid.IntRange(1, 2).Draw(rt, "n") },
		"advance": func(rt *rapid.T) {
			h.clock.Advance(time.Duration(rapid.IntRange(0, 1500).Draw(rt, "ms")) * time.Millisecond)
		},
		"persistTrim": func(rt *rapid.T) {
			if dlog != nil {
				dlog.persistTrim()
			}
		},
		"restart": func(rt *rapid.T) { h.restart(); restarted = true },
		"":        func(rt *rapid.T) { check() },
	}
	if olog != nil {
		actions["fsync"] = func(rt *rapid.T) { olog.fsync() }
		actions["machineCrash"] = func(rt *rapid.T) {
			for _, r := range olog.osCrash() {
				lost[string(r.Data)] = true
			}
			h.restart()
			restarted = true
		}
	}
	for range 4 { // four rounds of -rapid.steps actions: long enough histories
		rt.Repeat(actions)
	}
	// Heal: the network works and the Brain answers; run until the log is
	// empty.
	net.up, net.failSendN = true, 0
	h.manager.TakeInbox()
	for i := 0; ; i++ {
		if i == 2000 {
			rt.Fatalf("did not converge: state %v, log %d, processed %d of %d, stats %+v",
				h.manager.State(), log.Len(), len(net.processed(src)), len(all), h.manager.Stats())
		}
		net.exchange(h.manager)
		check()
		if log.Len() == 0 && len(net.processed(src)) == len(all)-lostUnprocessed(lost, net.processed(src)) {
			break
		}
		h.clock.Advance(100 * time.Millisecond)
	}
	if got := net.processed(src); olog == nil && !slices.Equal(got, all) {
		rt.Fatalf("processed %v, want %v", got, all)
	}
	if s := h.manager.Stats(); s.Dropped != 0 || !holes && s.SeqGaps != 0 || !restarted && s.Acked != uint64(len(all)) {
		rt.Fatalf("stats %+v (%d records)", s, len(all))
	}
}

// lostUnprocessed counts the records a crash of the machine lost that the
// Brain had not processed: they are the only ones allowed missing.
func lostUnprocessed(lost map[string]bool, processed []string) int {
	n := len(lost)
	for _, r := range processed {
		if lost[r] {
			n--
		}
	}
	return n
}
