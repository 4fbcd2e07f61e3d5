package fsm

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// poisonLog wraps a fakeDiskLog and holds the manager to SeqLog's contract ("Data
// stays valid until the record is trimmed") the way spill.WithReadsReleasedByTrim does: the
// bytes Read hands out are overwritten as soon as a Trim covers them, so a payload used after
// its trim reaches the Brain as garbage.
type poisonLog struct {
	*fakeDiskLog
	lent []SpillRecord
}

func (p *poisonLog) Read(dst []SpillRecord, n int) ([]SpillRecord, error) {
	start := len(dst)
	dst, err := p.fakeDiskLog.Read(dst, n)
	for i := start; i < len(dst); i++ {
		c := slices.Clone(dst[i].Data)
		dst[i].Data = c
		p.lent = append(p.lent, SpillRecord{Seq: dst[i].Seq, Data: c})
	}
	return dst, err
}

func (p *poisonLog) Trim(through uint64) error {
	err := p.fakeDiskLog.Trim(through)
	k := 0
	for _, r := range p.lent {
		if r.Seq <= through {
			for i := range r.Data {
				r.Data[i] = 'X'
			}
			continue
		}
		p.lent[k] = r
		k++
	}
	clear(p.lent[k:])
	p.lent = p.lent[:k]
	return err
}

// TestPropertyAckedNoUseAfterTrim: the manager never sends a payload whose record it
// trimmed, through losses, go-backs, reconnects, restarts.
func TestPropertyAckedNoUseAfterTrim(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := ackedTestConfig()
		cfg.Acked.BatchSize = rapid.IntRange(1, 6).Draw(rt, "batchSize")
		cfg.Acked.Window = rapid.IntRange(1, 4).Draw(rt, "window")
		dlog := newFakeDiskLog("disk-source")
		log := &poisonLog{fakeDiskLog: dlog}
		net := newFakeNet()
		h := newAckHarness(rt, cfg, log, net, newFakeClock(), nil)
		h.manager.Start()
		src := log.SourceID()
		var all []string
		check := func() {
			got := net.processed(src)
			if len(got) > len(all) || !slices.Equal(got, all[:len(got)]) {
				rt.Fatalf("processed %v\nnot a prefix of %v", got, all)
			}
			for _, b := range net.sent {
				for _, p := range b.payloads {
					if len(p) > 0 && p[0] == 'X' {
						rt.Fatalf("batch from %d carried a trimmed record's bytes: %q", b.firstSeq, b.payloads)
					}
				}
			}
		}
		restart := func() {
			h.manager.Close()
			dlog.crash()
			log.lent = nil
			net.incarnation++
			net.connected = false
			h.manager = h.build()
			h.manager.Start()
		}
		actions := map[string]func(*rapid.T){
			"deliver": func(rt *rapid.T) {
				for range rapid.IntRange(1, 10).Draw(rt, "burst") {
					rec := fmt.Sprintf("r%d", len(all))
					all = append(all, rec)
					h.deliver(rec)
				}
			},
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
			"persistTrim": func(rt *rapid.T) { dlog.persistTrim() },
			"restart":     func(rt *rapid.T) { restart() },
			"":            func(rt *rapid.T) { check() },
		}
		for range 4 {
			rt.Repeat(actions)
		}
		net.up, net.failSendN = true, 0
		for i := 0; ; i++ {
			if i == 2000 {
				rt.Fatalf("did not converge: state %v, log %d, processed %d of %d", h.manager.State(), log.Len(), len(net.processed(src)), len(all))
			}
			net.exchange(h.manager)
			check()
			if log.Len() == 0 && len(net.processed(src)) == len(all) {
				break
			}
			h.clock.Advance(100 * time.Millisecond)
		}
		if got := net.processed(src); !slices.Equal(got, all) {
			rt.Fatalf("processed %v, want %v", got, all)
		}
	})
}
