package spill

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestReleasedReadsModel: with WithReadsReleasedByTrim, every record Read handed out
// and not yet covered by a Trim keeps its bytes, whatever else happens meanwhile (appends,
// flushes, rotations, rewinds, partial trims, syncs, restarts), under every sync policy and tail
// size; and Read returns exactly the untrimmed records in order.
func TestReleasedReadsModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dir := tempDir(t)
		policy := rapid.SampledFrom([]SyncPolicy{SyncAlways, SyncInterval, SyncNever}).Draw(t, "sync")
		tailBytes := rapid.SampledFrom([]int64{1, 64, 200, 1000, 5000, 20000, DefaultTailBytes}).Draw(t, "tail")
		opts := []Option{
			WithSync(policy), WithOverflow(Refuse), WithSegmentSize(4096), WithMaxBytes(64 * 4096),
			WithFlushBytes(rapid.IntRange(1, 8192).Draw(t, "flush")), WithTailBytes(tailBytes),
			WithReadsReleasedByTrim(), WithSyncInterval(time.Millisecond),
		}
		l := mustOpen(t, dir, opts...)
		defer func() { l.Close() }()

		type held struct {
			r    Record
			want []byte
		}
		var (
			pending []Record // untrimmed, in order
			cursor  int
			holds   []held
			untrim  uint64 // every record numbered below it is trimmed
			next    int
		)
		check := func(t *rapid.T, when string) {
			for _, h := range holds {
				if h.r.Seq >= untrim && !bytes.Equal(h.r.Data, h.want) {
					t.Fatalf("%s: untrimmed record seq %d (trimmed below %d) now holds %q, want %q",
						when, h.r.Seq, untrim, h.r.Data, h.want)
				}
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"": func(t *rapid.T) { check(t, "check") },
			"append": func(t *rapid.T) {
				rec := drawRecord(t, next, 16)
				next++
				seq, err := l.Append(rec)
				if errors.Is(err, ErrFull) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				pending = append(pending, Record{Seq: seq, Data: rec})
				check(t, "append")
			},
			"read": func(t *rapid.T) {
				n := rapid.IntRange(1, 40).Draw(t, "n")
				got, err := l.Read(nil, n)
				if err != nil {
					t.Fatal(err)
				}
				want := pending[cursor:min(cursor+n, len(pending))]
				if len(got) != len(want) {
					t.Fatalf("Read(%d): %d records, want %d", n, len(got), len(want))
				}
				for i := range got {
					if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Data, want[i].Data) {
						t.Fatalf("Read record %d: seq %d %q, want seq %d %q", i, got[i].Seq, got[i].Data, want[i].Seq, want[i].Data)
					}
					holds = append(holds, held{got[i], want[i].Data})
				}
				cursor += len(got)
				check(t, "read")
			},
			"rewind": func(t *rapid.T) {
				l.Rewind()
				cursor = 0
			},
			"trim": func(t *rapid.T) {
				if len(pending) == 0 {
					t.Skip("nothing pending")
				}
				// Mostly through records read (acknowledgements), sometimes past them.
				k := rapid.IntRange(0, len(pending)-1).Draw(t, "k")
				if rapid.IntRange(0, 3).Draw(t, "pastRead") != 0 && cursor > 0 {
					k = min(k, cursor-1)
				}
				upTo := pending[k].Seq
				if err := l.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				untrim = max(untrim, upTo+1)
				pending = pending[k+1:]
				cursor = max(cursor-(k+1), 0)
				check(t, "trim")
			},
			"sync": func(t *rapid.T) {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				check(t, "sync")
			},
			"restart": func(t *rapid.T) {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = mustOpen(t, dir, opts...)
				cursor = 0
				check(t, "restart")
			},
		})
	})
}

// TestReleasedReadsConcurrent: appenders in several goroutines, the background group
// commit, and one consumer that reads, holds a window of batches in flight, sometimes rewinds
// (a reconnect) and trims the oldest batch (an acknowledgement): every record held and not
// trimmed keeps the bytes it was read with, and every record read is one that was appended.
func TestReleasedReadsConcurrent(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncInterval, SyncAlways, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			l := mustOpen(t, memDir(t), WithSync(policy), WithSyncInterval(time.Millisecond), WithSegmentSize(64<<10),
				WithMaxBytes(64<<20), WithFlushBytes(2048), WithTailBytes(32<<10), WithReadsReleasedByTrim())
			defer l.Close()
			const writers, perWriter = 3, 4000
			content := func(w, i int) []byte {
				return fmt.Appendf(nil, "w%d-%06d-%s", w, i, bytes.Repeat([]byte{byte('a' + i%26)}, i%200))
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perWriter {
						if _, err := l.Append(content(w, i)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			type held struct {
				r    Record
				want []byte
			}
			var inflight [][]held
			nextOf := [writers]int{} // per writer, the next index expected (since the last rewind)
			rng := rand.New(rand.NewPCG(1, uint64(policy)))
			reads := 0
			for finished := false; ; {
				select {
				case <-done:
					finished = true
				default:
				}
				if finished && len(inflight) == 0 && l.Len() == 0 {
					break
				}
				if len(inflight) < 4 {
					b, err := l.Read(nil, 1+rng.IntN(64))
					if err != nil {
						t.Fatal(err)
					}
					var hs []held
					for _, r := range b {
						var w, i int
						if _, err := fmt.Sscanf(string(r.Data), "w%d-%06d-", &w, &i); err != nil || !bytes.Equal(r.Data, content(w, i)) {
							t.Fatalf("read seq %d as %q", r.Seq, r.Data)
						}
						if i < nextOf[w] {
							t.Fatalf("read w%d-%d after w%d-%d", w, i, w, nextOf[w]-1)
						}
						nextOf[w] = i + 1
						hs = append(hs, held{r, bytes.Clone(r.Data)})
					}
					reads += len(b)
					if len(hs) > 0 {
						inflight = append(inflight, hs)
					}
				}
				for _, b := range inflight {
					for _, h := range b {
						if !bytes.Equal(h.r.Data, h.want) {
							t.Fatalf("held record %d now holds %q, was %q", h.r.Seq, h.r.Data, h.want)
						}
					}
				}
				switch k := rng.IntN(50); {
				case k == 0 && len(inflight) > 0:
					l.Rewind() // a reconnect: what is in flight is read again
					inflight, nextOf = nil, [writers]int{}
				case k < 25 && len(inflight) > 0:
					b := inflight[0]
					if err := l.Trim(b[len(b)-1].r.Seq); err != nil {
						t.Fatal(err)
					}
					inflight = inflight[1:]
				}
			}
			if reads < writers*perWriter {
				t.Fatalf("%d records read, %d appended", reads, writers*perWriter)
			}
		})
	}
}
