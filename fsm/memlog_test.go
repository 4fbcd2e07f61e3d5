package fsm

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// TestMemoryLogModel checks MemoryLog against a plain slice under random
// appends (in runs long enough to cross its chunk boundaries), reads, trims
// and rewinds: the same records, numbers, Len, Bytes and NextSeq; and what a
// Read handed out keeps its bytes until it is trimmed, while the blocks of
// trimmed records are filled again.
func TestMemoryLogModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		capacity := rapid.IntRange(1, 3*memChunk).Draw(rt, "capacity")
		l, err := NewMemoryLog(capacity, nil)
		if err != nil {
			rt.Fatal(err)
		}
		var model []SpillRecord // untrimmed, oldest first
		next, cursor := uint64(0), 0
		var bytes int64
		var scratch []byte
		var handedOut []SpillRecord // read, not trimmed: Data must stay as it was
		var wantOut [][]byte
		rt.Repeat(map[string]func(*rapid.T){
			"append": func(rt *rapid.T) {
				k := rapid.IntRange(1, memChunk+10).Draw(rt, "k")
				pad := rapid.SampledFrom([]int{0, 100, 3000, 20000}).Draw(rt, "pad")
				if pad >= 3000 {
					k = min(k, 200*3000/pad) // a few blocks
				}
				for i := range k {
					if i == 0 && rapid.IntRange(0, 9).Draw(rt, "big") == 0 {
						pad = memBlockBytes + 100 // a record larger than a block
					}
					// The caller's buffer is reused for the next record: the log
					// must have copied it.
					scratch = append(fmt.Appendf(scratch[:0], "r%d", next), make([]byte, pad)...)
					rec := append([]byte(nil), scratch...)
					seq, err := l.Append(scratch)
					pad = min(pad, 20000)
					if len(model) >= capacity {
						if !errors.Is(err, ErrLogFull) {
							rt.Fatalf("append to a full log: %v", err)
						}
						return
					}
					if err != nil || seq != next {
						rt.Fatalf("append: seq %d err %v, want %d", seq, err, next)
					}
					model = append(model, SpillRecord{Seq: next, Data: rec})
					bytes += int64(len(rec))
					next++
				}
			},
			"read": func(rt *rapid.T) {
				n := rapid.IntRange(0, memChunk+10).Draw(rt, "n")
				got, err := l.Read(nil, n)
				if err != nil {
					rt.Fatal(err)
				}
				want := model[cursor:min(len(model), cursor+n)]
				if len(got) != len(want) {
					rt.Fatalf("read %d: got %d records, want %d", n, len(got), len(want))
				}
				for i := range got {
					if got[i].Seq != want[i].Seq || string(got[i].Data) != string(want[i].Data) {
						rt.Fatalf("read: record %d is %d %.40q (%d bytes), want %d %.40q (%d bytes)", i, got[i].Seq, got[i].Data, len(got[i].Data), want[i].Seq, want[i].Data, len(want[i].Data))
					}
					handedOut = append(handedOut, got[i])
					wantOut = append(wantOut, want[i].Data)
				}
				cursor += len(got)
			},
			"trim": func(rt *rapid.T) {
				if next == 0 {
					return
				}
				through := rapid.Uint64Range(0, next+2).Draw(rt, "through")
				if err := l.Trim(through); err != nil {
					rt.Fatal(err)
				}
				k := 0
				for k < len(model) && model[k].Seq <= through {
					bytes -= int64(len(model[k].Data))
					k++
				}
				model = model[k:]
				cursor = max(cursor-k, 0)
				j := 0
				for i, r := range handedOut {
					if r.Seq > through {
						handedOut[j], wantOut[j] = r, wantOut[i]
						j++
					}
				}
				handedOut, wantOut = handedOut[:j], wantOut[:j]
			},
			"rewind": func(rt *rapid.T) {
				l.Rewind()
				cursor = 0
			},
			"": func(rt *rapid.T) {
				if l.Len() != len(model) || l.Bytes() != bytes || l.NextSeq() != next {
					rt.Fatalf("len %d bytes %d next %d, want %d %d %d", l.Len(), l.Bytes(), l.NextSeq(), len(model), bytes, next)
				}
				for i, r := range handedOut {
					if string(r.Data) != string(wantOut[i]) {
						rt.Fatalf("record %d, read and not trimmed, now holds %.40q, want %.40q", r.Seq, r.Data, wantOut[i])
					}
				}
			},
		})
	})
}

// BenchmarkMemoryLogBacklog appends, reads and trims with a backlog of a
// million records between the newest and the oldest untrimmed one.
func BenchmarkMemoryLogBacklog(b *testing.B) {
	const backlog = 1_000_000
	l, err := NewMemoryLog(2*backlog, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, 120)
	var dst []SpillRecord
	for i := 0; b.Loop(); i++ {
		if _, err := l.Append(rec); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			dst, _ = l.Read(dst[:0], 1000)
			if i > backlog {
				_ = l.Trim(uint64(i - backlog))
			}
		}
	}
}
