package tier

import (
	"bytes"
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
		var model []Record // untrimmed, oldest first
		next, cursor := uint64(0), 0
		var bytes int64
		var scratch []byte
		var handedOut []Record // read, not trimmed: Data must stay as it was
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
					model = append(model, Record{Seq: next, Data: rec})
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
	var dst []Record
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

func TestMemoryLog(t *testing.T) {
	l, err := NewMemoryLog(4, bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if l.SourceID() != "00000000000000000000000000000000" {
		t.Fatalf("source id %q", l.SourceID())
	}
	for i, r := range []string{"r0", "r1", "r2", "r3"} {
		if seq, err := l.Append([]byte(r)); err != nil || seq != uint64(i) {
			t.Fatalf("append %d: %d %v", i, seq, err)
		}
	}
	if _, err := l.Append([]byte("x")); !errors.Is(err, ErrLogFull) {
		t.Fatalf("append to a full log: %v", err)
	}
	got, _ := l.Read(nil, 3)
	if len(got) != 3 || got[2].Seq != 2 {
		t.Fatalf("read %+v", got)
	}
	if err := l.Trim(1); err != nil {
		t.Fatal(err)
	}
	got, _ = l.Read(got[:0], 10)
	if len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("read after trim %+v", got)
	}
	l.Rewind()
	got, _ = l.Read(got[:0], 10)
	if len(got) != 2 || got[0].Seq != 2 || string(got[0].Data) != "r2" {
		t.Fatalf("read after rewind %+v", got)
	}
	if l.Len() != 2 || l.Bytes() != 4 || l.NextSeq() != 4 {
		t.Fatalf("len %d bytes %d next %d", l.Len(), l.Bytes(), l.NextSeq())
	}
	if seq, err := l.Append([]byte("r4")); err != nil || seq != 4 {
		t.Fatalf("append after trim: %d %v", seq, err)
	}
	_ = l.Trim(100)
	if l.Len() != 0 || l.Bytes() != 0 || l.NextSeq() != 5 {
		t.Fatalf("after full trim: len %d bytes %d next %d", l.Len(), l.Bytes(), l.NextSeq())
	}
	if _, err := NewMemoryLog(0, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("capacity 0: %v", err)
	}
	if _, err := NewMemoryLog(1, bytes.NewReader(nil)); err == nil {
		t.Fatal("short id source accepted")
	}
	if a, _ := NewMemoryLog(1, nil); a.SourceID() == l.SourceID() {
		t.Fatal("crypto/rand gave zeros")
	}
}

// TestMemoryLogRenumber: a RAM log renumbers from its oldest record only (it
// has no holes), up or down; what follows, and what is appended later,
// follows the new numbers; Trim takes the new numbers; the unsent marker
// never exists.
func TestMemoryLogRenumber(t *testing.T) {
	l, err := NewMemoryLog(100, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := l.Append([]byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = l.Trim(1) // a, b gone: c is 2
	if err := l.Renumber(3, 10); !errors.Is(err, ErrRenumber) {
		t.Fatalf("renumber from the middle: %v", err)
	}
	if err := l.Renumber(2, 100); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Read(nil, 10)
	if len(got) != 4 || got[0].Seq != 100 || got[3].Seq != 103 || string(got[3].Data) != "f" {
		t.Fatalf("after renumbering up: %+v", got)
	}
	if seq, _ := l.Append([]byte("g")); seq != 104 || l.NextSeq() != 105 {
		t.Fatalf("append after renumbering: %d, next %d", seq, l.NextSeq())
	}
	_ = l.Trim(101)
	if err := l.Renumber(102, 7); err != nil {
		t.Fatal(err)
	}
	l.Rewind()
	got, _ = l.Read(got[:0], 10)
	if len(got) != 3 || got[0].Seq != 7 || string(got[0].Data) != "e" || got[2].Seq != 9 {
		t.Fatalf("after renumbering down: %+v", got)
	}
	_ = l.Trim(8)
	if l.Len() != 1 || l.NextSeq() != 10 {
		t.Fatalf("len %d, next %d", l.Len(), l.NextSeq())
	}
	_ = l.Trim(9)
	if err := l.Renumber(10, 0); err != nil || l.NextSeq() != 0 {
		t.Fatalf("renumber an empty log at its next number: %v, next %d", err, l.NextSeq())
	}
	if _, ok := l.UnsentFrom(); ok || l.ClearUnsent() != nil {
		t.Fatal("a RAM log has an unsent marker")
	}
}
